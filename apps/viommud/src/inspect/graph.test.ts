// The inspection graph of a process running the nested flow in-process (the same model a daemon
// session runs): exact ids, types, attributes and edges, and how they follow the client's actions.
import { describe, expect, it } from '@jest/globals';
import { createSimHost, type SimProcess } from '@viommu/core';
import { IOMMU_IOAS_ALLOC, iommu_ioas_alloc } from '@viommu/uapi';
import { simBackend } from '../backend.js';
import { processGraph, formatBytes, hasObjectTable } from './graph.js';
import { layeredLayout, NODE_HEIGHT, NODE_WIDTH } from './layout.js';
import { nestedFlow } from './nested-flow.js';
import { Inspector, NO_GRAPH_REASON, type InspectableSession } from './snapshot.js';
import { instrumentBackend } from './stats.js';

const edgeSet = (edges: readonly { from: string; to: string; relation: string }[]) => edges.map((e) => `${e.from} -${e.relation}-> ${e.to}`).sort();

describe('processGraph on the nested flow', () => {
  it('lists every live object with the ids the ioctls returned, and the holder → held edges', async () => {
    const p = createSimHost().spawn();
    const f = await nestedFlow(p);
    // Lowest-free IDs as the kernel's xarray hands them out: the mock device's auto HWPT (4) went
    // away when the device moved to the nested HWPT, and the vEVENTQ took its ID.
    expect([f.ioas, f.stdev, f.device, f.parent, f.viommu, f.nested, f.vdevice, f.veventq, f.hwQueue]).toEqual([1, 2, 3, 5, 6, 7, 8, 4, 9]);
    const g = processGraph(p);
    expect(g.contexts).toHaveLength(1);
    const c = g.contexts[0]!.id;
    expect(g.contexts[0]!.fds).toContain(f.self.fd);
    expect(g.contexts[0]!.fds).toContain(f.veventqFd);
    const k = (id: number) => `${c}:${id}`;
    expect(g.nodes.map((n) => [n.id, n.type, n.label])).toEqual([
      [1, 'IOAS', 'IOAS 1'],
      [2, 'SELFTEST', 'SELFTEST 2'],
      [3, 'DEVICE', 'DEVICE 3'],
      [4, 'VEVENTQ', 'vEVENTQ 4'],
      [5, 'HWPT_PAGING', 'HWPT 5'],
      [6, 'VIOMMU', 'vIOMMU 6'],
      [7, 'HWPT_NESTED', 'HWPT 7'],
      [8, 'VDEVICE', 'vDEVICE 8'],
      [9, 'HW_QUEUE', 'HW queue 9'],
      // The HW queue's internal access: the kernel finalizes it, so it has an ID (iommufd_access_create_internal).
      [10, 'ACCESS', 'ACCESS 10'],
    ]);
    expect(g.nodes.every((n) => n.key === k(n.id) && n.context === c)).toBe(true);
    expect(edgeSet(g.edges)).toEqual(
      edgeSet([
        { from: k(1), to: k(5), relation: 'hwpt' },
        { from: k(5), to: k(6), relation: 'viommu' },
        { from: k(6), to: k(7), relation: 'nested' },
        { from: k(7), to: k(3), relation: 'attached' },
        { from: k(6), to: k(8), relation: 'vdevice' },
        { from: k(8), to: k(3), relation: 'device' },
        { from: k(6), to: k(4), relation: 'veventq' },
        { from: k(6), to: k(9), relation: 'hw_queue' },
        { from: k(3), to: k(2), relation: 'mock' },
        { from: k(1), to: k(10), relation: 'access' },
        { from: k(9), to: k(10), relation: 'access' },
      ]),
    );
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    expect(byId.get(1)!.attrs).toEqual({ areas: 1, mappedBytes: 4096 });
    expect(byId.get(1)!.detail).toBe('1 area · 4 KiB');
    expect(byId.get(5)!.attrs).toMatchObject({ kind: 'paging', nestParent: true, autoDomain: false });
    expect(byId.get(7)!.attrs).toEqual({ kind: 'nested', parentId: 5, viommuId: 6, pasid: false });
    expect(byId.get(6)!.attrs).toMatchObject({ viommuType: 'SELFTEST', vdevices: 1 });
    const deviceName = byId.get(3)!.attrs['device'];
    expect(byId.get(8)!.attrs).toEqual({ virtId: '0x99', deviceId: 3, device: deviceName });
    expect(byId.get(4)!.attrs).toEqual({ veventqType: 'SELFTEST', depth: 16, queued: 0, lost: 0, produced: 0 });
    expect(byId.get(10)!.attrs).toEqual({ internal: true });
    expect(byId.get(9)!.attrs).toEqual({ queueType: 'SELFTEST', index: 0, iova: expect.stringMatching(/^0x/), lengthBytes: 4096 });
    expect(g.queues).toEqual({ produced: 0, depth: 0, lost: 0 });
  });

  it('follows events, lost events and destruction', async () => {
    const p = createSimHost().spawn();
    const f = await nestedFlow(p, { veventqDepth: 2 });
    f.trigger(3);
    let g = processGraph(p);
    const q = g.nodes.find((n) => n.type === 'VEVENTQ')!;
    // Depth 2: the third event is lost (the kernel keeps a lost-events header instead).
    expect(q.attrs).toMatchObject({ depth: 2, queued: 2, lost: 1, produced: 3 });
    expect(q.detail).toBe('2/2 queued · 1 lost');
    expect(g.queues).toEqual({ produced: 3, depth: 2, lost: 1 });
    f.destroy(f.hwQueue);
    g = processGraph(p);
    expect(g.nodes.map((n) => n.id)).not.toContain(f.hwQueue);
    expect(g.edges.some((e) => e.relation === 'hw_queue')).toBe(false);
    // Its internal access went with it.
    expect(g.nodes.map((n) => n.type)).not.toContain('ACCESS');
    p.exit();
    expect(processGraph(p)).toEqual({ contexts: [], nodes: [], edges: [], queues: { produced: 0, depth: 0, lost: 0 } });
  });

  it('keeps two contexts of one process apart, and says which fd each object is under', () => {
    const p = createSimHost().spawn();
    const alloc = (fd: number) => {
      const arg = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size, flags: 0, out_ioas_id: 0 });
      p.ioctl(fd, IOMMU_IOAS_ALLOC, arg);
      return iommu_ioas_alloc.get(arg, 'out_ioas_id') as number;
    };
    const [a, b] = [p.open('/dev/iommu'), p.open('/dev/iommu')];
    expect([alloc(a), alloc(b)]).toEqual([1, 1]);
    const g = processGraph(p);
    expect(g.contexts.map((c) => c.fds)).toEqual([[a], [b]]);
    expect(g.nodes.map((n) => n.label)).toEqual([`IOAS 1 · fd ${a}`, `IOAS 1 · fd ${b}`]);
    expect(new Set(g.nodes.map((n) => n.key)).size).toBe(2);
  });

  it('only simulated processes have an object table', () => {
    expect(hasObjectTable(createSimHost().spawn())).toBe(true);
    expect(hasObjectTable({ ioctl: () => 0 })).toBe(false);
  });

  it('formats sizes in binary units', () => {
    expect([formatBytes(0), formatBytes(4096), formatBytes(1536 * 1024), formatBytes(2 ** 32)]).toEqual(['0 B', '4 KiB', '1.5 MiB', '4 GiB']);
  });
});

