// What a session process per client (ADR 0125) costs on the host: connect latency (connect, HELLO
// and the first call) and per-call latency, for native-backend sessions in the daemon's own process
// (the baseline, as before ADR 0125) and in session processes with and without the spare. No
// /dev/iommu here: both run on the test kernel stand-in (memfds; the timed call is a real ioctl
// that the kernel answers with ENOTTY). Bounded in count. Writes bench-results/session-processes.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connectDaemonProcess } from '@viommu/protocol';
import { IOMMU_IOAS_ALLOC, iommu_ioas_alloc } from '@viommu/uapi';
import { APP_DIR } from '../spawn-daemon.js';

const CONNECTS = Number(process.env['VIOMMUD_BENCH_CONNECTS'] ?? 30);
const CALLS = Number(process.env['VIOMMUD_BENCH_CALLS'] ?? 3000);
const SPARE_GAP_MS = Number(process.env['VIOMMUD_BENCH_GAP_MS'] ?? 1500);
const env = { ...process.env, VIOMMUD_NATIVE_BACKEND_MODULE: join(APP_DIR, 'dist/testing/fake-kernel.js') };

async function start(args: string[]): Promise<{ child: ChildProcess; socket: string }> {
  const socket = join(mkdtempSync(join(tmpdir(), 'viommud-bench-')), 's');
  const child = spawn(process.execPath, [...args.map((a) => a.replace('SOCKET', socket))], { stdio: ['ignore', 'pipe', 'inherit'], env });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`daemon exited ${c}`)));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.includes('"msg":"listening"')) resolve();
    });
  });
  return { child, socket };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!.toFixed(1);
};

async function measure(name: string, args: string[], gapMs: number) {
  const d = await start(args);
  await sleep(500); // the first spare, when there is one
  const connect: number[] = [];
  const calls: number[] = [];
  const arg = iommu_ioas_alloc.encode({});
  try {
    for (let i = 0; i < CONNECTS; i++) {
      const t0 = performance.now();
      const p = await connectDaemonProcess(d.socket);
      const fd = p.open('/dev/iommu');
      connect.push(performance.now() - t0);
      if (i === 0) {
        for (let k = 0; k < CALLS; k++) {
          const t = performance.now();
          try {
            p.ioctl(fd, IOMMU_IOAS_ALLOC, arg);
          } catch {
            // ENOTTY from the kernel: a full round trip all the same
          }
          calls.push((performance.now() - t) * 1000);
        }
      }
      p.disconnect();
      await sleep(gapMs);
    }
  } finally {
    d.child.kill('SIGTERM');
    await new Promise((r) => d.child.once('exit', r));
  }
  const r = { name, gapMs, connectP50ms: pct(connect, 50), connectP99ms: pct(connect, 99), callP50us: pct(calls, 50), callP99us: pct(calls, 99) };
  console.log(`${name.padEnd(44)} connect p50 ${r.connectP50ms} ms p99 ${r.connectP99ms} ms   call p50 ${r.callP50us} us p99 ${r.callP99us} us`);
  return r;
}

const cli = join(APP_DIR, 'dist/cli.js');
const base = await measure('in the daemon (before ADR 0125)', [join(APP_DIR, 'dist/bench/inprocess-native-daemon.js'), 'SOCKET'], 300);
const rows = [
  base,
  await measure('session process, spare ready', [cli, '--backend', 'native', '--socket', 'SOCKET'], SPARE_GAP_MS),
  await measure('session process, back to back (spare racing)', [cli, '--backend', 'native', '--socket', 'SOCKET'], 0),
  await measure('session process, no spare (cold fork)', [cli, '--backend', 'native', '--no-spare', '--socket', 'SOCKET'], 300),
];
for (const r of rows.slice(1)) {
  console.log(`${r.name.padEnd(44)} connect x${(r.connectP50ms / base.connectP50ms).toFixed(2)}  call x${(r.callP50us / base.callP50us).toFixed(2)} (p50 against the baseline)`);
}
const dir = join(APP_DIR, 'bench-results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'session-processes.json'), JSON.stringify({ date: new Date().toISOString(), connects: CONNECTS, calls: CALLS, rows }, null, 2));
