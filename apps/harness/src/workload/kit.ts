// The vendor workload kit: what the workload needs to know about one IOMMU vendor to run a nested
// guest on it, and nothing else. Adding a vendor is one kit file in ./kits/ and a line in
// ./kits/index.ts (ADR 0090).

import type { DeliveredFaultGroup, Device, Hwpt, Iommufd, VendorData, Vdevice, Viommu } from '@viommu/client';
import type { SimHost } from '@viommu/core';
import type { GuestMemory } from '@viommu/backend-compliance/testing';

/**
 * Every kit's host answers a page request nobody responds to with FAILURE after this long
 * (SimHostOptions.faultResponseTimeoutMs, simulator policy), so a stuck IOPF fails a DMA instead
 * of hanging the run. As long as the workload waits for an event.
 */
export const FAULT_RESPONSE_TIMEOUT_MS = 10_000;

/** The size of a workload run (the scale knobs). */
export interface WorkloadShape {
  /** PCI devices assigned to the guest. */
  readonly devices: number;
  /** vIOMMUs on the shared stage-2 (devices are spread over them round-robin). */
  readonly viommus: number;
  /** 4 KiB pages each device's guest stage-1 maps (the guest page-table size). */
  readonly pagesPerDevice: number;
  /** Guest RAM mapped in the IOAS, in bytes (at least what the tables and data need). */
  readonly guestRamBytes: number;
}

/** The guest's stage-1 for one device, built by the kit in guest RAM. */
export interface GuestStage1 {
  /** The nested HWPT's vendor data that points the IOMMU at it (e.g. the SMMUv3 vSTE words). */
  readonly data: VendorData;
  /**
   * Maps one 4 KiB page IOVA -> IPA (replacing any mapping) without invalidating anything. Absent
   * when the vendor's nested domain does not walk a guest stage-1 (the selftest mock: IOVA = IPA).
   */
  map?(iova: number, ipa: number): void;
}

/** One device of the guest of a vendor without a vIOMMU (`viommu: 'none'`), as the workload built it. */
export interface NestedGuestDevice {
  readonly index: number;
  readonly name: string;
  readonly device: Device;
  readonly viommu?: undefined;
  readonly vdevice?: undefined;
  readonly stage1: GuestStage1;
  nested: Hwpt;
}

/** One device of the guest, as the workload built it. */
export interface GuestDevice extends Omit<NestedGuestDevice, 'viommu' | 'vdevice'> {
  readonly viommu: Viommu;
  readonly vdevice: Vdevice;
}

/** What a kit hook sees. */
export interface WorkloadContext {
  readonly host: SimHost;
  readonly iommufd: Iommufd;
  readonly guest: GuestMemory;
}

/** A vendor's HW queue (a command queue the guest drives without an ioctl per command). */
export interface HwQueueKit {
  readonly type: number;
  /** Bytes of guest RAM per queue. */
  readonly length: number;
  /**
   * Issues `entries` (invalidation entries of the kit's format) through queue `queueIpa` of
   * `viommu` the way the guest would (write the ring, bump PROD); returns how many the hardware
   * consumed. Absent when the vendor's queue is only allocated (the selftest mock's).
   */
  submit?(ctx: WorkloadContext, viommu: Viommu, queueIpa: number, entries: readonly Uint8Array[]): number;
}

