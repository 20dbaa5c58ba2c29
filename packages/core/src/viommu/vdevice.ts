// IOMMU_VDEVICE_ALLOC and the VDEVICE object (viommu.c, device.c): a device's identity on one
// vIOMMU (its virt_id: SMMUv3 vSID, AMD vDeviceID, VT-d vRID). It holds its vIOMMU and its DEVICE;
// a DEVICE has at most one vDEVICE and a virt_id is unique per vIOMMU. When the device is unbound
// while its vDEVICE lives, the vDEVICE is destroyed and its ID left as a tombstone.

import { SystemError } from '@viommu/uapi';
import type { DriverVdevice } from '../driver/driver.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { DeviceObject, FamilyContext } from './family.js';
import { virtKey, type Viommu } from './viommu.js';

const ULONG_MAX = (1n << 64n) - 1n;

export class Vdevice extends IommufdObject {
  readonly type = OBJ.VDEVICE;
  impl: DriverVdevice | undefined;
  /** This vDEVICE owns its virt_id slot in the vIOMMU's table (reserved or stored). */
  private ownsSlot = false;

  constructor(
    readonly viommu: Viommu,
    readonly idev: DeviceObject,
    readonly virtId: bigint,
  ) {
    super();
  }

  /** Reserves the virt_id on the vIOMMU (xa_insert of a NULL entry): EEXIST when taken. */
  claimSlot(): void {
    const key = virtKey(this.virtId);
    if (this.viommu.vdevs.has(key)) throw new SystemError('EEXIST', 'ioctl', `virt_id 0x${this.virtId.toString(16)} is already used on vIOMMU ${this.viommu.id}`);
    this.viommu.vdevs.set(key, null);
    this.ownsSlot = true;
  }

  /** Publishes the vDEVICE under its virt_id (drivers' lookups find it from now on). */
  publish(): void {
    this.viommu.vdevs.set(virtKey(this.virtId), this);
  }

  releaseSlot(): void {
    if (this.ownsSlot) this.viommu.vdevs.delete(virtKey(this.virtId));
    this.ownsSlot = false;
  }

  destroy(): void {
    // iommufd_vdevice_abort + the DEVICE reference of iommufd_vdevice_destroy.
    this.impl?.destroy();
    this.impl = undefined;
    this.releaseSlot();
    unref(this.viommu);
    if (this.idev.vdev === this) this.idev.vdev = undefined;
    unref(this.idev);
  }
}

export interface VdeviceAllocArgs {
  readonly viommuId: number;
  readonly devId: number;
  readonly virtId: bigint;
}

/**
 * IOMMU_VDEVICE_ALLOC (iommufd_vdevice_alloc_ioctl), in the kernel's order of checks. Returns the
 * reserved vDEVICE, already linked and initialised; the caller finalizes it after the write-back.
 */
export function vdeviceAlloc(fc: FamilyContext, a: VdeviceAllocArgs): Vdevice {
  if (a.virtId > ULONG_MAX) throw new SystemError('EINVAL', 'ioctl', 'virt_id does not fit an unsigned long');
  const viommu = fc.ctx.objects.get<Viommu>(a.viommuId, OBJ.VIOMMU);
  const idev = fc.ctx.objects.get<DeviceObject>(a.devId, OBJ.DEVICE);
  if (viommu.driver !== idev.driver) throw new SystemError('EINVAL', 'ioctl', 'the device is behind another IOMMU instance than the vIOMMU');
  if (idev.destroying) throw new SystemError('ENOENT', 'ioctl', `device ${a.devId} is being unbound`);
  if (idev.vdev) throw new SystemError('EEXIST', 'ioctl', `device ${a.devId} already has a vDEVICE`);

  const vdev = new Vdevice(viommu, idev, a.virtId);
  fc.ctx.objects.reserve(vdev);
  ref(viommu);
  ref(idev);
  idev.vdev = vdev;
  try {
    // xa_insert can fail to allocate.
    fc.ctx.host.failNth.point('vdevice:xa_insert');
    vdev.claimSlot();
    const init = viommu.impl?.vdeviceInit;
    if (init) {
      const impl = init.call(viommu.impl, { dev: idev.dev, virtId: a.virtId, id: vdev.id });
      if (impl) vdev.impl = impl;
    }
  } catch (e) {
    fc.ctx.objects.abort(vdev);
    throw e;
  }
  vdev.publish();
  return vdev;
}

/**
 * The DEVICE is being unbound (its pre_destroy, iommufd_device_remove_vdev): refuse new vDEVICEs
 * and, if one lives, destroy it leaving its ID as a tombstone until the context is released.
 * The core's DEVICE object calls this before it removes itself.
 */
export function vdeviceRemoveOnUnbind(fc: FamilyContext, idev: DeviceObject): void {
  idev.destroying = true;
  const vdev = idev.vdev;
  if (!vdev || !fc.ctx.objects.find(vdev.id)) return;
  fc.ctx.objects.remove(vdev, { tombstone: true });
}
