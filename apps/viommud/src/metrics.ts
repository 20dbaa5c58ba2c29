// Prometheus metrics (prom-client), one registry per daemon so tests can run several.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What a Session records (DaemonMetrics itself, or a session process's batch for the broker). */
export interface SessionMetrics {
  readonly ioctls: { inc(labels: { ioctl: string; errno: string }): void };
  readonly syscalls: { inc(labels: { op: string; errno: string }): void };
  readonly latency: { observe(labels: { ioctl: string }, seconds: number): void };
  readonly protocolErrors: { inc(labels: { kind: string }): void };
  readonly lostEvents: { inc(): void };
}

/** Figures read at scrape time. */
export interface MetricsSource {
  liveObjects(): Map<string, number>;
  queueDepth(): number;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  constructor(private readonly source: MetricsSource = { liveObjects: () => new Map(), queueDepth: () => 0 }) {}
  readonly ioctls = new Counter({ name: 'viommud_ioctls_total', help: 'ioctls served, by command and errno (0 = success)', labelNames: ['ioctl', 'errno'], registers: [this.registry] });
  readonly syscalls = new Counter({ name: 'viommud_requests_total', help: 'requests served, by opcode and errno', labelNames: ['op', 'errno'], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'viommud_ioctl_seconds',
    help: 'time the backend spent in one ioctl, by command',
    labelNames: ['ioctl'],
    buckets: [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 1],
    registers: [this.registry],
  });
  readonly clients = new Gauge({ name: 'viommud_clients', help: 'connected clients', registers: [this.registry] });
  readonly objects: Gauge<'type'> = new Gauge({
    name: 'viommud_live_objects',
    help: 'live iommufd objects over all clients, by type',
    labelNames: ['type'],
    registers: [this.registry],
    collect: () => {
      this.objects.reset();
      for (const [type, n] of this.source.liveObjects()) this.objects.set({ type }, n);
    },
  });
  readonly queueDepth: Gauge = new Gauge({
    name: 'viommud_event_queue_depth',
    help: 'event records waiting to be sent, over all subscriptions',
    registers: [this.registry],
    collect: () => this.queueDepth.set(this.source.queueDepth()),
  });
  readonly lostEvents = new Counter({ name: 'viommud_events_lost_total', help: 'event records dropped because a client did not keep up', registers: [this.registry] });
  readonly protocolErrors = new Counter({ name: 'viommud_protocol_errors_total', help: 'malformed frames, by kind', labelNames: ['kind'], registers: [this.registry] });
  /** Native backend (ADR 0125): session processes, and those that died without finishing their session. */
  readonly sessionProcesses = new Gauge({ name: 'viommud_session_processes', help: 'session processes alive (serving a client, or the spare)', registers: [this.registry] });
  readonly sessionCrashes = new Counter({ name: 'viommud_session_crashes_total', help: 'session processes that exited without ending their session (crash, kill)', registers: [this.registry] });
}
