// What the vIOMMU family needs from the rest of the core, named in one place: the calling
// context (its object table and the caller's memory) and the shape of the DEVICE and HWPT_PAGING
// objects it links to. The core's own classes satisfy these structurally; keeping the list short
// here is what lets src/viommu/ stay one file per object family.

import type { IommufdContext } from '../context.js';
import type { DriverDevice, DriverPagingDomain, DriverV1, UserAccess } from '../driver/driver.js';
import type { Ioas } from '../iommufd/ioas.js';
import type { IommufdObject } from '../object/object.js';

/** The context an ioctl runs in (the kernel's ictx) and the caller's memory (`current->mm`). */
export interface FamilyContext {
  readonly ctx: IommufdContext;
  /** The calling process's memory: where pointer fields of the ioctl point. */
  readonly memory: UserAccess;
}

/** A DEVICE object as the vIOMMU family uses it (the kernel's iommufd_device). */
export interface DeviceObject extends IommufdObject {
  /** The driver instance (one physical IOMMU) the device sits behind: the kernel's iommu_dev. */
  readonly driver: DriverV1;
  readonly dev: DriverDevice;
  /** The device's vDEVICE, if any (at most one across all vIOMMUs). */
  vdev: IommufdObject | undefined;
  /** Set when the device is being unbound: no new vDEVICE may link to it (ENOENT). */
  destroying: boolean;
}

/** A HWPT_PAGING object as the vIOMMU family uses it (the kernel's iommufd_hwpt_paging). */
export interface HwptPagingObject extends IommufdObject {
  readonly domain: DriverPagingDomain;
  /** Allocated by HWPT_ALLOC with NEST_PARENT. */
  readonly nestParent: boolean;
  /** An automatic HWPT (created by attach to an IOAS), never a nesting parent. */
  readonly autoDomain: boolean;
  /** The driver that allocated the domain (the kernel's domain->owner). */
  readonly driver: DriverV1;
  /** The IOAS the HWPT maps (HW queues pin guest queue memory through it). */
  readonly ioas: Ioas;
}
