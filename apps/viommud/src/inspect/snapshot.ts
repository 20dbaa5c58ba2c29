// What the inspection API serves about each client: who it is, its counters and rates, and (on the
// simulator) its object graph with a layout. The Inspector samples counters on a timer so rates
// are differences over the last couple of seconds, not since connect.
import type { PeerCredentials } from '../session.js';
import { hasObjectTable, processGraph, queueTotals, type ContextInfo, type GraphEdge, type GraphNode } from './graph.js';
import { layeredLayout, type Layout } from './layout.js';
import type { IoctlStats } from './stats.js';

/** What the inspector reads of a Session (a subset, so tests can hand in a plain object). */
export interface InspectableSession {
  readonly id: number;
  readonly clientName: string;
  readonly peer: PeerCredentials | undefined;
  /** Date.now() at connect. */
  readonly started: number;
  /** The backend process (in-process sessions) or the broker's stand-in for a session process. */
  readonly process: object;
  /** Event records queued to the client's socket, not yet written. */
  readonly queueDepth: number;
  /** Event records streamed to the client. */
  readonly eventsSent: number;
  liveObjects(): Map<string, number>;
}

export interface Rates {
  readonly ioctlsPerSec: number;
  readonly invalidationsPerSec: number;
  readonly invalidationEntriesPerSec: number;
  readonly eventsPerSec: number;
}

export interface ClientSummary {
  readonly id: number;
  readonly name: string;
  readonly peer: PeerCredentials | null;
  readonly startedAt: string;
  readonly uptimeMs: number;
  /** Live objects over the client's contexts (0 when the backend cannot tell). */
  readonly objects: number;
  readonly ioctls: number;
  /** Event records waiting: in the model's vEVENTQs and FAULT queues, plus queued to the socket. */
  readonly queueDepth: number;
  readonly rates: Rates;
}

export interface Counters {
  readonly ioctlsByType: Record<string, number>;
  readonly ioctlErrors: number;
  readonly invalidations: number;
  readonly invalidationEntries: number;
  /** vEVENTs produced and page-request groups queued (simulator), or records streamed (native). */
  readonly events: number;
  readonly eventsStreamed: number;
  readonly lostEvents: number;
  /** In the model's queues / queued to the socket. */
  readonly modelQueueDepth: number;
  readonly socketQueueDepth: number;
}

export interface ClientGraph extends ClientSummary {
  readonly graphAvailable: boolean;
  readonly reason?: string;
  readonly counters: Counters;
  readonly contexts: readonly ContextInfo[];
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  readonly layout: Layout;
}

export const NO_GRAPH_REASON = 'the native backend has no object table the daemon can read; the graph is drawn on the sim backend only (ADR 0123)';

/** Rates over a sliding window of samples (oldest to newest). */
export class RateMeter {
  private readonly t: number[] = [];
  private readonly v: number[][] = [];
  constructor(private readonly windowSamples = 5) {}

  push(now: number, values: readonly number[]): void {
    // Two samples at one instant: the later one stands (no zero-length interval in the window).
    if (this.t.length && this.t[this.t.length - 1] === now) {
      this.v[this.v.length - 1] = [...values];
      return;
    }
    this.t.push(now);
    this.v.push([...values]);
    if (this.t.length > this.windowSamples) {
      this.t.shift();
      this.v.shift();
    }
  }

  /** Per second, of value `i`, between the oldest and newest sample (0 with fewer than two). */
  rate(i: number): number {
    const n = this.t.length;
    if (n < 2) return 0;
    const dt = this.t[n - 1]! - this.t[0]!;
    return dt > 0 ? ((this.v[n - 1]![i]! - this.v[0]![i]!) * 1000) / dt : 0;
  }
}

interface ClientState {
  readonly meter: RateMeter;
  /** Events produced so far, kept monotonic across queues that come and go. */
  events: number;
  lastProduced: number;
  lost: number;
  lastLost: number;
  /** Records in the model's queues at the last look. */
  depth: number;
  /** The last layout, and the nodes and edges it was computed for (recomputed only when they change). */
  layoutOf: string;
  layout: Layout | undefined;
}

/** The counters the inspector reads: a process's IoctlStats, or a session process's last batch of them. */
export type StatsView = Pick<IoctlStats, 'total' | 'errors' | 'invalidations' | 'invalidationEntries' | 'byName'>;

