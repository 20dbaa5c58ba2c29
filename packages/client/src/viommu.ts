// vIOMMU and what hangs off it: vDEVICEs (the guest's ID for a device), nested HWPTs, vEVENTQs,
// HW queues, vIOMMU-wide invalidation, and vendor MMIO pages mapped through the iommufd.

import {
  IOMMU_HW_QUEUE_ALLOC, IOMMU_VDEVICE_ALLOC, IOMMU_VEVENTQ_ALLOC, iommu_hw_queue_alloc, iommu_vdevice_alloc,
  iommu_veventq_alloc,
} from '@viommu/uapi';
import type { Device } from './device.js';
import { wrapErrno, type InvalidateOutcome } from './errors.js';
import type { Hwpt, HwptOptions, InvalidationBatch, VendorData } from './hwpt.js';
import type { Iommufd } from './iommufd.js';
import { ClientObject } from './object.js';
import { Veventq } from './queues.js';

export class Viommu extends ClientObject {
  private readonly maps: { addr: bigint; length: number }[] = [];

  constructor(
    iommufd: Iommufd,
    id: number,
    /** IOMMU_VIOMMU_TYPE_*. */
    readonly type: number,
    /** The nest-parent HWPT (the stage-2) it was created on. */
    readonly parent: Hwpt,
    /** The vendor data as the kernel wrote it back (e.g. Tegra241's mmap offset), if any was passed. */
    readonly data: Uint8Array | undefined,
  ) {
    super(iommufd, id, 'VIOMMU');
  }

  /** VDEVICE_ALLOC: tells the kernel the guest's ID for `device` (stream ID, device ID, ...). */
  allocVdevice(device: Device, virtId: bigint | number): Vdevice {
    const r = this.iommufd.call('allocVdevice', `${this.label}, ${device.label}`, IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, {
      viommu_id: this.id, dev_id: device.id, virt_id: BigInt(virtId),
    });
    return new Vdevice(this.iommufd, r.out_vdevice_id, this, device, BigInt(virtId));
  }

  /** A nested HWPT on this vIOMMU from the guest's configuration (e.g. SMMUv3 vSTE words). */
  allocNested(device: Device, data: VendorData, opts: Pick<HwptOptions, 'fault' | 'pasid'> = {}): Hwpt {
    return this.iommufd.allocHwpt(device, this, { ...opts, data });
  }

  /** HWPT_INVALIDATE on the vIOMMU (the guest's invalidation commands). */
  invalidate(batch: InvalidationBatch): InvalidateOutcome {
    return this.iommufd.invalidate(this, batch);
  }

  /** VEVENTQ_ALLOC: one queue per type per vIOMMU. */
  allocVeventq(type: number, depth: number, opts: { payloadSize?: number } = {}): Veventq {
    const r = this.iommufd.call('allocVeventq', this.label, IOMMU_VEVENTQ_ALLOC, iommu_veventq_alloc, {
      viommu_id: this.id, type, veventq_depth: depth,
    });
    return new Veventq(this.iommufd, r.out_veventq_id, r.out_veventq_fd, type, depth, opts.payloadSize);
  }

  /**
   * HW_QUEUE_ALLOC on guest queue memory at `iova` in the parent's IOAS. Allocate in ascending
   * index order; teardown destroys them in descending order.
   */
  allocHwQueue(q: { type: number; index: number; iova: bigint; length: number | bigint }): HwQueue {
    const r = this.iommufd.call('allocHwQueue', this.label, IOMMU_HW_QUEUE_ALLOC, iommu_hw_queue_alloc, {
      viommu_id: this.id, type: q.type, index: q.index, nesting_parent_iova: q.iova, length: BigInt(q.length),
    });
    return new HwQueue(this.iommufd, r.out_hw_queue_id, this, q.type, q.index);
  }

  /** Maps a vendor page the vIOMMU registered (at the mmap `offset` its vendor data reported). */
  mmap(offset: bigint, length: number): { addr: bigint; bytes: Uint8Array } {
    const m = wrapErrno('mmap', this.label, () => this.iommufd.process.mmap(this.iommufd.fd, length, offset));
    this.maps.push({ addr: m.addr, length });
    return m;
  }

  /** An mmap holds the vIOMMU: unmap before destroying it. */
  protected override release(): void {
    for (const m of this.maps.splice(0)) this.iommufd.process.munmap(m.addr, m.length);
  }
}

export class Vdevice extends ClientObject {
  constructor(
    iommufd: Iommufd,
    id: number,
    readonly viommu: Viommu,
    readonly device: Device,
    readonly virtId: bigint,
  ) {
    super(iommufd, id, 'VDEVICE');
  }
}

export class HwQueue extends ClientObject {
  constructor(
    iommufd: Iommufd,
    id: number,
    readonly viommu: Viommu,
    readonly type: number,
    readonly index: number,
  ) {
    super(iommufd, id, 'HW_QUEUE');
  }
}
