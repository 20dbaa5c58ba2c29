// HWPT_NESTED objects: the two nested branches of IOMMU_HWPT_ALLOC (hw_pagetable.c). A nested
// HWPT is a stage-1 the guest owns (described by vendor data) on top of a stage-2; it is created
// either on a nest-parent HWPT_PAGING (VT-d, the selftest mock) — and then holds that parent — or
// on a vIOMMU (SMMUv3/Tegra241, the mock) — and then holds the vIOMMU, not the parent. With
// FAULT_ID_VALID it also holds a FAULT and its domain reports I/O page faults there.

import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID, SystemError } from '@viommu/uapi';
import type { DriverNestedDomain, UserData } from '../driver/driver.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { Fault } from './fault-queue.js';
import type { DeviceObject, FamilyContext, HwptPagingObject } from './family.js';
import type { Viommu } from './viommu.js';

export class HwptNested extends IommufdObject {
  readonly type = OBJ.HWPT_NESTED;
  domain: DriverNestedDomain | undefined;
  fault: Fault | undefined;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID: attachable to PASIDs. */
  readonly pasidCompat: boolean;

  constructor(
    /** The stage-2: the parent HWPT, or the vIOMMU's. */
    readonly parent: HwptPagingObject,
    /** The vIOMMU it was allocated on (vIOMMU path), which it then holds instead of the parent. */
    readonly viommu: Viommu | undefined,
    flags: number,
  ) {
    super();
    this.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  }

  /** The driver that owns the domain (the kernel's domain->owner). */
  get driver() {
    return this.viommu ? this.viommu.driver : this.parent.driver;
  }

  /** Takes the reference the HWPT holds for its life. */
  hold(): void {
    ref(this.viommu ?? this.parent);
  }

  destroy(): void {
    // iommufd_hwpt_nested_destroy: domain, FAULT, then the vIOMMU or the parent.
    this.domain?.free();
    this.domain = undefined;
    if (this.fault) unref(this.fault);
    this.fault = undefined;
    unref(this.viommu ?? this.parent);
  }
}

const NESTED_FLAGS = IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;

/**
 * HWPT_ALLOC with pt_id = a HWPT_PAGING (iommufd_hwpt_nested_alloc). `data.len` is non-zero
 * exactly when `data.type` is not NONE (the caller checked). Returns the reserved HWPT.
 */
export function hwptNestedAllocOnParent(fc: FamilyContext, idev: DeviceObject, parent: HwptPagingObject, flags: number, data: UserData): HwptNested {
  const driver = idev.driver;
  if (flags & ~NESTED_FLAGS || data.len === 0 || !driver.allocNestedDomain) {
    throw new SystemError('EOPNOTSUPP', 'ioctl', 'nested HWPT: unsupported flags, no vendor data, or no nested allocator');
  }
  if (parent.autoDomain || !parent.nestParent || parent.driver !== driver) {
    throw new SystemError('EINVAL', 'ioctl', `HWPT ${parent.id} cannot be a nesting parent for this device`);
  }
  const hwpt = new HwptNested(parent, undefined, flags);
  fc.ctx.objects.reserve(hwpt);
  hwpt.hold();
  try {
    hwpt.domain = driver.allocNestedDomain(idev.dev, parent.domain, flags & ~IOMMU_HWPT_FAULT_ID_VALID, data);
  } catch (e) {
    fc.ctx.objects.abort(hwpt);
    throw e;
  }
  return hwpt;
}

/** HWPT_ALLOC with pt_id = a vIOMMU (iommufd_viommu_alloc_hwpt_nested). Returns the reserved HWPT. */
export function hwptNestedAllocOnViommu(fc: FamilyContext, idev: DeviceObject, viommu: Viommu, flags: number, data: UserData): HwptNested {
  if (viommu.driver !== idev.driver) throw new SystemError('EINVAL', 'ioctl', 'the device is behind another IOMMU instance than the vIOMMU');
  if (flags & ~NESTED_FLAGS) throw new SystemError('EOPNOTSUPP', 'ioctl', `nested HWPT flags 0x${flags.toString(16)}`);
  if (data.len === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'a nested HWPT needs vendor data');
  const impl = viommu.impl;
  if (!impl?.allocNested) throw new SystemError('EOPNOTSUPP', 'ioctl', `vIOMMU ${viommu.id} cannot allocate nested domains`);
  const hwpt = new HwptNested(viommu.hwpt, viommu, flags);
  fc.ctx.objects.reserve(hwpt);
  hwpt.hold();
  try {
    hwpt.domain = impl.allocNested.call(impl, idev.dev, flags & ~IOMMU_HWPT_FAULT_ID_VALID, data);
  } catch (e) {
    fc.ctx.objects.abort(hwpt);
    throw e;
  }
  return hwpt;
}
