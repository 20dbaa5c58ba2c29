// A synchronous round trip over an asynchronous socket (ADR 0121). The Process contract's ioctl,
// read and write return values, so the caller must block until the daemon answers. A worker thread
// owns the socket; the caller hands it a frame and sleeps in Atomics.wait on a shared word until
// the worker has copied the reply into shared memory. Replies to asynchronous requests (poll) and
// pushed events come back as ordinary worker messages instead.
//
// With @viommu/native (ABI 5) the client needs no worker: DirectChannel (direct-channel.ts) owns
// the socket on the calling thread and blocks in poll(2) (ADR 0131). SyncChannel.open picks it.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SystemError } from '@viommu/uapi';
import { DirectChannel, isDirectBridge, type ChannelEvents, type DirectBridge } from './direct-channel.js';
import type { FdBridge } from './fd-channel.js';

export type { ChannelEvents } from './direct-channel.js';

// The worker is plain JavaScript with only Node built-ins, run from a string, so it needs no build
// step and works the same under jest and from dist.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const ctrl = new Int32Array(workerData.ctrl);
let data = new Uint8Array(workerData.data);
let syncId = -1, big = null, closed = false, pending = Buffer.alloc(0);
const sock = net.connect(workerData.path);
function wake(state, len) { Atomics.store(ctrl, 1, len); Atomics.store(ctrl, 0, state); Atomics.notify(ctrl, 0); }
function fail(message) {
  if (closed) return;
  closed = true;
  if (syncId >= 0) { syncId = -1; wake(3, 0); }
  parentPort.postMessage({ type: 'closed', message });
}
sock.on('connect', () => parentPort.postMessage({ type: 'connected' }));
sock.on('error', (e) => fail(e.code || e.message));
sock.on('close', () => fail('closed by the daemon'));
sock.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 16) {
    const len = pending.readUInt32LE(0);
    if (len < 16) { sock.destroy(); fail('bad frame length from the daemon'); return; }
    if (pending.length < len) break;
    const frame = pending.subarray(0, len);
    pending = pending.subarray(len);
    const id = frame.readUInt32LE(4), flags = frame.readUInt16LE(10);
    if ((flags & 4) === 0 && id === syncId) {
      syncId = -1;
      if (len > data.length) { big = Buffer.from(frame); wake(2, len); }
      else { data.set(frame); wake(1, len); }
    } else {
      parentPort.postMessage({ type: 'frame', frame: new Uint8Array(frame) });
    }
  }
});
parentPort.on('message', (m) => {
  if (m.type === 'sync') { if (closed) { wake(3, 0); return; } syncId = m.id; sock.write(m.frame); }
  else if (m.type === 'async') { if (!closed) sock.write(m.frame); }
  else if (m.type === 'grow') { data = new Uint8Array(m.data); data.set(big); const n = big.length; big = null; wake(1, n); }
  else if (m.type === 'close') { sock.end(); }
  else if (m.type === 'pause') { sock.pause(); }
  else if (m.type === 'resume') { sock.resume(); }
});
`;

/** What DaemonProcess needs of a channel; the worker and the direct channel both provide it. */
export interface SyncChannel {
  readonly closed: boolean;
  /** Sends `frame` and blocks until the reply with `id` arrives; returns the reply frame (a copy). */
  call(frame: Uint8Array, id: number, syscall: string): Uint8Array;
  /** Sends without waiting (the reply comes through onFrame). */
  send(frame: Uint8Array): void;
  /** Stops (or resumes) reading the socket: flow control, and a stalled client for tests. */
  pauseReading(): void;
  resumeReading(): void;
  /** Keeps the event loop alive while asynchronous requests are outstanding. */
  hold(): void;
  release(): void;
  unrefAll(): void;
  close(): void;
}

export const SyncChannel = {
  /**
   * Connects to the daemon. `bridge`: the client's @viommu/native addon when it has one; an addon
   * with `pollWait` (ABI 5) gives the direct channel, anything else the worker channel.
   * `VIOMMU_SYNC_CHANNEL=worker` forces the worker; `=direct` forces the direct channel, loading
   * the addon itself when none is passed (from VIOMMU_NATIVE_ADDON, or this monorepo's
   * packages/native build) — for running suites and benchmarks over both channels.
   */
  async open(path: string, events: ChannelEvents, timeoutMs: number, bridge?: FdBridge): Promise<SyncChannel> {
    const forced = process.env['VIOMMU_SYNC_CHANNEL'];
    if (forced !== 'worker') {
      const direct = isDirectBridge(bridge) ? bridge : forced === 'direct' ? workspaceAddon() : undefined;
      if (direct) return DirectChannel.open(path, events, timeoutMs, direct);
    }
    return WorkerChannel.open(path, events, timeoutMs);
  },
};

/** The addon for a forced direct channel without a bridge (this package does not depend on @viommu/native). */
function workspaceAddon(): DirectBridge {
  const here = dirname(fileURLToPath(import.meta.url));
  const path = process.env['VIOMMU_NATIVE_ADDON'] ?? join(here, '../../native/build/Release/viommu_native.node');
  const addon = loadRaw(path);
  if (!isDirectBridge(addon)) throw new Error(`VIOMMU_SYNC_CHANNEL=direct: ${path} has no pollWait (addon ABI 5 needed); rebuild @viommu/native`);
  return addon;
}

function loadRaw(path: string): unknown {
  return createRequire(import.meta.url)(path) as unknown;
}

export class WorkerChannel implements SyncChannel {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(8));
  private data: Uint8Array;
  private readonly worker: Worker;
  private refs = 0;
  closed = false;

  private constructor(path: string, events: ChannelEvents, connected: () => void, failed: (e: Error) => void, private readonly timeoutMs: number) {
    const sab = new SharedArrayBuffer(1 << 20);
    this.data = new Uint8Array(sab);
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, ctrl: this.ctrl.buffer, data: sab } });
    let up = false;
    this.worker.on('message', (m: { type: string; frame?: Uint8Array; message?: string }) => {
      if (m.type === 'connected') {
        up = true;
        connected();
      } else if (m.type === 'frame') events.onFrame(m.frame!);
      else if (m.type === 'closed') {
        this.closed = true;
        if (!up) failed(new SystemError('ECONNREFUSED', 'connect', m.message));
        events.onClosed(m.message ?? 'closed');
        void this.worker.terminate();
      }
    });
    this.worker.on('error', (e) => failed(e));
  }

  static open(path: string, events: ChannelEvents, timeoutMs: number): Promise<WorkerChannel> {
    return new Promise((resolve, reject) => {
      const ch: WorkerChannel = new WorkerChannel(path, events, () => resolve(ch), reject, timeoutMs);
    });
  }

  /** Sends `frame` and blocks until the reply with `id` arrives; returns the reply frame (a copy). */
  call(frame: Uint8Array, id: number, syscall: string): Uint8Array {
    if (this.closed) throw new SystemError('ENOTCONN', syscall, 'the daemon connection is closed');
    Atomics.store(this.ctrl, 0, 0);
    this.worker.postMessage({ type: 'sync', id, frame });
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      // Sleep in short slices and re-read the word: a notify from another thread can be lost on
      // Node 20 (seen under load), the stored state cannot.
      while (Atomics.load(this.ctrl, 0) === 0) {
        if (Date.now() >= deadline) {
          this.close();
          throw new SystemError('ETIMEDOUT', syscall, `no answer from the daemon in ${this.timeoutMs} ms`);
        }
        Atomics.wait(this.ctrl, 0, 0, 20);
      }
      const state = Atomics.load(this.ctrl, 0);
      const length = Atomics.load(this.ctrl, 1);
      if (state === 1) return this.data.slice(0, length);
      if (state === 3) {
        this.closed = true;
        throw new SystemError('ECONNRESET', syscall, 'the daemon closed the connection');
      }
      // state 2: the reply does not fit; hand the worker a bigger shared buffer and wait again.
      const sab = new SharedArrayBuffer(Math.max(length, this.data.length * 2));
      this.data = new Uint8Array(sab);
      Atomics.store(this.ctrl, 0, 0);
      this.worker.postMessage({ type: 'grow', data: sab });
    }
  }

  /** Sends without waiting (the reply comes through onFrame). */
  send(frame: Uint8Array): void {
    if (!this.closed) this.worker.postMessage({ type: 'async', frame });
  }

  /** Stops (or resumes) reading the socket: flow control, and a stalled client for tests. */
  pauseReading(): void {
    if (!this.closed) this.worker.postMessage({ type: 'pause' });
  }
  resumeReading(): void {
    if (!this.closed) this.worker.postMessage({ type: 'resume' });
  }

  /** Keeps the event loop alive while asynchronous requests are outstanding. */
  hold(): void {
    if (this.refs++ === 0) this.worker.ref();
  }
  release(): void {
    if (--this.refs === 0) this.worker.unref();
  }
  unrefAll(): void {
    if (this.refs === 0) this.worker.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.postMessage({ type: 'close' });
    // Give the worker a moment to flush the FIN, then stop it.
    setTimeout(() => void this.worker.terminate(), 50).unref();
  }
}
