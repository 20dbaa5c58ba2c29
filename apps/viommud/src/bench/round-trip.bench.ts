// Where a synchronous call to viommud spends its time (issue 10, ADR 0131). One client, N calls,
// each layer measured on its own in the same run:
//   hop         main thread -> postMessage -> worker -> Atomics.notify -> main (no socket): the
//               worker channel's thread hop, with its 20 ms wait slices counted
//   echo raw    write + blocking poll + read on a Unix socket to a Node.js echo server in another
//               process (the addon's syscalls, no framing): the socket plus the peer's event loop
//   echo node   the same ping-pong from this thread's event loop with net.Socket (plain Node.js)
//   echo direct / echo worker   the two SyncChannels against the echo server (framing included)
//   daemon direct / daemon worker   DaemonProcess against a sim-backend viommud: close(-1), the
//               IOMMU_IOAS_ALLOC + IOMMU_DESTROY (per ioctl), and close(-1) (EBADF)
// Daemon handling is (daemon X) - (echo X). Ratios are against the direct channel. JSON in
// bench-results/round-trip.json (VIOMMUD_BENCH_OUT: elsewhere). VIOMMUD_BENCH_ROUNDTRIPS sets N
// (default 4000).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createSimHost } from '@viommu/core';
import { loadAddon } from '@viommu/native';
import { connectDaemonProcess, DirectChannel, WorkerChannel, type SyncChannel } from '@viommu/protocol';
import { IOMMU_DESTROY, IOMMU_IOAS_ALLOC, iommu_destroy, iommu_ioas_alloc, type Process } from '@viommu/uapi';
import { APP_DIR, startDaemon } from '../spawn-daemon.js';

const N = Number(process.env['VIOMMUD_BENCH_ROUNDTRIPS'] ?? 4000);
const WARM = Math.max(20, N >> 4);


interface Stat {
  name: string;
  n: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  perSec: number;
  [extra: string]: unknown;
}

function stat(name: string, ns: Float64Array, extra: Record<string, unknown> = {}): Stat {
  const sorted = Float64Array.from(ns).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! / 1000;
  const mean = ns.reduce((a, b) => a + b, 0) / ns.length / 1000;
  return { name, n: ns.length, meanUs: +mean.toFixed(2), p50Us: +at(0.5).toFixed(2), p99Us: +at(0.99).toFixed(2), perSec: Math.round(1e6 / mean), ...extra };
}

