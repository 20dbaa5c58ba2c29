// The vendor kit: everything the compliance suite needs to know about a backend, and nothing else.
// A backend's own test file builds one and calls runComplianceSuite(kit).

import type { SimHost } from '@viommu/core';
import type { DeliveredFaultGroup, Device, Hwpt, Iommufd, VendorData, Vdevice, Viommu } from '@viommu/client';

/**
 * Guest RAM: user memory of the VMM process, mapped in the IOAS at IOVA = guest physical address,
 * so the stage-2 translates it. The kit writes its guest stage-1 tables and descriptors here,
 * addressed by IPA, exactly as a guest kernel would.
 */
export class GuestMemory {
  private next: number;
  private readonly view: DataView;

  constructor(
    /** IPA of the first byte. */
    readonly base: number,
    /** The VMM's view of the RAM (its user memory). */
    readonly bytes: Uint8Array,
  ) {
    this.next = base;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get size(): number {
    return this.bytes.length;
  }

  private at(ipa: number, len: number): number {
    const off = ipa - this.base;
    if (off < 0 || off + len > this.bytes.length) throw new RangeError(`IPA 0x${ipa.toString(16)} (+${len}) is outside guest RAM`);
    return off;
  }

  /** Zeroed guest RAM of `bytes`, aligned to `align` (default 4 KiB, or `bytes` if larger and a power of two). */
  alloc(bytes: number, align = Math.max(4096, bytes & (bytes - 1) ? 4096 : bytes)): number {
    const ipa = Math.ceil(this.next / align) * align;
    this.at(ipa, bytes);
    this.next = ipa + bytes;
    this.bytes.fill(0, ipa - this.base, ipa - this.base + bytes);
    return ipa;
  }

  write(ipa: number, data: Uint8Array): void {
    this.bytes.set(data, this.at(ipa, data.length));
  }

  read(ipa: number, length: number): Uint8Array {
    const off = this.at(ipa, length);
    return this.bytes.slice(off, off + length);
  }

  readU32(ipa: number): number {
    return this.view.getUint32(this.at(ipa, 4), true);
  }

  writeU32(ipa: number, value: number): void {
    this.view.setUint32(this.at(ipa, 4), value >>> 0, true);
  }
}

/** The guest's stage-1 for one device, as the kit built it. */
export interface GuestStage1 {
  /** The nested HWPT vendor data that points the IOMMU at it (e.g. SMMUv3 vSTE words). */
  readonly data: VendorData;
  /**
   * Maps one 4 KiB page IOVA -> IPA in the guest's tables (replacing any mapping) without
   * invalidating anything: the suite checks the IOMMU keeps the old translation until the kit's
   * invalidation entries are issued. Absent when the backend's nested domain does not walk a guest
   * stage-1 (the selftest mock: its nested domain translates through the parent only).
   */
  map?(iova: number, ipa: number): void;
}

/** What the suite has built when a hook of a kit without a vIOMMU (`viommu: 'none'`) runs. */
export interface NestedFlowContext {
  readonly host: SimHost;
  readonly iommufd: Iommufd;
  readonly device: Device;
  /** The host device name (host.device(name).dma issues DMA). */
  readonly deviceName: string;
  readonly guest: GuestMemory;
  /** The NEST_PARENT stage-2 HWPT. */
  readonly s2: Hwpt;
  readonly nested: Hwpt;
  readonly stage1: GuestStage1;
  readonly viommu?: undefined;
  readonly vdevice?: undefined;
}

/** What the suite has built when a kit hook runs (a kit with a vIOMMU). */
export interface FlowContext extends Omit<NestedFlowContext, 'viommu' | 'vdevice'> {
  readonly viommu: Viommu;
  readonly vdevice: Vdevice;
}

export interface ComplianceKit {
  /** Used in test names. */
  readonly name: string;

  /**
   * A fresh simulated host with this backend. `device` names a PCI device with a VFIO cdev behind
   * it; `foreignDevice` (optional) one behind a second instance of the same backend, for the
   * "incompatible nest parent" cases.
   */
  createHost(): { host: SimHost; iommu: string; device: string; foreignDevice?: string };

  /** Where guest RAM goes (an IPA range outside every reserved region of the device) and its size. */
  readonly guestRam: { readonly ipa: number; readonly bytes: number };

  /** IOMMU_HW_INFO_TYPE_* GET_HW_INFO reports for the device. */
  readonly hwInfoType: number;

  /** The vIOMMU to allocate: its type and vendor data (none when absent). */
  readonly viommu: { readonly type: number; data?(): Uint8Array };

  /** The guest's ID for the device (VDEVICE_ALLOC virt_id: a vSID, a vDeviceID, ...). */
  readonly virtId: bigint;

  /**
   * Builds a guest stage-1 in guest RAM that maps `iova` to `ipa` (one 4 KiB page) and returns the
   * nested HWPT's vendor data. `ipa` lies in guest RAM.
   */
  buildStage1(guest: GuestMemory, iova: number, ipa: number): GuestStage1;

