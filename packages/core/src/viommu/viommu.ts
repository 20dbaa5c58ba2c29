// IOMMU_VIOMMU_ALLOC and the VIOMMU object (drivers/iommu/iommufd/viommu.c, driver.c): a vIOMMU
// binds one physical IOMMU instance (the driver of the device named at creation) to one
// nest-parent HWPT_PAGING, which it holds for its life. It owns the virt_id → vDEVICE table, the
// list of its vEVENTQs, and the mmap regions its driver registers.

import { SystemError, type ErrnoName } from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import type { DriverDevice, DriverPagingDomain, DriverV1, DriverViommu, ViommuCore } from '../driver/driver.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { DeviceObject, FamilyContext, HwptPagingObject } from './family.js';
import type { Vdevice } from './vdevice.js';
import type { Veventq } from './veventq.js';

/** virt_id as a Map key: a plain number whenever it is exact (every realistic ID), else the bigint. */
export function virtKey(virtId: bigint): number | bigint {
  return virtId <= 0x1f_ffff_ffff_ffffn ? Number(virtId) : virtId;
}

export class Viommu extends IommufdObject {
  readonly type = OBJ.VIOMMU;
  /** virt_id → vDEVICE; `null` marks an ID reserved by a vDEVICE still being initialised. */
  readonly vdevs = new Map<number | bigint, Vdevice | null>();
  /** At most one per vEVENTQ type. */
  readonly veventqs: Veventq[] = [];
  /** Set once the driver's init succeeded; its teardown then runs on destroy. */
  impl: DriverViommu | undefined;
  /** The driver-facing view of this vIOMMU. */
  readonly core: ViommuCore;

  constructor(
    readonly ctx: IommufdContext,
    /** The physical IOMMU instance (the kernel's viommu->iommu_dev). */
    readonly driver: DriverV1,
    /** The nest-parent HWPT this vIOMMU holds (the stage-2). */
    readonly hwpt: HwptPagingObject,
    /** IOMMU_VIOMMU_TYPE_* */
    readonly viommuType: number,
  ) {
    super();
    this.core = makeCore(this);
  }

  /** The vEVENTQ of `type`, if userspace created one. */
  findVeventq(type: number): Veventq | undefined {
    for (const q of this.veventqs) if (q.veventqType === type) return q;
    return undefined;
  }

  /** The vDEVICE of `virtId` on this vIOMMU (fully initialised ones only). */
  findVdevice(virtId: bigint): Vdevice | undefined {
    return this.vdevs.get(virtKey(virtId)) ?? undefined;
  }

  destroy(): void {
    // iommufd_viommu_destroy: driver teardown only if its init succeeded, then the S2 reference.
    if (this.impl) this.impl.destroy();
    this.impl = undefined;
    unref(this.hwpt);
    this.vdevs.clear();
    // A driver that forgot to unregister its regions must not leave mappable pages behind.
    this.ctx.mmaps.removeOwner(this);
  }
}

function makeCore(v: Viommu): ViommuCore {
  return {
    get id() {
      return v.id;
    },
    get type() {
      return v.viommuType;
    },
    get parent(): DriverPagingDomain {
      return v.hwpt.domain;
    },
    reportEvent(type: number, payload: Uint8Array): ErrnoName | undefined {
      const q = v.findVeventq(type);
      // iommufd_viommu_report_event: no queue of that type → the event is dropped (EOPNOTSUPP to the driver).
      if (!q) return 'EOPNOTSUPP';
      return q.report(payload);
    },
    registerMmap(pa: number, length: number): bigint {
      return v.ctx.mmaps.add(v, pa, length);
    },
    unregisterMmap(offset: bigint): void {
      v.ctx.mmaps.remove(offset);
    },
    findDevice(virtId: bigint): DriverDevice | undefined {
      return v.findVdevice(virtId)?.idev.dev;
    },
    virtIdOf(dev: DriverDevice): bigint | undefined {
      for (const vdev of v.vdevs.values()) if (vdev && vdev.idev.dev === dev) return vdev.virtId;
      return undefined;
    },
  };
}

/** The checks VIOMMU_ALLOC makes before any lookup (kernel order). */
export function viommuAllocPrecheck(flags: number, type: number): void {
  if (flags !== 0 || type === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'VIOMMU_ALLOC: flags must be 0 and type non-zero');
}

export interface ViommuAllocArgs {
  readonly flags: number;
  readonly type: number;
  readonly devId: number;
  readonly hwptId: number;
  readonly dataLen: number;
  readonly dataUptr: bigint;
}

/**
 * IOMMU_VIOMMU_ALLOC (iommufd_viommu_alloc_ioctl): validates, reserves the new object and runs the
 * driver's init. Returns the reserved (not yet visible) vIOMMU; the caller makes it visible only
 * after the write-back succeeded and aborts it otherwise (abort = destroy).
 */
export function viommuAlloc(fc: FamilyContext, a: ViommuAllocArgs): Viommu {
  viommuAllocPrecheck(a.flags, a.type);
  const idev = fc.ctx.objects.get<DeviceObject>(a.devId, OBJ.DEVICE);
  const driver = idev.driver;
  if (!driver.viommuInit) throw new SystemError('EOPNOTSUPP', 'ioctl', `${driver.name} has no vIOMMU support`);
  // get_viommu_size: an unsupported type is refused before the parent is looked up.
  if (driver.viommuSupported && !driver.viommuSupported(idev.dev, a.type)) {
    throw new SystemError('EOPNOTSUPP', 'ioctl', `${driver.name} has no vIOMMU type 0x${a.type.toString(16)}`);
  }
  const hwpt = fc.ctx.objects.get<HwptPagingObject>(a.hwptId, OBJ.HWPT_PAGING);
  if (!hwpt.nestParent) throw new SystemError('EINVAL', 'ioctl', `HWPT ${a.hwptId} is not a nesting parent`);

  const v = new Viommu(fc.ctx, driver, hwpt, a.type);
  fc.ctx.objects.reserve(v);
  ref(hwpt);
  try {
    v.impl = driver.viommuInit({
      type: a.type,
      dev: idev.dev,
      parent: hwpt.domain,
      // The kernel passes no user data at all when data_len is 0 (type 0, length 0 here).
      data: a.dataLen ? { type: a.type, uptr: a.dataUptr, len: a.dataLen, memory: fc.memory } : { type: 0, uptr: 0n, len: 0, memory: fc.memory },
      core: v.core,
    });
  } catch (e) {
    fc.ctx.objects.abort(v);
    throw e;
  }
  return v;
}