/** Times `n` calls of `f` after a warm-up; ns per call. */
function measure(n: number, f: (i: number) => void): Float64Array {
  for (let i = 0; i < WARM; i++) f(i);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    f(i);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

/** The worker hop alone, waiting exactly as WorkerChannel.call does (20 ms slices). */
async function hop(n: number): Promise<Stat> {
  const ctrl = new Int32Array(new SharedArrayBuffer(8));
  const stamp = new BigInt64Array(new SharedArrayBuffer(8));
  const w = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const ctrl = new Int32Array(workerData.ctrl), stamp = new BigInt64Array(workerData.stamp);
     parentPort.on('message', () => { stamp[0] = process.hrtime.bigint(); Atomics.store(ctrl, 0, 1); Atomics.notify(ctrl, 0); });`,
    { eval: true, workerData: { ctrl: ctrl.buffer, stamp: stamp.buffer } },
  );
  await new Promise((r) => w.once('online', r));
  let slices = 0;
  let late = 0;
  let wakeNs = 0;
  const ns = measure(n, () => {
    Atomics.store(ctrl, 0, 0);
    w.postMessage(0);
    while (Atomics.load(ctrl, 0) === 0) {
      if (Atomics.wait(ctrl, 0, 0, 20) !== 'timed-out') continue;
      slices++;
      // The worker had answered, yet its notify did not end the wait: a lost (or very late) wake-up.
      if (Number(process.hrtime.bigint() - stamp[0]!) > 1e6 && Atomics.load(ctrl, 0) !== 0) late++;
    }
    wakeNs += Number(process.hrtime.bigint() - stamp[0]!);
  });
  await w.terminate();
  return stat('hop (postMessage + Atomics.notify)', ns, { timedOutSlices: slices, lostNotifies: late, wakeUpUs: +(wakeNs / (n + WARM) / 1000).toFixed(2) });
}

/** A Node.js echo server in its own process. */
async function echoServer(): Promise<{ path: string; stop(): void }> {
  const path = join(mkdtempSync(join(tmpdir(), 'viommu-echo-')), 'echo.sock');
  const child = spawn(
    process.execPath,
    ['-e', `require('node:net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(${JSON.stringify(path)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((r) => child.stdout!.once('data', r));
  return { path, stop: () => child.kill() };
}

function frame(id: number): Uint8Array {
  const f = new Uint8Array(32);
  const v = new DataView(f.buffer);
  v.setUint32(0, 32, true);
  v.setUint32(4, id, true);
  v.setUint16(8, 4, true);
  return f;
}

function echoRaw(path: string, n: number): Stat {
  const a = loadAddon();
  const fd = a.unixConnect(path);
  if (fd < 0) throw new Error(`connect ${path}: ${fd}`);
  const out = frame(1);
  const back = new Uint8Array(64);
  const ns = measure(n, () => {
    if (a.write(fd, out) !== out.length) throw new Error('short write');
    let got = 0;
    while (got < out.length) {
      a.pollWait(fd, 1, -1);
      const r = a.read(fd, back.subarray(got));
      if (r > 0) got += r;
      else if (r !== -11) throw new Error(`read ${r}`);
    }
  });
  a.close(fd);
  return stat('echo raw (write/poll/read)', ns);
}

async function echoNode(path: string, n: number): Promise<Stat> {
  const sock = netConnect(path);
  await new Promise((r) => sock.once('connect', r));
  const out = Buffer.from(frame(1));
  let waiting: (() => void) | undefined;
  let got = 0;
  sock.on('data', (d) => {
    got += d.length;
    if (got >= out.length) {
      got -= out.length;
      waiting!();
    }
  });
  const one = () =>
    new Promise<void>((r) => {
      waiting = r;
      sock.write(out);
    });
  for (let i = 0; i < WARM; i++) await one();
  const ns = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await one();
    ns[i] = Number(process.hrtime.bigint() - t0);
  }
  sock.destroy();
  return stat('echo node (net.Socket, async)', ns);
}

async function echoChannel(name: string, ch: SyncChannel, n: number): Promise<Stat> {
  let id = 1;
  const ns = measure(n, () => {
    const f = frame(++id);
    ch.call(f, id, 'ioctl');
  });
  ch.close();
  await new Promise((r) => setTimeout(r, 60));
  return stat(name, ns);
}

/** IOMMU_IOAS_ALLOC + IOMMU_DESTROY (ns per ioctl) and close(-1), `n` samples each, into `into`. */
function daemonBlock(p: Process, n: number, into: { pair: number[]; bad: number[] }): void {
  const fd = p.open('/dev/iommu');
  const arg = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size, flags: 0, out_ioas_id: 0 });
  const destroy = iommu_destroy.encode({ size: iommu_destroy.size, id: 0 });
  const pair = measure(n, () => {
    p.ioctl(fd, IOMMU_IOAS_ALLOC, arg);
    iommu_destroy.set(destroy, 'id', iommu_ioas_alloc.get(arg, 'out_ioas_id') as number);
    p.ioctl(fd, IOMMU_DESTROY, destroy);
  });
  p.close(fd);
  for (const t of pair) into.pair.push(t / 2);
  // A failing call costs the daemon an error object (and its log line), so it is not the cheapest.
  const bad = measure(n, () => {
    try {
      p.close(-1);
    } catch {
      // EBADF: the point is the round trip
    }
  });
  into.bad.push(...bad);
}

/**
 * The same calls over each channel, in alternating blocks, so a change of the machine's load
 * during the run (it is shared) weighs on both alike.
 */
function daemonCalls(channels: Array<[string, Process]>, n: number): Stat[] {
  const acc = channels.map(() => ({ pair: [] as number[], bad: [] as number[] }));
  const BLOCKS = 4;
  for (let b = 0; b < BLOCKS; b++) channels.forEach(([, p], i) => daemonBlock(p, Math.max(1, Math.floor(n / 2 / BLOCKS)), acc[i]!));
  return channels.flatMap(([name], i) => [
    stat(`${name}: IOAS_ALLOC/DESTROY`, Float64Array.from(acc[i]!.pair)),
    stat(`${name}: close(-1) EBADF`, Float64Array.from(acc[i]!.bad)),
  ]);
}

function timerProbe(): Record<string, number> {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const sleep = (ms: number) => {
    const t0 = process.hrtime.bigint();
    Atomics.wait(cell, 0, 0, ms);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const waits = Array.from({ length: 20 }, () => sleep(1)).sort((a, b) => a - b);
  const polls = Array.from({ length: 20 }, () => {
    const t0 = process.hrtime.bigint();
    loadAddon().pollWait(0, 0, 1);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }).sort((a, b) => a - b);
  return { atomicsWait1msMedianMs: +waits[10]!.toFixed(3), pollWait1msMedianMs: +polls[10]!.toFixed(3) };
}

/** viommud under `node --cpu-prof` (a flag NODE_OPTIONS refuses, so not through startDaemon). */
async function profiledDaemon(dir: string): Promise<{ socketPath: string; stop(): Promise<unknown> }> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'viommud-')), 'viommud.sock');
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, join(APP_DIR, 'dist/cli.js'), '--socket', socketPath, '--backend', 'sim'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  while (!existsSync(socketPath)) await new Promise((r) => setTimeout(r, 20));
  return { socketPath, stop: () => (child.kill('SIGTERM'), exited) };
}

