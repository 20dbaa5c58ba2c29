// The native backend as it was before ADR 0125, for the session-processes bench's baseline only:
// every session in the daemon's own process (one mm and fd table for all clients), on the test
// kernel stand-in (src/testing/fake-kernel.ts). Not a way to run viommud.
import { pino } from 'pino';
import { createDaemon } from '../server.js';
import { createBackend } from '../testing/fake-kernel.js';

const socketPath = process.argv[2]!;
const daemon = createDaemon({ backend: createBackend(), socketPath, logger: pino({ name: 'viommud' }) });
await daemon.listen();
process.on('SIGTERM', () => void daemon.shutdown(1000).then(() => process.exit(0)));
