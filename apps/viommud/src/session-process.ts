// A native-backend client's session process (ADR 0125). The broker forks it ahead of need (the
// spare), then hands it one accepted connection over the IPC channel; it runs the Session there on
// a NativeProcess of its own, so the client's pointers are addresses in this process's mm and its
// fd numbers name this process's fds: the kernel itself gives EFAULT and EBADF for another
// client's. Counters go to the broker in batches; when the session ends this process exits, and
// the kernel releases everything it still held.
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { FdInbox, type FdBridge } from '@viommu/protocol';
import type { Backend } from './backend.js';
import { instrumentBackend, type IoctlStats } from './inspect/stats.js';
import type { SessionMetrics } from './metrics.js';
import { nativeBackend } from './native-client.js';
import { Session, type FdPassing, type PeerCredentials, type SessionLimits } from './session.js';
// Only what a session runs is imported here (no simulator, no prom-client): under TCG every module
// is seconds of start-up, paid by the spare but still paid.

/** How the broker configures its session processes (argv[2], JSON). */
export interface SessionProcessConfig {
  readonly logLevel: string;
  /** Private directory for this process's fd channel socket; absent: no fd passing. */
  readonly fdDir?: string;
  /** Milliseconds between two batches of counters. */
  readonly flushMs: number;
}

/** Broker → session process. */
export type ToSessionProcess =
  | { readonly type: 'session'; readonly id: number; readonly peer: PeerCredentials | undefined; readonly limits: SessionLimits }
  | { readonly type: 'end'; readonly reason: string };

/** What the broker shows of a session: its gauges, and the inspection page's counters. */
export interface SessionFigures {
  readonly clientName: string;
  readonly queueDepth: number;
  readonly unsent: number;
  readonly unsentEventBytes: number;
  readonly eventsSent: number;
  readonly eventsLost: number;
  readonly ioctls: number;
  readonly stats: { total: number; errors: number; invalidations: number; invalidationEntries: number; byName: Record<string, number> };
}

/** Session process → broker: counter increments since the previous batch, and current figures. */
export interface StatsBatch {
  readonly type: 'stats';
  readonly ioctls: Array<[string, string, number]>;
  readonly syscalls: Array<[string, string, number]>;
  readonly protocolErrors: Array<[string, number]>;
  readonly lostEvents: number;
  /** Latency samples in seconds, by ioctl name. */
  readonly latency: Array<[string, number[]]>;
  readonly figures: SessionFigures;
}

export type FromSessionProcess = { readonly type: 'ready' } | StatsBatch | { readonly type: 'closed'; readonly reason: string };

/** Label pair → count, in nested maps (no key strings built per call). */
class PairCounts {
  private readonly m = new Map<string, Map<string, number>>();
  inc(a: string, b: string): void {
    let inner = this.m.get(a);
    if (!inner) this.m.set(a, (inner = new Map()));
    inner.set(b, (inner.get(b) ?? 0) + 1);
  }
  take(): Array<[string, string, number]> {
    const out: Array<[string, string, number]> = [];
    for (const [a, inner] of this.m) for (const [b, n] of inner) out.push([a, b, n]);
    this.m.clear();
    return out;
  }
}

/** The Session's metrics, recorded here and shipped to the broker's registry in batches. */
export class BatchedMetrics implements SessionMetrics {
  private readonly ioctlCounts = new PairCounts();
  private readonly syscallCounts = new PairCounts();
  private readonly errorCounts = new Map<string, number>();
  private readonly samples = new Map<string, number[]>();
  private lost = 0;
  private dirty = false;

  readonly ioctls = { inc: (l: { ioctl: string; errno: string }) => (this.ioctlCounts.inc(l.ioctl, l.errno), (this.dirty = true)) };
  readonly syscalls = { inc: (l: { op: string; errno: string }) => (this.syscallCounts.inc(l.op, l.errno), (this.dirty = true)) };
  readonly latency = {
    observe: (l: { ioctl: string }, seconds: number) => {
      let s = this.samples.get(l.ioctl);
      if (!s) this.samples.set(l.ioctl, (s = []));
      s.push(seconds);
    },
  };
  readonly protocolErrors = { inc: (l: { kind: string }) => (this.errorCounts.set(l.kind, (this.errorCounts.get(l.kind) ?? 0) + 1), (this.dirty = true)) };
  readonly lostEvents = { inc: () => (this.lost++, (this.dirty = true)) };