describe('layeredLayout', () => {
  it('puts each kind of object on its row, children under their parents, no overlaps', async () => {
    const p = createSimHost().spawn();
    await nestedFlow(p);
    const g = processGraph(p);
    const L = layeredLayout(g);
    const box = (type: string) => L.boxes[g.nodes.find((n) => n.type === type)!.key]!;
    const rows = ['IOAS', 'HWPT_PAGING', 'VIOMMU', 'VDEVICE', 'DEVICE', 'SELFTEST'].map((t) => box(t).y);
    expect(rows).toEqual([...rows].sort((a, b) => a - b));
    expect(new Set(rows).size).toBe(rows.length);
    for (const t of ['HWPT_NESTED', 'HW_QUEUE', 'VEVENTQ']) expect(box(t).y).toBe(box('VDEVICE').y);
    // Every edge goes down a row.
    for (const e of g.edges) expect(L.boxes[e.to]!.y).toBeGreaterThan(L.boxes[e.from]!.y);
    // Boxes of a row do not overlap and fit in the drawing.
    const all = Object.values(L.boxes);
    for (const a of all) {
      expect(a.x).toBeGreaterThanOrEqual(0);
      expect(a.x + NODE_WIDTH).toBeLessThanOrEqual(L.width);
      expect(a.y + NODE_HEIGHT).toBeLessThanOrEqual(L.height);
      for (const b of all) if (a !== b && a.y === b.y) expect(Math.abs(a.x - b.x)).toBeGreaterThanOrEqual(NODE_WIDTH);
    }
  });

  it('routes an edge that spans rows through its own slot in each row between, clear of the boxes', async () => {
    const p = createSimHost().spawn();
    await nestedFlow(p);
    const g = processGraph(p);
    const L = layeredLayout(g);
    expect(L.edges).toHaveLength(g.edges.length);
    const rowTop = (n: string) => L.boxes[n]!.y;
    g.edges.forEach((e, i) => {
      const pts = L.edges[i]!;
      const span = Math.round((rowTop(e.to) - rowTop(e.from)) / (NODE_HEIGHT + 56));
      // Leaves the holder's bottom edge at its centre, enters the held box's top edge at its centre.
      expect(pts[0]).toEqual({ x: L.boxes[e.from]!.x + NODE_WIDTH / 2, y: rowTop(e.from) + NODE_HEIGHT });
      expect(pts.at(-1)).toEqual({ x: L.boxes[e.to]!.x + NODE_WIDTH / 2, y: rowTop(e.to) });
      expect(pts).toHaveLength(2 + 2 * (span - 1));
      for (const q of pts.slice(1, -1)) {
        for (const b of Object.values(L.boxes)) {
          const inside = q.x > b.x && q.x < b.x + NODE_WIDTH && q.y >= b.y && q.y <= b.y + NODE_HEIGHT;
          expect(inside).toBe(false);
        }
      }
    });
    // IOAS → the HW queue's ACCESS spans three rows: four points between its ends.
    const access = g.edges.findIndex((e) => e.relation === 'access' && g.nodes.find((n) => n.key === e.from)!.type === 'IOAS');
    expect(L.edges[access]).toHaveLength(8);
  });

  it('orders a row by where its parents are', () => {
    const nodes = [
      { key: 'a', type: 'VIOMMU', context: 1, id: 1 },
      { key: 'b', type: 'VIOMMU', context: 1, id: 2 },
      { key: 'x', type: 'VDEVICE', context: 1, id: 3 },
      { key: 'y', type: 'VDEVICE', context: 1, id: 4 },
    ];
    // x hangs off b (the right one), y off a: the row swaps them.
    const L = layeredLayout({ nodes, edges: [{ from: 'b', to: 'x' }, { from: 'a', to: 'y' }] });
    expect(L.boxes['y']!.x).toBeLessThan(L.boxes['x']!.x);
    expect(L.boxes['a']!.x).toBeLessThan(L.boxes['b']!.x);
  });

  it('draws an empty graph as an empty box', () => {
    expect(layeredLayout({ nodes: [], edges: [] })).toMatchObject({ boxes: {} });
  });
});

