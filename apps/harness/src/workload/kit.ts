// The vendor workload kit: what the workload needs to know about one IOMMU vendor to run a nested
// guest on it, and nothing else. Adding a vendor is one kit file in ./kits/ and a line in
// ./kits/index.ts (ADR 0090).

import type { DeliveredFaultGroup, Device, Hwpt, Iommufd, VendorData, Vdevice, Viommu } from '@viommu/client';
import type { SimHost } from '@viommu/core';
import type { GuestMemory } from './guest-memory.js';

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

/** One device of the guest, as the workload built it. */
export interface GuestDevice {
  readonly index: number;
  readonly name: string;
  readonly device: Device;
  readonly viommu: Viommu;
  readonly vdevice: Vdevice;
  readonly stage1: GuestStage1;
  nested: Hwpt;
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

/** One vendor on one simulated host, opened for a workload of a given shape. */
export interface VendorSession {
  readonly host: SimHost;
  /** Host device names, one per WorkloadShape.devices. */
  readonly devices: readonly string[];
  /** Where guest RAM starts (an IPA clear of every reserved region). */
  readonly guestRamIpa: number;
  /** IOMMU_HW_INFO_TYPE_* the devices report. */
  readonly hwInfoType: number;
  /** The vIOMMU to allocate: type and vendor data (written back into Viommu.data). */
  viommuRequest(index: number): { readonly type: number; readonly data?: Uint8Array };
  /** After VIOMMU_ALLOC (e.g. mmap the Tegra241 VINTF page). */
  afterViommu?(viommu: Viommu, index: number): void;
  /** The guest's ID for device `index` (vSID, vDeviceID, ...). Unique per vIOMMU. */
  virtId(index: number): bigint;
  /** Builds device `index`'s guest stage-1 in guest RAM (empty; the workload maps pages). */
  buildStage1(guest: GuestMemory, index: number): GuestStage1;
  /** The vendor's invalidation entries and where they go. */
  readonly invalidation: {
    readonly target: 'viommu' | 'nested';
    readonly type: number;
    readonly entryLen: number;
    /** Entries that drop everything cached for `dev`'s stage-1 (the guest's flush for that context). */
    flush(ctx: WorkloadContext, dev: GuestDevice): Uint8Array[];
  };
  /**
   * For a vendor without a walked stage-1 (GuestStage1.map absent): whether the IOMMU still holds
   * `dev`'s cached state that an invalidation must drop (the mock's per-device cache).
   */
  probeCached?(ctx: WorkloadContext, dev: GuestDevice): boolean;
  readonly hwQueue?: HwQueueKit;
  /** vEVENTs: the queue type, how to make one for `dev`, and the check of its payload (an error or undefined). */
  readonly vevent?: {
    readonly type: number;
    provoke(ctx: WorkloadContext, dev: GuestDevice): Promise<void>;
    check(payload: Uint8Array, dev: GuestDevice): string | undefined;
  };
  /** Recoverable page faults (IOPF): make `dev` raise a page request for `addr` on its fault-capable nested HWPT. */
  readonly pageFault?: {
    provoke(ctx: WorkloadContext, dev: GuestDevice, addr: bigint): void;
    check(group: DeliveredFaultGroup, dev: GuestDevice): string | undefined;
  };
}

export interface VendorKit {
  /** Short id used on the command line and in JSON ('mock', 'smmuv3'). */
  readonly id: string;
  /** What a person reads in the summary. */
  readonly title: string;
  open(shape: WorkloadShape): VendorSession;
}
