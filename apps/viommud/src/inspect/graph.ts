// A client's live iommufd objects as a plain-JSON graph, read from the simulator's object tables.
//
// Pure: reads the model, changes nothing, keeps no state (rates live in snapshot.ts). The model's
// object classes are not all exported by @viommu/core, so each type is read through the few fields
// this file names below (the shapes are checked by graph.test.ts against a real nested flow).
// The native backend has no object table to read: its clients get no graph (ADR 0123).
import { NO_PASID, OBJ, OBJ_NAMES, type IommufdContext, type IommufdObject } from '@viommu/core';
import {
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
} from '@viommu/uapi';

export type AttrValue = string | number | boolean;

export interface GraphNode {
  /** Unique in the client: `<context id>:<object id>`. */
  readonly key: string;
  /** The iommufd context (one per open of /dev/iommu; ids are daemon-wide). */
  readonly context: number;
  /** The object ID userspace sees. */
  readonly id: number;
  /** OBJ name: IOAS, HWPT_PAGING, HWPT_NESTED, VIOMMU, VDEVICE, HW_QUEUE, VEVENTQ, FAULT, DEVICE, ACCESS, SELFTEST. */
  readonly type: string;
  /** `IOAS 1`, `vIOMMU 4`, ... */
  readonly label: string;
  /** One short line for the drawing: `2 areas · 8 MiB`, `3/16 queued · 0 lost`. */
  readonly detail: string;
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export interface GraphEdge {
  /** The holder's side: IOAS → HWPT → vIOMMU → vDEVICE / HW queue / vEVENTQ, HWPT → attached DEVICE. */
  readonly from: string;
  readonly to: string;
  readonly relation: string;
}

export interface ContextInfo {
  readonly id: number;
  /** The fds of the process that refer to the context (its /dev/iommu fd, bound VFIO cdevs, event fds). */
  readonly fds: readonly number[];
}

export interface ObjectGraph {
  readonly contexts: readonly ContextInfo[];
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  /** Totals over the live event queues, for rates: vEVENTs produced, page-request groups queued, lost vEVENTs. */
  readonly queues: { readonly produced: number; readonly depth: number; readonly lost: number };
}

/** What this file needs of a backend process: the simulator's fd table. */
interface FdTable {
  fileOf(fd: number): { readonly kind?: string } | undefined;
  readonly openFdCount: number;
}

/** True when `p` is a simulated process whose objects can be read. */
export function hasObjectTable(p: unknown): p is FdTable {
  // `in`, not a read: openFdCount is a getter that counts.
  return typeof (p as Partial<FdTable>)?.fileOf === 'function' && 'openFdCount' in (p as object);
}

/** The live contexts a process reaches through its fds, in order of first fd. */
export function contextsOf(p: FdTable): { ctx: IommufdContext; fds: number[] }[] {
  const found = new Map<IommufdContext, number[]>();
  const open = p.openFdCount;
  for (let fd = 0, seen = 0; seen < open && fd < 1 << 20; fd++) {
    const f = p.fileOf(fd) as { kind?: string; ctx?: IommufdContext; idev?: { ctx: IommufdContext } } | undefined;
    if (!f) continue;
    seen++;
    const ctx = f.kind === 'vfio-device' ? f.idev?.ctx : f.ctx;
    if (!ctx || ctx.isReleased) continue;
    const fds = found.get(ctx);
    if (fds) fds.push(fd);
    else found.set(ctx, [fd]);
  }
  return [...found].map(([ctx, fds]) => ({ ctx, fds }));
}

// ---- the fields read per object type -------------------------------------------------------------

type Obj = IommufdObject;
interface IoasFields extends Obj {
  iopt: { areas(): { iova: bigint; last: bigint }[]; alignment: number };
}
interface HwptPagingFields extends Obj {
  ioas: Obj;
  nestParent: boolean;
  autoDomain: boolean;
  fault: Obj | undefined;
  driver: { name: string };
  domain: { dirty?: unknown };
}
interface HwptNestedFields extends Obj {
  parent: Obj;
  viommu: Obj | undefined;
  fault: Obj | undefined;
  pasidCompat: boolean;
}
interface ViommuFields extends Obj {
  hwpt: Obj;
  viommuType: number;
  driver: { name: string };
  vdevs: Map<unknown, unknown>;
}
interface VdeviceFields extends Obj {
  viommu: Obj;
  idev: DeviceFields;
  virtId: bigint;
}
interface HwQueueFields extends Obj {
  viommu: Obj | undefined;
  queueType: number;
  index: number;
  baseIova: bigint;
  length: bigint;
  depends: Obj[];
  access: Obj | undefined;
}
interface VeventqFields extends Obj {
  viommu: Obj;
  veventqType: number;
  queue: { depth: number; numEvents: number; stats: { produced: number; lost: number } };
}
interface FaultFields extends Obj {
  queue: { queuedGroups: number; awaitingGroups: number; stats: { queued: number; answered: number; autoAnswered: number; timedOut: number } };
}
interface DeviceFields extends Obj {
  attached: Map<number, Obj>;
  dev: { info: { name: string; rid: number } };
}
interface AccessFields extends Obj {
  ioas: Obj | undefined;
  internal: boolean;
}
interface SelftestFields extends Obj {
  idev: Obj | undefined;
  sim: { ddev: { info: { name: string } } } | undefined;
}

const VIOMMU_TYPES: Record<number, string> = {
  [IOMMU_VIOMMU_TYPE_ARM_SMMUV3]: 'ARM_SMMUV3',
  [IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV]: 'TEGRA241_CMDQV',
  [IOMMU_VIOMMU_TYPE_SELFTEST]: 'SELFTEST',
};
const VEVENTQ_TYPES: Record<number, string> = {
  [IOMMU_VEVENTQ_TYPE_ARM_SMMUV3]: 'ARM_SMMUV3',
  [IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV]: 'TEGRA241_CMDQV',
  [IOMMU_VEVENTQ_TYPE_SELFTEST]: 'SELFTEST',
};
const HW_QUEUE_TYPES: Record<number, string> = {
  [IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV]: 'TEGRA241_CMDQV',
  [IOMMU_HW_QUEUE_TYPE_SELFTEST]: 'SELFTEST',
};
/** Bytes per queue entry where the type fixes it (a CMDQV VCMDQ holds 16-byte SMMU commands). */
const HW_QUEUE_ENTRY_BYTES: Record<number, number> = { [IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV]: 16 };

const typeName = (names: Record<number, string>, t: number) => names[t] ?? `0x${(t >>> 0).toString(16)}`;
const hex = (n: bigint | number) => `0x${n.toString(16)}`;

/** 8 KiB, 1.5 MiB, ... */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[u]}`;
}

const LABELS: Record<string, string> = { VIOMMU: 'vIOMMU', VDEVICE: 'vDEVICE', VEVENTQ: 'vEVENTQ', HW_QUEUE: 'HW queue', HWPT_PAGING: 'HWPT', HWPT_NESTED: 'HWPT' };

/**
 * The graph of every live object in the contexts `p` holds. `p` must be a simulated process
 * (hasObjectTable); objects are listed by context, then ID.
 */
export function processGraph(p: FdTable): ObjectGraph {
  const contexts: ContextInfo[] = [];
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (const { ctx, fds } of contextsOf(p)) {
    contexts.push({ id: ctx.id, fds });
    const key = (o: Obj) => `${ctx.id}:${o.id}`;
    const edge = (from: Obj, to: Obj, relation: string) => edges.push({ from: key(from), to: key(to), relation });
    for (const o of ctx.objects.objects()) {
      const type = OBJ_NAMES[o.type] ?? String(o.type);
      let attrs: Record<string, AttrValue> = {};
      let detail = '';
      switch (o.type) {
        case OBJ.IOAS: {
          const a = o as IoasFields;
          let mapped = 0;
          const areas = a.iopt.areas();
          for (const r of areas) mapped += Number(r.last - r.iova) + 1;
          attrs = { areas: areas.length, mappedBytes: mapped };
          detail = `${areas.length} area${areas.length === 1 ? '' : 's'} · ${formatBytes(mapped)}`;
          break;
        }
        case OBJ.HWPT_PAGING: {
          const h = o as HwptPagingFields;
          attrs = { kind: 'paging', nestParent: h.nestParent, autoDomain: h.autoDomain, dirtyTracking: h.domain.dirty !== undefined, iommu: h.driver.name };
          if (h.fault) attrs['faultId'] = h.fault.id;
          detail = h.nestParent ? 'paging · nest parent' : h.autoDomain ? 'paging · auto' : 'paging';
          edge(h.ioas, o, 'hwpt');
          if (h.fault) edge(o, h.fault, 'fault');
          break;
        }
        case OBJ.HWPT_NESTED: {
          const h = o as HwptNestedFields;
          attrs = { kind: 'nested', parentId: h.parent.id, pasid: h.pasidCompat };
          if (h.viommu) attrs['viommuId'] = h.viommu.id;
          if (h.fault) attrs['faultId'] = h.fault.id;
          detail = h.viommu ? 'nested · on vIOMMU' : 'nested · on parent';
          edge(h.viommu ?? h.parent, o, 'nested');
          if (h.fault) edge(o, h.fault, 'fault');
          break;
        }
        case OBJ.VIOMMU: {
          const v = o as ViommuFields;
          attrs = { viommuType: typeName(VIOMMU_TYPES, v.viommuType), iommu: v.driver.name, vdevices: v.vdevs.size };
          detail = `${attrs['viommuType']} · ${v.driver.name}`;
          edge(v.hwpt, o, 'viommu');
          break;
        }
        case OBJ.VDEVICE: {
          const v = o as VdeviceFields;
          attrs = { virtId: hex(v.virtId), deviceId: v.idev.id, device: v.idev.dev.info.name };
          detail = `virt_id ${hex(v.virtId)} · ${v.idev.dev.info.name}`;
          edge(v.viommu, o, 'vdevice');
          edge(o, v.idev, 'device');
          break;
        }
        case OBJ.HW_QUEUE: {
          const q = o as HwQueueFields;
          const entry = HW_QUEUE_ENTRY_BYTES[q.queueType];
          attrs = { queueType: typeName(HW_QUEUE_TYPES, q.queueType), index: q.index, iova: hex(q.baseIova), lengthBytes: Number(q.length) };
          if (entry) attrs['entries'] = Number(q.length) / entry;
          detail = `#${q.index} · ${entry ? `${attrs['entries']} entries` : formatBytes(Number(q.length))}`;
          if (q.viommu) edge(q.viommu, o, 'hw_queue');
          // The internal ACCESS that pins the queue's guest memory (a real object with an ID in the kernel too).
          if (q.access) edge(o, q.access, 'access');
          for (const d of q.depends) edge(o, d, 'depends on');
          break;
        }
        case OBJ.VEVENTQ: {
          const q = o as VeventqFields;
          const s = q.queue;
          attrs = { veventqType: typeName(VEVENTQ_TYPES, q.veventqType), depth: s.depth, queued: s.numEvents, lost: s.stats.lost, produced: s.stats.produced };
          detail = `${s.numEvents}/${s.depth} queued · ${s.stats.lost} lost`;
          edge(q.viommu, o, 'veventq');
          break;
        }
        case OBJ.FAULT: {
          const f = o as FaultFields;
          const s = f.queue;
          attrs = { pending: s.queuedGroups, awaitingResponse: s.awaitingGroups, queued: s.stats.queued, answered: s.stats.answered + s.stats.autoAnswered + s.stats.timedOut };
          detail = `${s.queuedGroups} pending · ${s.awaitingGroups} awaiting`;
          break;
        }
        case OBJ.DEVICE: {
          const d = o as DeviceFields;
          const pasids = [...d.attached.keys()].filter((x) => x !== NO_PASID).sort((x, y) => x - y);
          attrs = { device: d.dev.info.name, rid: hex(d.dev.info.rid), attachedPasids: pasids.length };
          detail = `${d.dev.info.name} · rid ${hex(d.dev.info.rid)}`;
          for (const [pasid, hwpt] of d.attached) edge(hwpt, o, pasid === NO_PASID ? 'attached' : `attached pasid ${pasid}`);
          break;
        }
        case OBJ.ACCESS: {
          const a = o as AccessFields;
          attrs = { internal: a.internal };
          detail = a.internal ? 'internal access' : 'in-kernel access';
          if (a.ioas) edge(a.ioas, o, 'access');
          break;
        }
        case OBJ.SELFTEST: {
          const s = o as SelftestFields;
          const name = s.sim?.ddev.info.name;
          if (name) attrs = { device: name };
          detail = name ? `mock ${name}` : 'mock device';
          if (s.idev) edge(s.idev, o, 'mock');
          break;
        }
      }
      nodes.push({ key: key(o), context: ctx.id, id: o.id, type, label: `${LABELS[type] ?? type} ${o.id}`, detail, attrs });
    }
  }
  // Two opens of /dev/iommu number their objects independently: say which context (by its first fd).
  if (contexts.length > 1) {
    const fdOf = new Map(contexts.map((c) => [c.id, c.fds[0]]));
    for (let i = 0; i < nodes.length; i++) nodes[i] = { ...nodes[i]!, label: `${nodes[i]!.label} · fd ${fdOf.get(nodes[i]!.context)}` };
  }
  // Edges to objects not live (being destroyed, or in another context) would dangle in a drawing.
  const live = new Set(nodes.map((n) => n.key));
  return { contexts, nodes, edges: edges.filter((e) => live.has(e.from) && live.has(e.to)), queues: queueTotals(p) };
}

/** Just the event-queue totals of processGraph, without reading every IOAS's areas (sampled often). */
export function queueTotals(p: FdTable): ObjectGraph['queues'] {
  const t = { produced: 0, depth: 0, lost: 0 };
  for (const { ctx } of contextsOf(p)) {
    for (const o of ctx.objects.objects()) {
      if (o.type === OBJ.VEVENTQ) {
        const s = (o as VeventqFields).queue;
        t.produced += s.stats.produced;
        t.depth += s.numEvents;
        t.lost += s.stats.lost;
      } else if (o.type === OBJ.FAULT) {
        const s = (o as FaultFields).queue;
        t.produced += s.stats.queued;
        t.depth += s.queuedGroups;
      }
    }
  }
  return t;
}