describe('Inspector', () => {
  it('reports a session\'s identity, counters and rates over its sampling window', async () => {
    const backend = instrumentBackend(simBackend());
    const p = backend.spawn() as SimProcess;
    let now = 1_000_000;
    const session: InspectableSession = {
      id: 7,
      clientName: 'vmm',
      peer: { pid: 42, uid: 1000, gid: 1000 },
      started: now,
      process: p,
      queueDepth: 0,
      eventsSent: 0,
      liveObjects: () => backend.liveObjects(p),
    };
    const ins = new Inspector(() => [session], (x) => backend.statsOf(x), () => now);
    const f = await nestedFlow(p);
    ins.sample();
    const before = ins.graph(7)!;
    expect(before).toMatchObject({ id: 7, name: 'vmm', peer: { pid: 42, uid: 1000, gid: 1000 }, objects: 10, graphAvailable: true, uptimeMs: 0 });
    expect(before.counters.ioctlsByType['IOMMU_VIOMMU_ALLOC']).toBe(1);
    expect(before.counters.invalidations).toBe(0);
    const ioctls0 = before.ioctls;
    now += 1000;
    f.invalidate(4);
    f.invalidate(2);
    f.trigger(3);
    ins.sample();
    const after = ins.graph(7)!;
    expect(after.counters).toMatchObject({ invalidations: 2, invalidationEntries: 6, events: 3, lostEvents: 0, modelQueueDepth: 3 });
    expect(after.counters.ioctlsByType['IOMMU_HWPT_INVALIDATE']).toBe(2);
    // Two invalidations, six entries and three events over one second; plus the test commands.
    expect(after.rates).toMatchObject({ invalidationsPerSec: 2, invalidationEntriesPerSec: 6, eventsPerSec: 3 });
    expect(after.rates.ioctlsPerSec).toBe(after.ioctls - ioctls0);
    expect(after.queueDepth).toBe(3);
    expect(after.uptimeMs).toBe(1000);
    expect(ins.clients().map((c) => c.id)).toEqual([7]);
    expect(ins.graph(8)).toBeUndefined();
    // A failed invalidation counts as an ioctl error, not an invalidation.
    expect(() => f.self.testCmdViommuInvalidate(999, null, 0, 0)).toThrow();
    expect(ins.graph(7)!.counters).toMatchObject({ invalidations: 2, ioctlErrors: 1 });
  });

  it('gives a native-backend session no graph, with the reason', () => {
    const session: InspectableSession = { id: 1, clientName: '', peer: undefined, started: 0, process: {} as never, queueDepth: 2, eventsSent: 5, liveObjects: () => new Map() };
    const g = new Inspector(() => [session], () => undefined, () => 10).graph(1)!;
    expect(g).toMatchObject({ graphAvailable: false, reason: NO_GRAPH_REASON, nodes: [], edges: [], peer: null, queueDepth: 2 });
    expect(g.counters.events).toBe(5);
  });
});
