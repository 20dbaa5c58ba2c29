// The broker's side of one-process-per-client (ADR 0125): session processes forked ahead of need
// (one spare, so a connection never waits for Node's start-up), an accepted socket handed to one
// over IPC, and a RemoteSession standing for it in the daemon: its figures and counters arrive in
// batches, its end is a message, its crash is logged and counted and touches nothing else.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { InspectableSession } from './inspect/snapshot.js';
import type { DaemonMetrics } from './metrics.js';
import type { PeerCredentials, SessionLimits } from './session.js';
import type { FromSessionProcess, SessionFigures, SessionProcessConfig, StatsBatch, ToSessionProcess } from './session-process.js';

const here = dirname(fileURLToPath(import.meta.url));

/** What the daemon needs of a session, in-process (Session) or in a process of its own (RemoteSession). */
export interface DaemonSession extends InspectableSession {
  readonly unsent: number;
  readonly unsentEventBytes: number;
  readonly eventsLost: number;
  end(reason?: string): void;
}

export interface SessionProcessOptions {
  /** Backend name reported in HELLO and logs ('native'). */
  readonly backendName: string;
  readonly logLevel?: string;
  /** Batch interval of counters (default 250 ms). */
  readonly flushMs?: number;
  /** Keep one session process started ahead of the next connection (default true). */
  readonly spare?: boolean;
}

/** The inspection page's counters of a session process, as its last batch reported them. */
export class RemoteStats {
  total = 0;
  errors = 0;
  invalidations = 0;
  invalidationEntries = 0;
  private names: Record<string, number> = {};
  update(s: SessionFigures['stats']): void {
    this.total = s.total;
    this.errors = s.errors;
    this.invalidations = s.invalidations;
    this.invalidationEntries = s.invalidationEntries;
    this.names = s.byName;
  }
  byName(): Record<string, number> {
    return this.names;
  }
}

/** Stands for the session process where the daemon expects a backend process (inspection, logs). */
export class RemoteProcess {
  readonly stats = new RemoteStats();
  constructor(readonly pid: number) {}
}

export function isRemoteProcess(p: unknown): p is RemoteProcess {
  return p instanceof RemoteProcess;
}

export class RemoteSession implements DaemonSession {
  readonly started = Date.now();
  readonly process: RemoteProcess;
  clientName = '';
  queueDepth = 0;
  unsent = 0;
  unsentEventBytes = 0;
  eventsSent = 0;
  eventsLost = 0;
  ioctlCount = 0;
  /** The session process said goodbye (a clean end, not a crash). */
  finished = false;

  constructor(
    readonly id: number,
    readonly peer: PeerCredentials | undefined,
    readonly child: ChildProcess,
  ) {
    this.process = new RemoteProcess(child.pid ?? -1);
  }

  get pid(): number {
    return this.process.pid;
  }

  /** The kernel has no call that lists a context's objects (ADR 0123): nothing to count here. */
  liveObjects(): Map<string, number> {
    return new Map();
  }

  absorb(f: SessionFigures): void {
    this.clientName = f.clientName;
    this.queueDepth = f.queueDepth;
    this.unsent = f.unsent;
    this.unsentEventBytes = f.unsentEventBytes;
    this.eventsSent = f.eventsSent;
    this.eventsLost = f.eventsLost;
    this.ioctlCount = f.ioctls;
    this.process.stats.update(f.stats);
  }

  end(reason = 'shutdown'): void {
    if (this.child.connected) this.child.send({ type: 'end', reason } satisfies ToSessionProcess);
  }
}

interface Spare {
  readonly child: ChildProcess;
  readonly ready: Promise<boolean>;
}

/** Forks session processes and hands them connections. */
export class SessionProcessPool {
  private spare: Spare | undefined;
  private readonly children = new Set<ChildProcess>();
  private closing = false;
  /** Spares that died before serving anyone, in a row: a broken set-up must not become a fork loop. */
  private failedStarts = 0;

  constructor(
    private readonly opts: SessionProcessOptions,
    private readonly config: SessionProcessConfig,
    private readonly log: Logger,
    private readonly metrics: DaemonMetrics,
  ) {}

  /** Starts the first spare (call once the daemon listens). */
  start(): void {
    if (this.opts.spare !== false) this.refill();
  }

