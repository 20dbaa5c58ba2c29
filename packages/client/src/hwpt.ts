// HWPT: a hardware page table. Paging HWPTs live on an IOAS (a nest parent is the stage-2 of a
// vIOMMU); nested HWPTs carry the guest's stage-1 configuration as vendor data, on a nest parent
// (VT-d) or on a vIOMMU (SMMUv3, the mock).

import {
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE, IOMMU_HWPT_GET_DIRTY_BITMAP, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_SET_DIRTY_TRACKING, iommu_hwpt_get_dirty_bitmap, iommu_hwpt_set_dirty_tracking,
} from '@viommu/uapi';
import type { Device } from './device.js';
import type { InvalidateOutcome } from './errors.js';
import { ClientObject } from './object.js';
import type { FaultQueue } from './queues.js';

/** Vendor data passed by pointer: a `data_type` and its struct's bytes. */
export interface VendorData {
  readonly type: number;
  readonly bytes: Uint8Array;
}

export interface HwptOptions {
  /** IOMMU_HWPT_ALLOC_NEST_PARENT: this paging HWPT may be a stage-2. */
  nestParent?: boolean;
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
  dirtyTracking?: boolean;
  /** IOMMU_HWPT_ALLOC_PASID: may be attached to a PASID. */
  pasid?: boolean;
  /** Route page faults of devices attached here to this queue (FAULT_ID_VALID). */
  fault?: FaultQueue;
  /** Paging vendor data (rare); nested HWPTs pass theirs to allocNested. */
  data?: VendorData;
}

/**
 * Invalidation entries of one vendor type at a fixed stride: either packed (`entries.length` a
 * multiple of `entryLen`) or one Uint8Array per entry.
 */
export interface InvalidationBatch {
  readonly type: number;
  readonly entryLen: number;
  readonly entries: Uint8Array | readonly Uint8Array[];
}

export class Hwpt extends ClientObject {
  constructor(
    iommufd: ClientObject['iommufd'],
    id: number,
    readonly nested: boolean,
    /** What it was allocated on: the IOAS (paging), the nest parent or the vIOMMU (nested). */
    readonly parent: ClientObject,
    readonly fault: FaultQueue | undefined,
  ) {
    super(iommufd, id, nested ? 'HWPT_NESTED' : 'HWPT_PAGING');
  }

  /** A nested HWPT on this nest parent (VT-d style; spec 9.4 note to step 16). */
  allocNested(device: Device, data: VendorData, opts: Pick<HwptOptions, 'fault' | 'pasid'> = {}): Hwpt {
    return this.iommufd.allocHwpt(device, this, { ...opts, data });
  }

  /** HWPT_SET_DIRTY_TRACKING (spec 9.4 step 18): on a HWPT allocated with `dirtyTracking`. */
  setDirtyTracking(enable: boolean): void {
    this.iommufd.call('setDirtyTracking', this.label, IOMMU_HWPT_SET_DIRTY_TRACKING, iommu_hwpt_set_dirty_tracking, {
      hwpt_id: this.id, flags: enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
    });
  }

  /**
   * HWPT_GET_DIRTY_BITMAP over [iova, iova + length): the IOVAs of the `pageSize` pages written
   * since the last read. `noClear` leaves the dirty bits set (use it just before unmapping).
   */
  readDirty(iova: bigint, length: number | bigint, pageSize: number, opts: { noClear?: boolean } = {}): bigint[] {
    const pages = Number(BigInt(length) / BigInt(pageSize));
    const bitmap = this.iommufd.process.memory.alloc(Math.max(8, Math.ceil(pages / 64) * 8));
    try {
      this.iommufd.call('readDirty', this.label, IOMMU_HWPT_GET_DIRTY_BITMAP, iommu_hwpt_get_dirty_bitmap, {
        hwpt_id: this.id, flags: opts.noClear ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0, iova, length: BigInt(length),
        page_size: BigInt(pageSize), data: bitmap.addr,
      });
      const dirty: bigint[] = [];
      for (let i = 0; i < pages; i++) if ((bitmap.bytes[i >> 3]! >> (i & 7)) & 1) dirty.push(iova + BigInt(i) * BigInt(pageSize));
      return dirty;
    } finally {
      this.iommufd.process.memory.free(bitmap.addr);
    }
  }

  /** HWPT_INVALIDATE on this (nested) HWPT: the handled count comes back whatever happens. */
  invalidate(batch: InvalidationBatch): InvalidateOutcome {
    return this.iommufd.invalidate(this, batch);
  }
}
