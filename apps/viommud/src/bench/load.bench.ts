// Load benchmark: N concurrent clients (1, 8, 64), each on its own thread and connection, run the
// nested flow plus a stream of invalidations through viommud; the same flow in-process is the
// baseline measured in the same run. Bounded in count (a fixed number of ioctls per point), not
// time. Prints ioctls/s, p50/p99 and the ratio to in-process; writes bench-results/load.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createSimHost } from '@viommu/core';
import { APP_DIR, sample, startDaemon } from '../spawn-daemon.js';
import { nestedFlow, timed } from './flow.js';

const TOTAL_INVALIDATIONS = Number(process.env['VIOMMUD_BENCH_INVALIDATIONS'] ?? 8000);
const CLIENTS = [1, 8, 64];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! / 1000;
}

function summary(samples: number[], wallNs: number) {
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  return { ioctls: samples.length, ioctlsPerSec: Math.round(samples.length / (wallNs / 1e9)), p50us: pct(arr, 50), p99us: pct(arr, 99) };
}

async function main(): Promise<void> {
  // Baseline: in-process on the simulator, one client.
  const host = createSimHost();
  const warm: number[] = [];
  nestedFlow(timed(host.spawn(), warm), 200);
  const base: number[] = [];
  let t0 = process.hrtime.bigint();
  nestedFlow(timed(host.spawn(), base), TOTAL_INVALIDATIONS);
  const inProcess = summary(base, Number(process.hrtime.bigint() - t0));
  console.log(`in-process        ${inProcess.ioctlsPerSec} ioctls/s  p50 ${inProcess.p50us.toFixed(1)} us  p99 ${inProcess.p99us.toFixed(1)} us`);

  const daemon = await startDaemon();
  const points = [];
  try {
    for (const n of CLIENTS) {
      const per = Math.max(10, Math.floor(TOTAL_INVALIDATIONS / n));
      t0 = process.hrtime.bigint();
      const results = await Promise.all(
        Array.from({ length: n }, () =>
          new Promise<{ samples: number[]; errors: number; firstError: string }>((resolve, reject) => {
            const w = new Worker(join(APP_DIR, 'dist/bench/client-worker.js'), { workerData: { socketPath: daemon.socketPath, invalidations: per, rounds: 1 } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
        ),
      );
      const wall = Number(process.hrtime.bigint() - t0);
      const samples = results.flatMap((r) => r.samples);
      const errors = results.reduce((a, r) => a + r.errors, 0);
      // Every session must be gone with nothing left live on the daemon's host.
      let metrics = '';
      for (let i = 0; i < 200; i++) {
        metrics = await daemon.metrics();
        if (sample(metrics, 'viommud_clients') === 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const leaked = [...metrics.matchAll(/^viommud_live_objects\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
      const s = summary(samples, wall);
      const point = { clients: n, ...s, errors, leakedObjects: leaked, ratioToInProcess: +(s.ioctlsPerSec / inProcess.ioctlsPerSec).toFixed(4), firstError: results.find((r) => r.errors)?.firstError };
      points.push(point);
      console.log(
        `daemon ${String(n).padStart(2)} clients  ${s.ioctlsPerSec} ioctls/s  p50 ${s.p50us.toFixed(1)} us  p99 ${s.p99us.toFixed(1)} us  ` +
          `ratio ${point.ratioToInProcess}  errors ${errors}  leaked objects ${leaked}`,
      );
    }
  } finally {
    await daemon.stop();
  }
  const dir = join(APP_DIR, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'load.json'), JSON.stringify({ date: new Date().toISOString(), totalInvalidations: TOTAL_INVALIDATIONS, inProcess, points }, null, 2));
  if (points.some((p) => p.errors || p.leakedObjects)) process.exitCode = 1;
}

await main();
