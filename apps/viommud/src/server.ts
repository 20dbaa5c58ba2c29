// The daemon: a Unix-socket server (its own socket at 0600, or one systemd passed in), one session
// per connection — in this process (the simulator), or in a session process of its own (the
// native backend, ADR 0125) — metrics and graceful shutdown.
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { Gauge } from 'prom-client';
import { DEFAULT_MAX_FRAME, FdInbox, type FdBridge } from '@viommu/protocol';
import type { Backend } from './backend.js';
import { SessionProcessPool, type DaemonSession, type SessionProcessOptions } from './broker.js';
import { DaemonMetrics } from './metrics.js';
import { Session, type FdPassing, type PeerCredentials, type SessionLimits } from './session.js';

export interface DaemonOptions {
  /** Sessions run in this process on this backend (the simulator: one host shared by all). */
  readonly backend?: Backend;
  /** Or each session runs in a process of its own (the native backend, ADR 0125). */
  readonly sessionProcesses?: SessionProcessOptions;
  /** Path to create the socket at; or `fd` (socket activation). */
  readonly socketPath?: string;
  readonly fd?: number;
  readonly logger?: Logger;
  readonly limits?: Partial<SessionLimits>;
  /** Reads SO_PEERCRED of a connected socket fd; undefined when the native bridge is not loaded. */
  readonly peerCred?: (fd: number) => PeerCredentials | undefined;
  /** @viommu/native's addon: offer fd passing (feature SCM_RIGHTS, ADR 0129); without it, memory is mirrored. */
  readonly fdBridge?: FdBridge;
}

/** @viommu/native's addon as the fd bridge, or undefined (with the reason) when it does not load. */
export async function loadFdBridge(onError?: (message: string) => void): Promise<FdBridge | undefined> {
  try {
    const native = await import('@viommu/native');
    return native.loadAddon();
  } catch (e) {
    onError?.((e as Error).message);
    return undefined;
  }
}

export interface Daemon {
  readonly metrics: DaemonMetrics;
  readonly sessions: ReadonlySet<DaemonSession>;
  readonly logger: Logger;
  readonly backendName: string;
  listen(): Promise<void>;
  /** Stops accepting, waits up to `deadlineMs` for clients to leave, then disconnects the rest. */
  shutdown(deadlineMs?: number): Promise<void>;
}

