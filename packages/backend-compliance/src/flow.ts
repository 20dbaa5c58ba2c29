// The nested vIOMMU flow of spec 9.4, built through @viommu/client over the process contract of a
// simulated host, for one vendor kit. The suite's tests and the fail_nth sweep start from here.

import { ClientError, Iommufd, type DeliveredFaultGroup, type Hwpt, type Ioas, type Viommu } from '@viommu/client';
import type { SimHost, SimProcess } from '@viommu/core';
import { GuestMemory, type AnyComplianceKit, type ComplianceKit, type FlowContext, type NestedFlowContext, type NoViommuKit } from './kit.js';

/** Where the suite puts its test data and its stage-1 mapping. */
export const DATA_OFFSET = 0x10_0000; // from guest RAM's base: leaves room for the kit's tables
export const STAGE1_IOVA = 0x1234_5000;

interface FlowExtras {
  readonly process: SimProcess;
  readonly iommu: string;
  readonly foreignDevice: string | undefined;
  readonly ioas: Ioas;
  readonly s2: Hwpt;
  /** The guest page the stage-1 maps STAGE1_IOVA to. */
  readonly dataIpa: number;
  /** The IOVA a device DMA uses to reach dataIpa through the nested HWPT. */
  readonly dataIova: number;
}

/** The flow of a kit with a vIOMMU. */
export interface Flow extends FlowContext, FlowExtras {}
/** The flow of a kit without one (`viommu: 'none'`): the nested HWPT sits on the nest parent. */
export interface NestedFlow extends NestedFlowContext, FlowExtras {}

/**
 * Runs the flow up to the device attached to the nested HWPT; `onSpawn` sees the host and process
 * first. With a vIOMMU: stage-2, vIOMMU, vDEVICE, nested HWPT on the vIOMMU; without
 * (`viommu: 'none'`): the nested HWPT is allocated on the stage-2 itself.
 */
export function buildFlow(kit: ComplianceKit, opts?: FlowOptions): Flow;
export function buildFlow(kit: NoViommuKit, opts?: FlowOptions): NestedFlow;
export function buildFlow(kit: AnyComplianceKit, opts?: FlowOptions): Flow | NestedFlow;
export function buildFlow(kit: AnyComplianceKit, opts: FlowOptions = {}): Flow | NestedFlow {
  const { host, iommu, device: deviceName, foreignDevice } = kit.createHost();
  const proc = host.spawn();
  opts.onSpawn?.(host, proc);
  const iommufd = Iommufd.open(proc);
  const device = iommufd.bindDevice(host.device(deviceName).path);
  const ram = proc.memory.alloc(kit.guestRam.bytes);
  const guest = new GuestMemory(kit.guestRam.ipa, ram.bytes);
  const ioas = iommufd.allocIoas();
  ioas.map(ram.addr, kit.guestRam.bytes, { iova: BigInt(kit.guestRam.ipa) });
  // The guest boots with translation off: the device sits on the IOAS (an automatic stage-2).
  device.attach(ioas);
  const s2 = ioas.allocNestParent(device);
  const dataIpa = kit.guestRam.ipa + DATA_OFFSET;
  const common = { host, process: proc, iommu, foreignDevice, iommufd, device, deviceName, guest, ioas, s2, dataIpa };
  if (kit.viommu === 'none') {
    const stage1 = kit.buildStage1(guest, STAGE1_IOVA, dataIpa);
    const nested = s2.allocNested(device, stage1.data);
    device.attach(nested);
    return { ...common, stage1, nested, dataIova: stage1.map ? STAGE1_IOVA : dataIpa };
  }
  const data = kit.viommu.data?.();
  const viommu = iommufd.allocViommu({ type: kit.viommu.type, device, parent: s2, ...(data ? { data } : {}) });
  const vdevice = viommu.allocVdevice(device, kit.virtId);
  const stage1 = kit.buildStage1(guest, STAGE1_IOVA, dataIpa);
  const nested = viommu.allocNested(device, stage1.data);
  device.attach(nested);
  return { ...common, viommu, vdevice, stage1, nested, dataIova: stage1.map ? STAGE1_IOVA : dataIpa };
}

export interface FlowOptions {
  onSpawn?: (host: SimHost, p: SimProcess) => void;
}

export type AnyFlow = Flow | NestedFlow;

/** The kit's invalidation over either shape of flow (see kitHooks). */
export interface InvalidationHooks {
  readonly target: 'viommu' | 'nested';
  readonly type: number;
  readonly entryLen: number;
  flushAll(f: AnyFlow): Uint8Array[];
  bad(f: AnyFlow): { readonly entry: Uint8Array; readonly errno: string };
  checkFlushed(f: AnyFlow): void;
}

/**
 * The kit's hooks over either shape of flow. buildFlow pairs a kit with its own flow shape (a vIOMMU
 * kit gets a Flow, a `viommu: 'none'` kit a NestedFlow), which is what makes the casts sound.
 * `invalidation` is undefined for a kit without one (it has `refresh` instead).
 */
export function kitHooks(kit: AnyComplianceKit) {
  if (kit.viommu === 'none') {
    const k: NoViommuKit = kit;
    const inv = k.invalidation;
    return {
      invalidation: {
        target: inv.target, type: inv.type, entryLen: inv.entryLen,
        flushAll: (f: AnyFlow) => inv.flushAll(f as NestedFlow),
        bad: (f: AnyFlow) => inv.bad(f as NestedFlow),
        checkFlushed: (f: AnyFlow) => inv.checkFlushed?.(f as NestedFlow),
      } as InvalidationHooks | undefined,
      refresh: undefined as ((f: AnyFlow) => Hwpt) | undefined,
      pageFault: k.pageFault && {
        provoke: (f: AnyFlow, addr: bigint) => k.pageFault!.provoke(f as NestedFlow, addr),
        check: (g: DeliveredFaultGroup, f: AnyFlow) => k.pageFault!.check?.(g, f as NestedFlow),
      },
    };
  }
  const k: ComplianceKit = kit;
  const inv = k.invalidation;
  const refresh = k.refresh;
  if ((inv === undefined) === (refresh === undefined)) throw new Error(`kit ${k.name}: give exactly one of invalidation and refresh`);
  return {
    invalidation: inv && ({
      target: inv.target, type: inv.type, entryLen: inv.entryLen,
      flushAll: (f: AnyFlow) => inv.flushAll(f as Flow),
      bad: (f: AnyFlow) => inv.bad(f as Flow),
      checkFlushed: (f: AnyFlow) => inv.checkFlushed?.(f as Flow),
    } as InvalidationHooks),
    refresh: refresh && ((f: AnyFlow) => refresh.apply(f as Flow)),
    pageFault: k.pageFault && {
      provoke: (f: AnyFlow, addr: bigint) => k.pageFault!.provoke(f as Flow, addr),
      check: (g: DeliveredFaultGroup, f: AnyFlow) => k.pageFault!.check?.(g, f as Flow),
    },
  };
}

/** Where a flow's nested HWPTs are allocated: its vIOMMU, or the nest parent when it has none. */
export function nestingParent(f: AnyFlow): Viommu | Hwpt {
  return f.viommu ?? f.s2;
}

/** The errno of what `fn` threw (a ClientError or any errno error), or undefined when it did not throw. */
export function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof ClientError) return e.code;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
}

/** A small deterministic generator (xorshift32) for hostile inputs that replay identically. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

export function randomBytes(next: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}
