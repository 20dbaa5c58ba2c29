// One load client in its own thread (a blocking Process call must not stall the other clients).
import { parentPort, workerData } from 'node:worker_threads';
import { connectDaemonProcess } from '@viommu/protocol';
import { nestedFlow, timed } from './flow.js';

const { socketPath, invalidations, rounds } = workerData as { socketPath: string; invalidations: number; rounds: number };
const samples: number[] = [];
let errors = 0;
let firstError = '';
for (let r = 0; r < rounds; r++) {
  const p = await connectDaemonProcess(socketPath);
  try {
    nestedFlow(timed(p, samples), invalidations);
  } catch (e) {
    errors++;
    firstError ||= (e as Error).message;
  } finally {
    p.disconnect();
  }
}
parentPort!.postMessage({ samples, errors, firstError });
