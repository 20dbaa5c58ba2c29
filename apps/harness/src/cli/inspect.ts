// `viommu inspect`: the object graphs of a running viommud, read from its loopback inspection API
// (viommud --inspect-port N; apps/viommud/src/inspect/http.ts), printed as indented trees.
// Only the JSON over HTTP is shared with the daemon: the shapes below mirror its graph.ts.

import { UsageError, optionHelp, parseArgs, type OptionSpec } from './args.js';
import { EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNAVAILABLE, type Io } from './io.js';
import type { Term } from './term.js';

export interface InspectNode {
  readonly key: string;
  readonly context: number;
  readonly id: number;
  readonly type: string;
  readonly label: string;
  readonly attrs: Readonly<Record<string, string | number | boolean>>;
}

export interface InspectEdge {
  readonly from: string;
  readonly to: string;
  readonly relation: string;
}

export interface InspectClient {
  readonly id: number;
  readonly name: string;
  readonly peer: { pid: number; uid: number; gid: number } | null;
  readonly uptimeMs: number;
  readonly objects: number;
  readonly ioctls: number;
  readonly queueDepth: number;
  readonly rates: { ioctlsPerSec: number; invalidationsPerSec: number; eventsPerSec: number };
}

export interface InspectGraph extends InspectClient {
  readonly graphAvailable: boolean;
  readonly reason?: string;
  readonly counters: { ioctlsByType: Record<string, number>; invalidations: number; events: number; lostEvents: number };
  readonly nodes: readonly InspectNode[];
  readonly edges: readonly InspectEdge[];
}

const options: Record<string, OptionSpec> = {
  url: { type: 'string', help: 'the daemon\'s inspection address, e.g. http://127.0.0.1:9465 (viommud --inspect-port)' },
  client: { type: 'number', help: 'only this client (session id)' },
  json: { type: 'boolean', help: 'print the raw JSON graphs' },
  help: { type: 'boolean', help: 'show this help' },
};

export const inspectHelp = `viommu inspect — print the live iommufd object graphs of a running viommud

Reads the daemon's loopback inspection API (start it with viommud --inspect-port N) and prints each
client's objects as a tree: IOAS → HWPT → vIOMMU → vDEVICE / HW queue / vEVENTQ, devices under the
HWPTs they are attached to, with counts and rates.

Usage: viommu inspect --url http://127.0.0.1:PORT [--client ID] [--json]

${optionHelp(options)}

Exit codes: 0 ok, 1 no client with that id, 2 usage error, 3 internal error, 4 the daemon cannot be
reached at --url.`;

class Unavailable extends Error {}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Unavailable(cause?.code ?? cause?.message ?? (e as Error).message);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    throw new Unavailable(`${url} did not answer with JSON (is it viommud's --inspect-port?)`);
  }
}

export async function inspect(argv: readonly string[], io: Io, term: Term): Promise<number> {
  const { values, positionals } = parseArgs(argv, options);
  if (values.help) {
    io.out(inspectHelp);
    return EXIT_OK;
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (typeof values.url !== 'string') throw new UsageError('--url is required (viommud --inspect-port prints it)');
  let base: URL;
  try {
    base = new URL(values.url);
  } catch {
    throw new UsageError(`--url: not a URL: ${values.url}`);
  }
  const only = values.client as number | undefined;
  try {
    const list = await getJson(new URL('/api/clients', base).href);
    const clients = (list.body as { clients?: InspectClient[] }).clients;
    if (list.status !== 200 || !Array.isArray(clients)) throw new Unavailable(`${base.href} is not viommud's inspection API (status ${list.status})`);
    const ids = only === undefined ? clients.map((c) => c.id) : [only];
    const graphs: InspectGraph[] = [];
    for (const id of ids) {
      const g = await getJson(new URL(`/api/clients/${id}/graph`, base).href);
      if (g.status === 404) {
        io.err(`viommu inspect: no client ${id} (connected: ${clients.map((c) => c.id).join(', ') || 'none'})`);
        return EXIT_CHECK_FAILED;
      }
      graphs.push(g.body as InspectGraph);
    }
    if (values.json) {
      io.out(JSON.stringify(only === undefined ? graphs : graphs[0], null, 2));
      return EXIT_OK;
    }
    if (graphs.length === 0) io.out('no clients connected');
    for (const g of graphs) io.out(renderTree(g, term));
    return EXIT_OK;
  } catch (e) {
    if (e instanceof Unavailable) {
      io.err(`viommu inspect: cannot reach viommud at ${base.href}: ${e.message}`);
      return EXIT_UNAVAILABLE;
    }
    throw e;
  }
}

const fmtRate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

function attrText(n: InspectNode): string {
  const parts = Object.entries(n.attrs).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : String(v)}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/**
 * One client as text: a header, the counters, then the graph as a tree from its roots (nodes no
 * edge points to). A node reachable along several edges is printed in full once and referred to
 * (`↑ see above`) after that, so the output is finite and every edge shows.
 */
export function renderTree(g: InspectGraph, term: Pick<Term, 'bold' | 'dim'> = { bold: (s) => s, dim: (s) => s }): string {
  const peer = g.peer ? `pid ${g.peer.pid} uid ${g.peer.uid} gid ${g.peer.gid}` : 'peer unknown';
  const lines = [
    term.bold(`client ${g.id}${g.name ? ` "${g.name}"` : ''}`) + term.dim(` — ${peer}, up ${(g.uptimeMs / 1000).toFixed(1)} s`),
    `  ${g.objects} objects, ${g.ioctls} ioctls (${fmtRate(g.rates.ioctlsPerSec)}/s), ${g.counters.invalidations} invalidations (${fmtRate(g.rates.invalidationsPerSec)}/s), ` +
      `${g.counters.events} events (${fmtRate(g.rates.eventsPerSec)}/s), queue depth ${g.queueDepth}, lost ${g.counters.lostEvents}`,
  ];
  if (!g.graphAvailable) {
    lines.push(`  (no object graph: ${g.reason ?? 'not available'})`);
    return lines.join('\n');
  }
  const byKey = new Map(g.nodes.map((n) => [n.key, n]));
  const out = new Map<string, InspectEdge[]>();
  const hasIn = new Set<string>();
  for (const e of g.edges) {
    if (!byKey.has(e.from) || !byKey.has(e.to)) continue;
    (out.get(e.from) ?? out.set(e.from, []).get(e.from)!).push(e);
    hasIn.add(e.to);
  }
  const printed = new Set<string>();
  const walk = (key: string, depth: number, via: string | undefined): void => {
    const n = byKey.get(key)!;
    const pad = '  '.repeat(depth + 1);
    const rel = via ? term.dim(`${via} → `) : '';
    if (printed.has(key)) {
      lines.push(`${pad}${rel}${n.label} ${term.dim('↑ see above')}`);
      return;
    }
    printed.add(key);
    lines.push(`${pad}${rel}${n.label}${attrText(n)}`);
    for (const e of out.get(key) ?? []) walk(e.to, depth + 1, e.relation);
  };
  for (const n of g.nodes) if (!hasIn.has(n.key)) walk(n.key, 0, undefined);
  // Cycles with no root (none in the iommufd object model, but never lose a node).
  for (const n of g.nodes) if (!printed.has(n.key)) walk(n.key, 0, undefined);
  if (g.nodes.length === 0) lines.push('  (no objects)');
  return lines.join('\n');
}