  get alive(): number {
    return this.children.size;
  }

  /**
   * A session process for `socket` (the spare, or a fresh one): the socket goes over IPC, and the
   * broker's handle of it is closed once sent. `onEnd` runs when the process is gone.
   */
  hand(socket: Socket, id: number, peer: PeerCredentials | undefined, limits: SessionLimits, onEnd: (s: RemoteSession, crashed: boolean) => void): RemoteSession {
    const { child, ready } = this.spare ?? this.forkOne();
    this.spare = undefined;
    const session = new RemoteSession(id, peer, child);
    child.on('message', (m: FromSessionProcess) => {
      if (m.type === 'stats') this.absorb(session, m);
      else if (m.type === 'closed') session.finished = true;
    });
    child.once('exit', (code, signal) => {
      const crashed = !session.finished;
      if (crashed) {
        this.metrics.sessionCrashes.inc();
        this.log.error({ session: id, sessionPid: session.pid, code, signal, peer }, 'session process died; its client is disconnected');
      }
      onEnd(session, crashed);
    });
    const msg: ToSessionProcess = { type: 'session', id, peer, limits };
    // Only once the process listens: a message (and its socket) sent before that would be dropped.
    // If it never gets there, or the send fails, its exit handler above ends the session.
    void ready.then((up) => {
      if (!up) return void socket.destroy();
      child.send(msg, socket, (err) => {
        if (!err) return;
        this.log.warn({ session: id, err: err.message }, 'could not hand the connection to its session process');
        socket.destroy();
        child.kill('SIGKILL');
      });
    });
    if (this.opts.spare !== false && !this.closing) setImmediate(() => this.refill());
    return session;
  }

  /** Stops pre-starting; ends the spare; after `graceMs`, kills what is still alive. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    if (this.spare) this.spare.child.kill('SIGTERM');
    this.spare?.child.disconnect?.();
    this.spare = undefined;
    const until = Date.now() + graceMs;
    while (this.children.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.children) c.kill('SIGKILL');
    while (this.children.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  private absorb(s: RemoteSession, b: StatsBatch): void {
    const m = this.metrics;
    for (const [ioctl, errno, n] of b.ioctls) m.ioctls.inc({ ioctl, errno }, n);
    for (const [op, errno, n] of b.syscalls) m.syscalls.inc({ op, errno }, n);
    for (const [kind, n] of b.protocolErrors) m.protocolErrors.inc({ kind }, n);
    if (b.lostEvents) m.lostEvents.inc(b.lostEvents);
    for (const [ioctl, samples] of b.latency) for (const v of samples) m.latency.observe({ ioctl }, v);
    s.absorb(b.figures);
  }

  private refill(): void {
    if (this.spare || this.closing) return;
    // Back off after start-ups that failed: one more try a second later, not a fork loop.
    const spare = this.forkOne();
    this.spare = spare;
    void spare.ready.then((ok) => {
      if (ok) {
        this.failedStarts = 0;
        return;
      }
      if (this.spare === spare) this.spare = undefined;
      if (this.closing) return; // the spare we ended at shutdown
      this.failedStarts++;
      this.log.error({ sessionPid: spare.child.pid, failedStarts: this.failedStarts }, 'a session process failed to start');
      setTimeout(() => this.refill(), Math.min(30_000, 1000 * this.failedStarts)).unref();
    });
  }

  private forkOne(): Spare {
    // execArgv empty: the parent's flags (a debugger port, a loader) are not the session's.
    const child = fork(join(here, 'session-process.js'), [JSON.stringify(this.config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    this.children.add(child);
    this.metrics.sessionProcesses.set(this.children.size);
    const ready = new Promise<boolean>((resolve) => {
      const onMessage = (m: FromSessionProcess) => {
        if (m.type !== 'ready') return;
        child.off('message', onMessage);
        resolve(true);
      };
      child.on('message', onMessage);
      child.once('exit', () => resolve(false));
    });
    child.on('error', (e) => this.log.warn({ sessionPid: child.pid, err: e.message }, 'session process channel error'));
    child.once('exit', () => {
      this.children.delete(child);
      this.metrics.sessionProcesses.set(this.children.size);
      if (this.spare?.child === child) this.spare = undefined;
    });
    return { child, ready };
  }
}