async function main(): Promise<void> {
  const events = { onFrame: () => undefined, onClosed: () => undefined };
  const results: Stat[] = [];
  const log = (s: Stat) => {
    results.push(s);
    const extra = Object.entries(s)
      .filter(([k]) => !['name', 'n', 'meanUs', 'p50Us', 'p99Us', 'perSec'].includes(k))
      .map(([k, v]) => ` ${k} ${String(v)}`)
      .join('');
    console.log(`${s.name.padEnd(40)} mean ${s.meanUs.toFixed(1).padStart(8)} us  p50 ${s.p50Us.toFixed(1).padStart(8)}  p99 ${s.p99Us.toFixed(1).padStart(8)}  ${String(s.perSec).padStart(7)}/s${extra}`);
  };
  const timers = timerProbe();
  console.log(`timers: Atomics.wait(1 ms) ${timers.atomicsWait1msMedianMs} ms, poll(1 ms) ${timers.pollWait1msMedianMs} ms (medians of 20)`);

  log(await hop(N));
  const echo = await echoServer();
  try {
    log(echoRaw(echo.path, N));
    log(await echoNode(echo.path, N));
    log(await echoChannel('echo direct (DirectChannel)', await DirectChannel.open(echo.path, events, 30_000, loadAddon()), N));
    log(await echoChannel('echo worker (WorkerChannel)', await WorkerChannel.open(echo.path, events, 30_000), N));
  } finally {
    echo.stop();
  }

  for (const s of daemonCalls([['in-process', createSimHost().spawn()]], N)) log(s);
  // VIOMMUD_BENCH_PROFILE=DIR: the daemon writes a V8 CPU profile there when it exits.
  const profile = process.env['VIOMMUD_BENCH_PROFILE'];
  const daemon = profile ? await profiledDaemon(profile) : await startDaemon();
  try {
    const direct = await connectDaemonProcess(daemon.socketPath, { fdBridge: loadAddon() });
    process.env['VIOMMU_SYNC_CHANNEL'] = 'worker';
    const worker = await connectDaemonProcess(daemon.socketPath, { fdBridge: loadAddon() });
    delete process.env['VIOMMU_SYNC_CHANNEL'];
    for (const s of daemonCalls([['daemon direct', direct], ['daemon worker', worker]], N)) log(s);
    direct.disconnect();
    worker.disconnect();
  } finally {
    await daemon.stop();
  }

  const by = (name: string) => results.find((r) => r.name === name)!;
  const ratio = (a: string, b: string) => ({
    mean: +(by(a).meanUs / by(b).meanUs).toFixed(2),
    p50: +(by(a).p50Us / by(b).p50Us).toFixed(2),
  });
  const ratios = {
    echoWorkerOverDirect: ratio('echo worker (WorkerChannel)', 'echo direct (DirectChannel)'),
    ioctlWorkerOverDirect: ratio('daemon worker: IOAS_ALLOC/DESTROY', 'daemon direct: IOAS_ALLOC/DESTROY'),
    ebadfWorkerOverDirect: ratio('daemon worker: close(-1) EBADF', 'daemon direct: close(-1) EBADF'),
    ioctlDirectOverInProcess: ratio('daemon direct: IOAS_ALLOC/DESTROY', 'in-process: IOAS_ALLOC/DESTROY'),
  };
  // p50s: the means on a shared machine are dominated by the times this process was not running.
  const parts = {
    hopUs: by('hop (postMessage + Atomics.notify)').p50Us,
    socketAndPeerLoopUs: by('echo raw (write/poll/read)').p50Us,
    framingDirectUs: +(by('echo direct (DirectChannel)').p50Us - by('echo raw (write/poll/read)').p50Us).toFixed(2),
    daemonHandlingUs: +(by('daemon direct: IOAS_ALLOC/DESTROY').p50Us - by('echo direct (DirectChannel)').p50Us).toFixed(2),
  };
  console.log(`parts (p50 us): ${JSON.stringify(parts)}`);
  console.log(`ratios: ${JSON.stringify(ratios)}`);
  const dir = process.env['VIOMMUD_BENCH_OUT'] ?? join(APP_DIR, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'round-trip.json'), JSON.stringify({ date: new Date().toISOString(), n: N, timers, results, parts, ratios }, null, 2));
}

await main();