  /**
   * The vendor's invalidation: where it is issued and how its entries are encoded. Absent for a
   * vendor with no guest invalidation uAPI (AMD-Vi in Linux 7.2.13): the kit then declares
   * `refresh` instead, and the suite checks HWPT_INVALIDATE is EOPNOTSUPP and that a remapped page
   * stays stale until that refresh.
   */
  readonly invalidation?: {
    /** 'viommu' (SMMUv3, the mock): HWPT_INVALIDATE on the vIOMMU ID; 'nested': on the nested HWPT (a kit without a vIOMMU is a NoViommuKit). */
    readonly target: 'viommu' | 'nested';
    readonly type: number;
    readonly entryLen: number;
    /** Entries that invalidate everything the IOMMU may have cached for `ctx.stage1` (a guest's "flush all"). */
    flushAll(ctx: FlowContext): Uint8Array[];
    /** An entry the driver must reject, and with which errno (e.g. an unknown opcode). */
    bad(ctx: FlowContext): { readonly entry: Uint8Array; readonly errno: string };
    /** For a backend without stage-1 DMA (GuestStage1.map absent): asserts flushAll took effect some other way. */
    checkFlushed?(ctx: FlowContext): void;
  };

  /** How a guest's new tables take effect on a vendor without `invalidation`; exactly one of the two is given. */
  readonly refresh?: StageRefresh;

  /**
   * How the backend reports events to the guest: the vEVENTQ type, how to make one happen (e.g. a
   * DMA to an IOVA the stage-1 does not map), and a check of its payload.
   */
  readonly vevent?: {
    readonly type: number;
    provoke(ctx: FlowContext): Promise<void> | void;
    check(payload: Uint8Array, ctx: FlowContext): void;
  };

  /**
   * Recoverable page faults, where the vendor has them: the device (created PRI-capable) is attached
   * to a fault-capable nested HWPT; `provoke` makes it raise a page request for `addr` and returns
   * the promise of the device's response code when it has one; `check` inspects the group read.
   */
  readonly pageFault?: {
    provoke(ctx: FlowContext, addr: bigint): Promise<number> | void;
    check?(group: DeliveredFaultGroup, ctx: FlowContext): void;
  };

  /** HW queues, where the vendor has them (allocated on guest RAM, ascending index). */
  readonly hwQueue?: { readonly type: number; readonly length: number; readonly count: number };
}


/**
 * The documented alternative of a vendor without a guest invalidation (AMD-Vi upstream: nothing in
 * the IOMMU driver drops what it cached from the guest's tables until the host rewrites the
 * device's DTE). The suite checks the remapped page stays stale through HWPT_INVALIDATE attempts
 * (EOPNOTSUPP) and follows the guest's tables only after `apply`.
 */
export interface StageRefresh {
  /** What the refresh is, for test names (e.g. 'a new nested HWPT replacing the attachment'). */
  readonly what: string;
  /**
   * Makes the IOMMU pick up `ctx.stage1` again for `ctx.device` as the VMM would (e.g. a new nested
   * HWPT from the same vendor data, attached in place of `ctx.nested`); returns the nested HWPT
   * now attached. Whatever it replaced may stay allocated: the suite's teardown frees it.
   */
  apply(ctx: FlowContext): Hwpt;
}

/**
 * A kit for a vendor without a vIOMMU object (Intel VT-d in Linux 7.2.13): the nested HWPT is
 * allocated directly on the NEST_PARENT HWPT, the guest's invalidations go to HWPT_INVALIDATE on the
 * nested HWPT, and there is no vDEVICE, vEVENTQ or HW queue; recoverable faults, where the vendor
 * has them, still come through a FAULT queue given to the nested HWPT. The suite runs everything
 * else as for a ComplianceKit, and checks that VIOMMU_ALLOC is refused (EOPNOTSUPP).
 */
export interface NoViommuKit extends Omit<ComplianceKit, 'viommu' | 'virtId' | 'invalidation' | 'refresh' | 'vevent' | 'pageFault' | 'hwQueue'> {
  /** The option that selects this shape. */
  readonly viommu: 'none';
  /** A vIOMMU type the suite tries to allocate anyway (expects EOPNOTSUPP); the vendor's would-be type. */
  readonly refusedViommuType: number;
  readonly invalidation: {
    readonly target: 'nested';
    readonly type: number;
    readonly entryLen: number;
    flushAll(ctx: NestedFlowContext): Uint8Array[];
    bad(ctx: NestedFlowContext): { readonly entry: Uint8Array; readonly errno: string };
    checkFlushed?(ctx: NestedFlowContext): void;
  };
  readonly pageFault?: {
    provoke(ctx: NestedFlowContext, addr: bigint): Promise<number> | void;
    check?(group: DeliveredFaultGroup, ctx: NestedFlowContext): void;
  };
}

/** Any kit runComplianceSuite takes. */
export type AnyComplianceKit = ComplianceKit | NoViommuKit;
