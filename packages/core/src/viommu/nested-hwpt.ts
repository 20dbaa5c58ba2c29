// HWPT_NESTED objects: the two nested branches of IOMMU_HWPT_ALLOC (hw_pagetable.c). A nested
// HWPT is a stage-1 the guest owns (described by vendor data) on top of a stage-2; it is created
// either on a nest-parent HWPT_PAGING (VT-d, the selftest mock) — and then holds that parent — or
// on a vIOMMU (SMMUv3/Tegra241, the mock) — and then holds the vIOMMU, not the parent. The core's
// HWPT_ALLOC handler (src/hwpt/paging.ts) calls these, then does FAULT_ID_VALID (hwptSetFault in
// fault-queue.ts) and the write-back.

import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID, SystemError } from '@viommu/uapi';
import type { DriverNestedDomain, DriverV1, UserData } from '../driver/driver.js';
import type { AttachableHwpt, FaultLike } from '../hwpt/hwpt.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { DeviceObject, FamilyContext, HwptPagingObject } from './family.js';
import type { Viommu } from './viommu.js';

export class HwptNested extends IommufdObject implements AttachableHwpt {
  readonly type = OBJ.HWPT_NESTED;
  private dom: DriverNestedDomain | undefined;
  /** FAULT_ID_VALID: the FAULT it holds, where faults of attached devices go. */
  fault: FaultLike | undefined;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID: attachable to PASIDs. */
  readonly pasidCompat: boolean;

  constructor(
    /** The stage-2: the parent HWPT, or the vIOMMU's. */
    readonly parent: HwptPagingObject,
    /** The vIOMMU it was allocated on (vIOMMU path), which it then holds instead of the parent. */
    readonly viommu: Viommu | undefined,
    /** The driver that owns the domain (the kernel's domain->owner). */
    readonly driver: DriverV1,
    flags: number,
  ) {
    super();
    this.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  }

  /** The driver's nested domain (undefined only while being built). */
  get domain(): DriverNestedDomain | undefined {
    return this.dom;
  }

  /** Takes the reference the HWPT holds for its life, then asks the driver for the domain. */
  build(alloc: () => DriverNestedDomain): void {
    ref(this.viommu ?? this.parent);
    this.dom = alloc();
  }

  destroy(): void {
    // iommufd_hwpt_nested_destroy: domain, FAULT, then the vIOMMU or the parent.
    this.dom?.free();
    this.dom = undefined;
    if (this.fault) unref(this.fault);
    this.fault = undefined;
    unref(this.viommu ?? this.parent);
  }
}

const NESTED_FLAGS = IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;

/** Reserves `hwpt`, builds it, and aborts it (dropping what it took) if the driver refuses. */
function reserveAndBuild(fc: Pick<FamilyContext, 'ctx'>, hwpt: HwptNested, alloc: () => DriverNestedDomain): HwptNested {
  fc.ctx.objects.reserve(hwpt);
  try {
    hwpt.build(alloc);
  } catch (e) {
    fc.ctx.objects.abort(hwpt);
    throw e;
  }
  return hwpt;
}

/**
 * HWPT_ALLOC with pt_id = a HWPT_PAGING (iommufd_hwpt_nested_alloc). `data.len` is non-zero
 * exactly when `data.type` is not NONE (the caller checked). Returns the reserved HWPT.
 */
export function hwptNestedAllocOnParent(fc: Pick<FamilyContext, 'ctx'>, idev: DeviceObject, parent: HwptPagingObject, flags: number, data: UserData): HwptNested {
  const driver = idev.driver;
  const allocNested = driver.allocNestedDomain;
  if (flags & ~NESTED_FLAGS || data.len === 0 || !allocNested) {
    throw new SystemError('EOPNOTSUPP', 'ioctl', 'nested HWPT: unsupported flags, no vendor data, or no nested allocator');
  }
  if (parent.autoDomain || !parent.nestParent || parent.driver !== driver) {
    throw new SystemError('EINVAL', 'ioctl', `HWPT ${parent.id} cannot be a nesting parent for this device`);
  }
  const hwpt = new HwptNested(parent, undefined, driver, flags);
  return reserveAndBuild(fc, hwpt, () => allocNested.call(driver, idev.dev, parent.domain, flags & ~IOMMU_HWPT_FAULT_ID_VALID, data));
}

/** HWPT_ALLOC with pt_id = a vIOMMU (iommufd_viommu_alloc_hwpt_nested). Returns the reserved HWPT. */
export function hwptNestedAllocOnViommu(fc: Pick<FamilyContext, 'ctx'>, idev: DeviceObject, viommu: Viommu, flags: number, data: UserData): HwptNested {
  if (viommu.driver !== idev.driver) throw new SystemError('EINVAL', 'ioctl', 'the device is behind another IOMMU instance than the vIOMMU');
  if (flags & ~NESTED_FLAGS) throw new SystemError('EOPNOTSUPP', 'ioctl', `nested HWPT flags 0x${flags.toString(16)}`);
  if (data.len === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'a nested HWPT needs vendor data');
  const impl = viommu.impl;
  const allocNested = impl?.allocNested;
  if (!impl || !allocNested) throw new SystemError('EOPNOTSUPP', 'ioctl', `vIOMMU ${viommu.id} cannot allocate nested domains`);
  const hwpt = new HwptNested(viommu.hwpt, viommu, viommu.driver, flags);
  return reserveAndBuild(fc, hwpt, () => allocNested.call(impl, idev.dev, flags & ~IOMMU_HWPT_FAULT_ID_VALID, data));
}
