#!/usr/bin/env node
// viommud --socket PATH --backend sim|native [--metrics-port N] [--inspect-port N] [--shutdown-deadline MS]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { simBackend, type Backend } from './backend.js';
import { isRemoteProcess } from './broker.js';
import { createDaemon, loadFdBridge } from './server.js';
import { startInspectServer, type InspectServer } from './inspect/http.js';
import { Inspector } from './inspect/snapshot.js';
import { instrumentBackend } from './inspect/stats.js';
import { listenFdFromEnv, sdNotify } from './systemd.js';
import { nativePeerCred } from './peer.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      backend: { type: 'string', default: 'sim' },
      'metrics-port': { type: 'string' },
      'inspect-port': { type: 'string' },
      'shutdown-deadline': { type: 'string', default: '5000' },
      'log-level': { type: 'string', default: 'info' },
      'stall-ms': { type: 'string', default: '10000' },
      'max-frame': { type: 'string' },
      'sim-host-per-client': { type: 'boolean', default: false },
      'no-fd-passing': { type: 'boolean', default: false },
      // Native backend: do not keep a session process started ahead of the next connection.
      'no-spare': { type: 'boolean', default: false },
    },
  });
  const logger = pino({ name: 'viommud', level: values['log-level'] });
  const fd = listenFdFromEnv();
  if (!values.socket && fd === undefined) {
    process.stderr.write('usage: viommud --socket PATH --backend sim|native [--metrics-port N] [--inspect-port N] [--shutdown-deadline MS] [--stall-ms MS] [--max-frame BYTES] [--log-level L]\n');
    process.exit(2);
  }
  let backend: Backend | undefined;
  if (values.backend === 'native') {
    // Each client's session runs in a process of its own (ADR 0125); the addon must load here
    // already, so a daemon that cannot serve says so at start, not at the first connection.
    if (!process.env['VIOMMUD_NATIVE_BACKEND_MODULE']) (await import('@viommu/native')).loadAddon();
  } else if (values.backend === 'sim') backend = simBackend({ perClient: values['sim-host-per-client'] });
  else throw new Error(`unknown backend ${values.backend}`);
  // The inspection page counts each client's ioctls through a wrapped backend (src/inspect/stats.ts);
  // session processes count their own and report them in their batches.
  const instrumented = backend && values['inspect-port'] !== undefined ? instrumentBackend(backend) : undefined;
  if (instrumented) backend = instrumented;
  const peerCred = await nativePeerCred((reason) => logger.warn({ reason }, '@viommu/native did not load: clients are not identified by SO_PEERCRED'));
  const limits = {
    stallMs: Number(values['stall-ms']),
    ...(values['max-frame'] ? { maxFrame: Number(values['max-frame']) } : {}),
  };
  const fdBridge = values['no-fd-passing'] ? undefined : await loadFdBridge();
  const daemon = createDaemon({
    ...(backend ? { backend } : { sessionProcesses: { backendName: 'native', logLevel: values['log-level']!, spare: !values['no-spare'] } }),
    logger,
    peerCred,
    limits,
    fdBridge,
    ...(fd !== undefined ? { fd } : { socketPath: values.socket! }),
  });
  await daemon.listen();
  let http: ReturnType<typeof createServer> | undefined;
  if (values['metrics-port']) {
    http = createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      void daemon.metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': daemon.metrics.registry.contentType }).end(text));
    });
    // Loopback only; port 0 picks a free one, logged for whoever needs it (the tests do).
    await new Promise<void>((r) => http!.listen(Number(values['metrics-port']), '127.0.0.1', r));
    const address = http.address();
    logger.info({ metricsPort: typeof address === 'object' && address ? address.port : undefined }, 'metrics listening');
  }
  let inspect: InspectServer | undefined;
  if (values['inspect-port'] !== undefined) {
    const inspector = new Inspector(() => daemon.sessions, (p) => (isRemoteProcess(p) ? p.stats : instrumented?.statsOf(p)));
    // Loopback only, like the metrics; port 0 picks a free one and the log line says which.
    inspect = await startInspectServer({ inspector, backend: daemon.backendName, port: Number(values['inspect-port']) });
    logger.info({ inspectPort: inspect.port, url: inspect.url }, 'inspect listening');
  }
  await sdNotify('READY=1');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'signal received');
    const notified = sdNotify('STOPPING=1');
    http?.close();
    void inspect?.close();
    void Promise.all([notified, daemon.shutdown(Number(values['shutdown-deadline']))]).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`viommud: ${(e as Error).message}\n`);
  process.exit(1);
});