  /** The increments since the last call, or undefined when there are none and `figures` did not change. */
  take(figures: SessionFigures, last: string): { batch: StatsBatch; key: string } | undefined {
    const key = JSON.stringify(figures);
    if (!this.dirty && key === last) return undefined;
    this.dirty = false;
    const latency: Array<[string, number[]]> = [];
    for (const [name, s] of this.samples) if (s.length) latency.push([name, s.splice(0)]);
    const protocolErrors = [...this.errorCounts];
    this.errorCounts.clear();
    const lostEvents = this.lost;
    this.lost = 0;
    return { batch: { type: 'stats', ioctls: this.ioctlCounts.take(), syscalls: this.syscallCounts.take(), protocolErrors, lostEvents, latency, figures }, key };
  }
}

function figuresOf(s: Session, stats: IoctlStats | undefined): SessionFigures {
  return {
    clientName: s.clientName,
    queueDepth: s.queueDepth,
    unsent: s.unsent,
    unsentEventBytes: s.unsentEventBytes,
    eventsSent: s.eventsSent,
    eventsLost: s.eventsLost,
    ioctls: s.ioctlCount,
    stats: stats
      ? { total: stats.total, errors: stats.errors, invalidations: stats.invalidations, invalidationEntries: stats.invalidationEntries, byName: stats.byName() }
      : { total: 0, errors: 0, invalidations: 0, invalidationEntries: 0, byName: {} },
  };
}

/** The backend: the real kernel, or (tests) a module's `createBackend()` named by VIOMMUD_NATIVE_BACKEND_MODULE. */
async function loadBackend(): Promise<Backend> {
  const module = process.env['VIOMMUD_NATIVE_BACKEND_MODULE'];
  if (!module) return nativeBackend();
  const m = (await import(module)) as { createBackend(): Backend | Promise<Backend> };
  return m.createBackend();
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('a session process is started by viommud (an IPC channel is needed)');
  const ipcSend = process.send.bind(process);
  // The broker may be gone at any moment (then 'disconnect' ends us): never send into a closed channel.
  const send = (m: FromSessionProcess, done?: () => void) => {
    if (process.connected) ipcSend(m, undefined, undefined, (err) => (err ? exit(0) : done?.()));
    else if (done) done();
    else exit(0);
  };
  const config = JSON.parse(process.argv[2] ?? '{}') as SessionProcessConfig;
  // Shutdown is the broker's to order (its deadline); a signal to the whole group must not cut
  // sessions short. An IPC channel that closes (the broker died) ends the session at once.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  const log = pino({ name: 'viommud', level: config.logLevel }).child({ sessionPid: process.pid });
  const backend = instrumentBackend(await loadBackend());
  let bridge: FdBridge | undefined;
  try {
    if (config.fdDir) bridge = (await import('@viommu/native')).loadAddon();
  } catch (e) {
    log.warn({ reason: (e as Error).message }, 'no fd passing in this session');
  }
  const fdPassing: FdPassing | undefined = bridge && config.fdDir ? { inbox: new FdInbox(bridge, config.fdDir, `fds-${process.pid}.sock`), bridge } : undefined;
  const metrics = new BatchedMetrics();
  let session: Session | undefined;
  let lastKey = '';
  let flushTimer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (!session) return;
    const t = metrics.take(figuresOf(session, backend.statsOf(session.process)), lastKey);
    if (!t) return;
    lastKey = t.key;
    send(t.batch);
  };
  const exit = (code: number) => {
    fdPassing?.inbox.close();
    process.exit(code);
  };

  process.on('disconnect', () => {
    session?.end('broker gone');
    exit(0);
  });
  process.on('message', (m: ToSessionProcess, socket?: Socket) => {
    if (m.type === 'end') {
      session?.end(m.reason);
      return;
    }
    if (m.type !== 'session' || session || !socket) return;
    session = new Session(m.id, socket, backend, log, metrics, m.limits, m.peer, () => {
      if (flushTimer) clearInterval(flushTimer);
      flush();
      // The last batch and the goodbye leave before we do; then the kernel releases what is left.
      send({ type: 'closed', reason: 'session ended' }, () => exit(0));
    }, fdPassing);
    flushTimer = setInterval(flush, config.flushMs);
    flushTimer.unref();
  });
  send({ type: 'ready' });
}

main().catch((e: unknown) => {
  process.stderr.write(`viommud session process: ${(e as Error).message}\n`);
  process.exit(1);
});
