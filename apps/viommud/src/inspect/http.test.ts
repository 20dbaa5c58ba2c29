// The inspection API end to end: a real daemon child with --inspect-port 0, a real client on its
// socket running the nested flow, and plain HTTP (JSON and the SSE stream) from this process.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { connectDaemonProcess, type DaemonProcess } from '@viommu/protocol';
import { buildDaemon, startDaemon, type RunningDaemon } from '../spawn-daemon.js';
import { nestedFlow, type NestedFlow } from './nested-flow.js';
import { openEvents, startInspectedDaemon, until, type EventStream } from './test-support.js';
import type { ClientGraph, ClientSummary } from './snapshot.js';

let daemon: RunningDaemon;
let base: string;

beforeAll(async () => {
  buildDaemon();
  ({ daemon, url: base } = await startInspectedDaemon(startDaemon));
  // The build runs first and takes as long as the machine needs (not a limit on the daemon).
}, 600_000);

afterAll(async () => {
  await daemon?.stop();
});

async function get<T>(path: string): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(new URL(path, base));
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

const clients = async () => (await get<{ backend: string; clients: ClientSummary[] }>('/api/clients')).body;
const graph = async (id: number) => (await get<ClientGraph>(`/api/clients/${id}/graph`)).body;

/** Status of a raw request with our own Host header and method. */
function raw(method: string, path: string, host: string): Promise<number> {
  const u = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: u.port, path: u.pathname, method, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the inspection API', () => {
  let p: DaemonProcess;
  let f: NestedFlow;
  let id: number;
  let events: EventStream;

  beforeAll(async () => {
    expect(await clients()).toEqual({ backend: 'sim', clients: [] });
    p = await connectDaemonProcess(daemon.socketPath, { clientName: 'nested-vmm' });
    id = p.session.sessionId;
    f = await nestedFlow(p);
    events = await openEvents(base);
  }, 600_000);

  afterAll(() => {
    events?.close();
    p?.disconnect();
  });

  it('lists the client with its name, peer credentials, objects and ioctls', async () => {
    const list = await clients();
    expect(list.clients).toHaveLength(1);
    const c = list.clients[0]!;
    expect(c).toMatchObject({ id, name: 'nested-vmm', objects: 10 });
    // SO_PEERCRED through @viommu/native, as the daemon's own tests expect.
    expect(c.peer).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    expect(c.ioctls).toBeGreaterThan(10);
    expect(Date.parse(c.startedAt)).toBeLessThanOrEqual(Date.now());
  });

  it('serves the object graph of the nested flow with the ids the client got back', async () => {
    const g = await graph(id);
    expect(g.graphAvailable).toBe(true);
    expect(g.contexts).toHaveLength(1);
    const ctx = g.contexts[0]!;
    expect(ctx.fds).toEqual(expect.arrayContaining([f.self.fd, f.veventqFd]));
    const byId = new Map(g.nodes.map((n) => [n.id, n.type]));
    expect(Object.fromEntries(byId)).toEqual({
      [f.ioas]: 'IOAS',
      [f.stdev]: 'SELFTEST',
      [f.device]: 'DEVICE',
      [f.parent]: 'HWPT_PAGING',
      [f.viommu]: 'VIOMMU',
      [f.nested]: 'HWPT_NESTED',
      [f.vdevice]: 'VDEVICE',
      [f.veventq]: 'VEVENTQ',
      [f.hwQueue]: 'HW_QUEUE',
      10: 'ACCESS',
    });
    const k = (n: number) => `${ctx.id}:${n}`;
    const has = (from: number, to: number, relation: string) => expect(g.edges).toContainEqual({ from: k(from), to: k(to), relation });
    has(f.ioas, f.parent, 'hwpt');
    has(f.parent, f.viommu, 'viommu');
    has(f.viommu, f.nested, 'nested');
    has(f.nested, f.device, 'attached');
    has(f.viommu, f.vdevice, 'vdevice');
    has(f.viommu, f.veventq, 'veventq');
    has(f.viommu, f.hwQueue, 'hw_queue');
    expect(g.edges).toHaveLength(11);
    // Every node has a box in the layout.
    expect(Object.keys(g.layout.boxes).sort()).toEqual(g.nodes.map((n) => n.key).sort());
    expect(g.counters.ioctlsByType['IOMMU_VIOMMU_ALLOC']).toBe(1);
    expect(g.counters.ioctlsByType['IOMMU_HW_QUEUE_ALLOC']).toBe(1);
  });

  it('counts invalidations and events, and rates follow', async () => {
    f.invalidate(3);
    f.invalidate(3);
    f.trigger(2);
    const g = await graph(id);
    expect(g.counters).toMatchObject({ invalidations: 2, invalidationEntries: 6 });
    expect(g.counters.ioctlsByType['IOMMU_HWPT_INVALIDATE']).toBe(2);
    expect(g.counters.events).toBe(2);
    expect(g.nodes.find((n) => n.type === 'VEVENTQ')!.attrs).toMatchObject({ queued: 2, produced: 2 });
    expect(g.queueDepth).toBe(2);
    // Rates are differences between samples the daemon takes every 500 ms.
    await until(async () => {
      const r = (await graph(id)).rates;
      // Entries and calls share one window: 3 entries per call, up to rounding (6000/dt vs 3 * 2000/dt).
      return r.invalidationsPerSec > 0 && r.eventsPerSec > 0 && Math.abs(r.invalidationEntriesPerSec - 3 * r.invalidationsPerSec) <= 1e-9 * r.invalidationEntriesPerSec;
    }, 'rates from the next sample');
  });

  it('pushes updates over SSE: a destroyed object leaves the graph', async () => {
    const first = await events.next((m) => m.clients.some((c) => c.id === id));
    expect(first.backend).toBe('sim');
    f.destroy(f.hwQueue);
    const gone = await events.next((m) => !m.clients.find((c) => c.id === id)!.nodes.some((n) => n.type === 'HW_QUEUE'));
    expect(gone.clients.find((c) => c.id === id)!.nodes.map((n) => n.id)).not.toContain(f.hwQueue);
  });

  it('refuses other methods, other host names, and unknown clients', async () => {
    expect(await raw('POST', '/api/clients', `127.0.0.1:${new URL(base).port}`)).toBe(405);
    // DNS rebinding: a page on another origin resolving to 127.0.0.1 sends its own Host.
    expect(await raw('GET', '/api/clients', `evil.example:${new URL(base).port}`)).toBe(403);
    expect((await get<{ error: string }>('/api/clients/999/graph')).status).toBe(404);
    expect((await get<{ error: string }>('/api/nothing')).status).toBe(404);
  });

  it('serves a self-contained page: inline script and style, nothing from elsewhere', async () => {
    const res = await fetch(base);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await res.text();
    expect(html).toMatch(/<script>/);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('forgets a client that disconnects', async () => {
    const q = await connectDaemonProcess(daemon.socketPath, { clientName: 'short-lived' });
    await until(async () => (await clients()).clients.some((c) => c.name === 'short-lived'), 'the second client');
    q.disconnect();
    await until(async () => !(await clients()).clients.some((c) => c.name === 'short-lived'), 'the second client to go');
    const gone = await events.next((m) => !m.clients.some((c) => c.name === 'short-lived'));
    expect(gone.clients.map((c) => c.id)).toEqual([id]);
  });
});
