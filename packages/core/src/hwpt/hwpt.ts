// HW page tables (the kernel's hw_pagetable.c): the HWPT_PAGING object, and the shape every HWPT
// (paging here, nested in src/viommu/nested-hwpt.ts) has for attachment.

import type { IopfHandle } from '@viommu/fault';
import type { IommufdContext } from '../context.js';
import type { DriverDomain, DriverPagingDomain, DriverV1 } from '../driver/driver.js';
import type { Ioas } from '../iommufd/ioas.js';
import { IommufdObject, OBJ, unref } from '../object/object.js';

/** A FAULT object as attachment needs it: the queue page requests go to (src/viommu/fault-queue.ts). */
export interface FaultLike extends IommufdObject {
  readonly queue: IopfHandle['queue'];
}

/** Any HWPT a device can attach to: HWPT_PAGING or HWPT_NESTED. */
export interface AttachableHwpt extends IommufdObject {
  readonly domain: DriverDomain | undefined;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID. */
  readonly pasidCompat: boolean;
  /** FAULT_ID_VALID: where faults of attached devices go. */
  readonly fault: FaultLike | undefined;
}

export class HwptPaging extends IommufdObject implements AttachableHwpt {
  readonly type = OBJ.HWPT_PAGING;
  private dom: DriverPagingDomain | undefined;
  fault: FaultLike | undefined;
  pasidCompat = false;
  /** Created by the kernel for an attach to an IOAS; destroyed when its last device leaves. */
  autoDomain = false;
  enforceCacheCoherency = false;
  /** Added to the IOAS's io page table (iopt_table_add_domain done). */
  inIopt = false;

  constructor(
    readonly ctx: IommufdContext,
    readonly ioas: Ioas,
    readonly nestParent: boolean,
    /** The driver that allocated the domain (the kernel's domain->owner). */
    readonly driver: DriverV1,
  ) {
    super();
  }

  /** The driver's domain (set right after the object is reserved, as the kernel allocates it). */
  get domain(): DriverPagingDomain {
    if (!this.dom) throw new Error(`HWPT ${this.id} has no domain`);
    return this.dom;
  }

  set domain(d: DriverPagingDomain) {
    this.dom = d;
  }

  destroy(): void {
    if (this.inIopt) {
      this.ioas.iopt.detachDomain(this.domain);
      this.inIopt = false;
      this.ioas.removeHwpt(this);
    }
    this.dom?.free();
    this.dom = undefined;
    if (this.fault) unref(this.fault);
    this.fault = undefined;
    unref(this.ioas);
  }
}

/** Any HWPT (alias of AttachableHwpt). */
export type Hwpt = AttachableHwpt;