/** What every session has, with hooks that see the device shape its kind builds (`D`). */
export interface SessionHooks<D = GuestDevice | NestedGuestDevice> {
  readonly host: SimHost;
  /** Host device names, one per WorkloadShape.devices. */
  readonly devices: readonly string[];
  /** Where guest RAM starts (an IPA clear of every reserved region). */
  readonly guestRamIpa: number;
  /** IOMMU_HW_INFO_TYPE_* the devices report. */
  readonly hwInfoType: number;
  /** Builds device `index`'s guest stage-1 in guest RAM (empty; the workload maps pages). */
  buildStage1(guest: GuestMemory, index: number): GuestStage1;
  /**
   * The vendor's invalidation entries and where they go. Absent for a vendor with no guest
   * invalidation uAPI (AMD-Vi in Linux 7.2.13): `refresh` instead (ADR 0170).
   */
  readonly invalidation?: {
    readonly target: 'viommu' | 'nested';
    readonly type: number;
    readonly entryLen: number;
    /** Entries that drop everything cached for `dev`'s stage-1 (the guest's flush for that context). */
    flush(ctx: WorkloadContext, dev: D): Uint8Array[];
  };
  /**
   * How a VMM makes the IOMMU walk `dev`'s current stage-1 when the vendor has no guest
   * invalidation (HWPT_INVALIDATE is EOPNOTSUPP): e.g. a new nested HWPT replacing the attachment.
   * Returns the nested HWPT now attached and the host commands it cost (`label` names them).
   */
  readonly refresh?: {
    readonly label: string;
    apply(ctx: WorkloadContext, dev: D): { readonly nested: Hwpt; readonly commands: number };
  };
  /**
   * For a vendor without a walked stage-1 (GuestStage1.map absent): whether the IOMMU still holds
   * `dev`'s cached state that an invalidation must drop (the mock's per-device cache).
   */
  probeCached?(ctx: WorkloadContext, dev: D): boolean;
  /**
   * Recoverable page faults (IOPF): make `dev` raise a page request for `addr` on its fault-capable
   * nested HWPT. `check` sees the group before the workload answers SUCCESS; when `provoke`
   * returns a promise (e.g. of the faulting DMA, retried after the answer), the workload awaits it
   * after answering and counts what it resolves to as a problem (undefined: none).
   */
  readonly pageFault?: {
    provoke(ctx: WorkloadContext, dev: D, addr: bigint): void | Promise<string | undefined>;
    check(group: DeliveredFaultGroup, dev: D): string | undefined;
  };
}

/** One vendor with a vIOMMU on one simulated host, opened for a workload of a given shape. */
export interface ViommuSession extends SessionHooks<GuestDevice> {
  readonly viommu?: undefined;
  /** The vIOMMU to allocate: type and vendor data (written back into Viommu.data). */
  viommuRequest(index: number): { readonly type: number; readonly data?: Uint8Array };
  /** After VIOMMU_ALLOC (e.g. mmap the Tegra241 VINTF page). */
  afterViommu?(viommu: Viommu, index: number): void;
  /** The guest's ID for device `index` (vSID, vDeviceID, ...). Unique per vIOMMU. */
  virtId(index: number): bigint;
  readonly hwQueue?: HwQueueKit;
  /** vEVENTs: the queue type, how to make one for `dev`, and the check of its payload (an error or undefined). */
  readonly vevent?: {
    readonly type: number;
    provoke(ctx: WorkloadContext, dev: GuestDevice): Promise<void>;
    check(payload: Uint8Array, dev: GuestDevice): string | undefined;
  };
}

/**
 * A vendor without a vIOMMU object (Intel VT-d in Linux 7.2.13; ADR 0150): every device's nested
 * HWPT is allocated on the shared stage-2, invalidations go to the nested HWPT, and there are no
 * vDEVICEs, vEVENTs or HW queues.
 */
export interface NoViommuSession extends SessionHooks<NestedGuestDevice> {
  readonly viommu: 'none';
  readonly invalidation: NonNullable<SessionHooks<NestedGuestDevice>['invalidation']> & { readonly target: 'nested' };
  readonly viommuRequest?: undefined;
  readonly afterViommu?: undefined;
  readonly virtId?: undefined;
  readonly hwQueue?: undefined;
  readonly vevent?: undefined;
}

/** One vendor on one simulated host, opened for a workload of a given shape. */
export type VendorSession = ViommuSession | NoViommuSession;

export interface VendorKit {
  /** Short id used on the command line and in JSON ('mock', 'smmuv3'). */
  readonly id: string;
  /** What a person reads in the summary. */
  readonly title: string;
  open(shape: WorkloadShape): VendorSession;
}