export function createDaemon(opts: DaemonOptions): Daemon {
  const logger = opts.logger ?? pino({ name: 'viommud' });
  const limits: SessionLimits = {
    maxFrame: opts.limits?.maxFrame ?? DEFAULT_MAX_FRAME,
    stallMs: opts.limits?.stallMs ?? 10_000,
    maxUnsent: opts.limits?.maxUnsent ?? 64 * 1024 * 1024,
  };
  if (!opts.backend === !opts.sessionProcesses) throw new Error('a daemon needs a backend or session processes (one of them)');
  const backendName = opts.backend?.name ?? opts.sessionProcesses!.backendName;
  const sessions = new Set<DaemonSession>();
  let nextSession = 1;
  let pool: SessionProcessPool | undefined;
  let server: Server | undefined;
  const metrics = new DaemonMetrics({
    liveObjects() {
      const totals = new Map<string, number>();
      for (const s of sessions) for (const [type, n] of s.liveObjects()) totals.set(type, (totals.get(type) ?? 0) + n);
      return totals;
    },
    queueDepth() {
      let n = 0;
      for (const s of sessions) n += s.queueDepth;
      return n;
    },
  });

  // Memory the daemon holds for clients that have not read it yet: bounded per client by maxUnsent
  // and the stall timeout, and for event streams by each subscription's max_queued.
  const sumOver = (f: (s: DaemonSession) => number) => () => [...sessions].reduce((a, s) => a + f(s), 0);
  const unsent = sumOver((s) => s.unsent);
  const unsentEvents = sumOver((s) => s.unsentEventBytes);
  const unsentGauge: Gauge = new Gauge({ name: 'viommud_unsent_bytes', help: 'bytes queued to clients that their sockets have not taken yet', registers: [metrics.registry], collect: () => unsentGauge.set(unsent()) });
  const eventGauge: Gauge = new Gauge({ name: 'viommud_event_unsent_bytes', help: 'bytes of EVENT frames among them', registers: [metrics.registry], collect: () => eventGauge.set(unsentEvents()) });
  const streamed = sumOver((s) => s.eventsSent);
  const streamedGauge: Gauge = new Gauge({ name: 'viommud_events_streamed', help: 'EVENT records queued to the connected clients so far', registers: [metrics.registry], collect: () => streamedGauge.set(streamed()) });

  let fdPassing: FdPassing | undefined;
  let fdDir: string | undefined;

  function accept(socket: Socket): void {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let peer: PeerCredentials | undefined;
    try {
      peer = fd !== undefined && fd >= 0 ? opts.peerCred?.(fd) : undefined;
    } catch {
      peer = undefined;
    }
    const gone = (s: DaemonSession) => {
      sessions.delete(s);
      metrics.clients.set(sessions.size);
    };
    let session: DaemonSession;
    try {
      const id = nextSession++;
      session = pool
        ? pool.hand(socket, id, peer, limits, gone)
        : new Session(
        id,
        socket,
        opts.backend!,
        logger,
        metrics,
        limits,
        peer,
        gone,
        fdPassing,
      );
    } catch (e) {
      logger.error({ err: (e as Error).message }, 'could not start a session');
      socket.destroy();
      return;
    }
    sessions.add(session);
    metrics.clients.set(sessions.size);
    const sessionPid = pool ? (session.process as { pid?: number }).pid : undefined;
    logger.info({ session: session.id, peer: peer ?? 'unknown (no SO_PEERCRED without @viommu/native)', ...(sessionPid ? { sessionPid } : {}) }, 'client connected');
  }

  return {
    metrics,
    sessions,
    logger,
    backendName,
    listen() {
      if (opts.fdBridge) {
        // The fd channel's socket lives in a private directory next to ours (or in the temp dir
        // under socket activation); clients learn its path in HELLO. Session processes each
        // listen on a socket of their own in the same directory.
        fdDir = mkdtempSync(join(opts.socketPath ? dirname(opts.socketPath) : tmpdir(), '.viommud-fds-'));
        if (!opts.sessionProcesses) fdPassing = { inbox: new FdInbox(opts.fdBridge, fdDir), bridge: opts.fdBridge };
        logger.info({ ...(fdPassing ? { fdSocket: fdPassing.inbox.path } : { fdDir }) }, 'fd passing (SCM_RIGHTS) offered');
      }
      if (opts.sessionProcesses) {
        const sp = opts.sessionProcesses;
        pool = new SessionProcessPool(sp, { logLevel: sp.logLevel ?? logger.level, flushMs: sp.flushMs ?? 250, ...(fdDir ? { fdDir } : {}) }, logger, metrics);
        pool.start();
      }
      // A connection for a session process is not read here at all: the process reads it all.
      server = createServer({ allowHalfOpen: false, pauseOnConnect: pool !== undefined }, accept);
      server.on('error', (e) => logger.error({ err: e.message }, 'server error'));
      return new Promise((resolve, reject) => {
        server!.once('error', reject);
        if (opts.fd !== undefined) {
          // Socket activation: the socket, its path and its mode are the service manager's.
          server!.listen({ fd: opts.fd }, () => {
            logger.info({ fd: opts.fd, backend: backendName }, 'listening');
            resolve();
          });
          return;
        }
        const path = opts.socketPath!;
        // A stale socket from a previous run is removed; anything else at the path is left alone.
        if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
        // The umask makes the socket 0600 from birth (no window where others could connect).
        const oldMask = process.umask(0o177);
        server!.listen(path, () => {
          process.umask(oldMask);
          chmodSync(path, 0o600);
          logger.info({ socket: path, backend: backendName, sessionProcesses: pool !== undefined }, 'listening');
          resolve();
        });
      });
    },
    async shutdown(deadlineMs = 5000) {
      logger.info({ clients: sessions.size, deadlineMs }, 'shutting down');
      const closed = server ? new Promise<void>((r) => server!.close(() => r())) : Promise.resolve();
      const until = Date.now() + deadlineMs;
      while (sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      for (const s of [...sessions]) s.end();
      // Session processes tear down and exit on 'end'; one that does not within a grace is killed.
      await pool?.close(2000);
      await closed;
      fdPassing?.inbox.close();
      if (fdDir) rmSync(fdDir, { recursive: true, force: true });
      logger.info('stopped');
    },
  };
}