const ZERO_STATS = { total: 0, errors: 0, invalidations: 0, invalidationEntries: 0, byName: () => ({}) };

export class Inspector {
  private readonly state = new Map<number, ClientState>();

  constructor(
    private readonly sessions: () => Iterable<InspectableSession>,
    private readonly statsOf: (p: object) => StatsView | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a sample of every client's counters (call it every ~500 ms); forgets clients gone. */
  sample(): void {
    const seen = new Set<number>();
    const now = this.now();
    for (const s of this.sessions()) {
      seen.add(s.id);
      const st = this.stateOf(s);
      const stats = this.statsOf(s.process) ?? ZERO_STATS;
      st.meter.push(now, [stats.total, stats.invalidations, stats.invalidationEntries, st.events]);
    }
    for (const id of this.state.keys()) if (!seen.has(id)) this.state.delete(id);
  }

  clients(): ClientSummary[] {
    return [...this.sessions()].sort((a, b) => a.id - b.id).map((s) => this.summary(s));
  }

  graph(id: number): ClientGraph | undefined {
    for (const s of this.sessions()) if (s.id === id) return this.clientGraph(s);
    return undefined;
  }

  graphs(): ClientGraph[] {
    return [...this.sessions()].sort((a, b) => a.id - b.id).map((s) => this.clientGraph(s));
  }

  private stateOf(s: InspectableSession): ClientState {
    let st = this.state.get(s.id);
    if (!st) {
      this.state.set(s.id, (st = { meter: new RateMeter(), events: 0, lastProduced: 0, lost: 0, lastLost: 0, depth: 0, layoutOf: '', layout: undefined }));
      // Every counter was zero when the client connected: rates cover what it did before the first sample.
      st.meter.push(s.started, [0, 0, 0, 0]);
    }
    if (hasObjectTable(s.process)) {
      // A destroyed queue takes its totals with it: count only growth.
      const q = queueTotals(s.process);
      if (q.produced > st.lastProduced) st.events += q.produced - st.lastProduced;
      st.lastProduced = q.produced;
      if (q.lost > st.lastLost) st.lost += q.lost - st.lastLost;
      st.lastLost = q.lost;
      st.depth = q.depth;
    } else {
      st.events = s.eventsSent;
    }
    return st;
  }

  private summary(s: InspectableSession): ClientSummary {
    const st = this.stateOf(s);
    const stats = this.statsOf(s.process) ?? ZERO_STATS;
    let objects = 0;
    for (const n of s.liveObjects().values()) objects += n;
    return {
      id: s.id,
      name: s.clientName,
      peer: s.peer ?? null,
      startedAt: new Date(s.started).toISOString(),
      uptimeMs: Math.max(0, this.now() - s.started),
      objects,
      ioctls: stats.total,
      queueDepth: st.depth + s.queueDepth,
      rates: { ioctlsPerSec: st.meter.rate(0), invalidationsPerSec: st.meter.rate(1), invalidationEntriesPerSec: st.meter.rate(2), eventsPerSec: st.meter.rate(3) },
    };
  }

  private clientGraph(s: InspectableSession): ClientGraph {
    const summary = this.summary(s);
    const st = this.state.get(s.id)!;
    const stats = this.statsOf(s.process) ?? ZERO_STATS;
    const g = hasObjectTable(s.process) ? processGraph(s.process) : undefined;
    const counters: Counters = {
      ioctlsByType: stats.byName(),
      ioctlErrors: stats.errors,
      invalidations: stats.invalidations,
      invalidationEntries: stats.invalidationEntries,
      events: st.events,
      eventsStreamed: s.eventsSent,
      lostEvents: st.lost,
      modelQueueDepth: st.depth,
      socketQueueDepth: s.queueDepth,
    };
    const nodes = g?.nodes ?? [];
    const edges = g?.edges ?? [];
    const shape = `${nodes.map((n) => `${n.key}/${n.type}`).join(',')}|${edges.map((e) => `${e.from}>${e.to}`).join(',')}`;
    if (!st.layout || st.layoutOf !== shape) {
      st.layout = layeredLayout({ nodes, edges });
      st.layoutOf = shape;
    }
    return {
      ...summary,
      graphAvailable: g !== undefined,
      ...(g ? {} : { reason: NO_GRAPH_REASON }),
      counters,
      contexts: g?.contexts ?? [],
      nodes,
      edges,
      layout: st.layout,
    };
  }
}
