// HWPT_PAGING allocation and its ioctls: HWPT_ALLOC (paging branch; the nested branch is the vIOMMU
// family's), SET_DIRTY_TRACKING and GET_DIRTY_BITMAP (the kernel's hw_pagetable.c).

import * as U from '@viommu/uapi';
import { SystemError, iommu_hwpt_alloc, iommu_hwpt_get_dirty_bitmap, iommu_hwpt_set_dirty_tracking } from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import { getDevice, hwptAttach, type IommufdDevice } from '../device/device.js';
import { NO_PASID, type UserData } from '../driver/driver.js';
import type { Ioas } from '../iommufd/ioas.js';
import { registerIoctl } from '../ioctl/registry.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import { OBJ, ref, type IommufdObject } from '../object/object.js';
import { hwptNestedAllocOnParent, hwptNestedAllocOnViommu } from '../viommu/nested-hwpt.js';
import { hwptSetFault } from '../viommu/fault-queue.js';
import type { Viommu } from '../viommu/viommu.js';
import { HwptPaging, type AttachableHwpt } from './hwpt.js';

const VALID_PAGING_FLAGS = U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING | U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_PASID;

/**
 * iommufd_hwpt_paging_alloc: a reserved HWPT_PAGING on `ioas` for `idev`, its domain added to the
 * IOAS (and attached at `pasid` first when `immediateAttach`). The caller finalizes or aborts it.
 */
export function hwptPagingAlloc(
  ctx: IommufdContext,
  ioas: Ioas,
  idev: IommufdDevice,
  pasid: number,
  flags: number,
  immediateAttach: boolean,
  data: UserData | undefined,
): HwptPaging {
  if (flags & ~VALID_PAGING_FLAGS) throw new SystemError('EOPNOTSUPP', 'ioctl', `HWPT flags 0x${flags.toString(16)}`);
  if (flags & U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING && !idev.ddev.dirtyTracking) throw new SystemError('EOPNOTSUPP', 'ioctl', 'device has no dirty tracking');
  if (flags & U.IOMMU_HWPT_FAULT_ID_VALID && flags & U.IOMMU_HWPT_ALLOC_NEST_PARENT) throw new SystemError('EOPNOTSUPP', 'ioctl', 'a nest parent cannot take faults');
  const hwpt = new HwptPaging(ctx, ioas, (flags & U.IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0, idev.sim.driver);
  ctx.objects.reserve(hwpt);
  hwpt.pasidCompat = (flags & U.IOMMU_HWPT_ALLOC_PASID) !== 0;
  ref(ioas);
  try {
    ctx.host.failNth.point('driver:allocPagingDomain');
    hwpt.domain = idev.sim.driver.allocPagingDomain(idev.ddev, flags & ~U.IOMMU_HWPT_FAULT_ID_VALID, data);
    if (idev.enforceCacheCoherency) {
      if (!hwpt.domain.enforceCacheCoherency?.()) throw new SystemError('EINVAL', 'ioctl', 'domain cannot enforce cache coherency');
      hwpt.enforceCacheCoherency = true;
    }
    if (immediateAttach) hwptAttach(hwpt, idev, pasid);
    try {
      ioas.iopt.attachDomain(hwpt.domain);
    } catch (e) {
      if (immediateAttach) detachImmediate(hwpt, idev, pasid);
      throw e;
    }
    hwpt.inIopt = true;
    ioas.addHwpt(hwpt);
  } catch (e) {
    ctx.objects.abort(hwpt);
    throw e;
  }
  return hwpt;
}

/** Undoes the immediate attach of a HWPT that is being aborted. */
function detachImmediate(hwpt: HwptPaging, idev: IommufdDevice, pasid: number): void {
  idev.attached.delete(pasid);
  idev.sim.driver.attach(idev.ddev, pasid, null);
  if (pasid === NO_PASID) hwpt.ioas.iopt.unreserve(idev);
  hwpt.users--;
}

function hwptAllocIoctl(ucmd: Ucmd): void {
  const cmd = iommu_hwpt_alloc.decode(ucmd.cmd);
  const ctx = ucmd.ctx;
  if (cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'HWPT_ALLOC __reserved');
  if ((cmd.data_type === U.IOMMU_HWPT_DATA_NONE && cmd.data_len) || (cmd.data_type !== U.IOMMU_HWPT_DATA_NONE && !cmd.data_len)) {
    throw new SystemError('EINVAL', 'ioctl', 'data_type and data_len disagree');
  }
  const data: UserData = { type: cmd.data_type, uptr: cmd.data_uptr, len: cmd.data_len, memory: ucmd.memory };
  const idev = getDevice(ctx, cmd.dev_id);
  const pt: IommufdObject | undefined = ctx.objects.find(cmd.pt_id);
  if (!pt) throw new SystemError('EINVAL', 'ioctl', `pt_id ${cmd.pt_id} does not exist`);
  let hwpt: AttachableHwpt & { fault: unknown };
  if (pt.type === OBJ.IOAS) {
    hwpt = hwptPagingAlloc(ctx, pt as Ioas, idev, NO_PASID, cmd.flags, false, cmd.data_len ? data : undefined);
  } else if (pt.type === OBJ.HWPT_PAGING) {
    hwpt = hwptNestedAllocOnParent(ucmd, idev, pt as HwptPaging, cmd.flags, data);
  } else if (pt.type === OBJ.VIOMMU) {
    hwpt = hwptNestedAllocOnViommu(ucmd, idev, pt as Viommu, cmd.flags, data);
  } else {
    throw new SystemError('EINVAL', 'ioctl', `pt_id ${cmd.pt_id} is not an IOAS, HWPT_PAGING or vIOMMU`);
  }
  // From here the dispatcher aborts the HWPT if anything fails.
  ucmd.newObject(hwpt);
  if (cmd.flags & U.IOMMU_HWPT_FAULT_ID_VALID) hwptSetFault(ucmd, hwpt as Parameters<typeof hwptSetFault>[1], cmd.fault_id);
  iommu_hwpt_alloc.set(ucmd.cmd, 'out_hwpt_id', hwpt.id);
  ucmd.respond();
}

export function getHwptPaging(ctx: IommufdContext, id: number): HwptPaging {
  return ctx.objects.get<HwptPaging>(id, OBJ.HWPT_PAGING);
}

function setDirtyTracking(ucmd: Ucmd): void {
  const cmd = iommu_hwpt_set_dirty_tracking.decode(ucmd.cmd);
  if (cmd.flags & ~U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE) throw new SystemError('EOPNOTSUPP', 'ioctl', 'SET_DIRTY_TRACKING flags');
  const hwpt = getHwptPaging(ucmd.ctx, cmd.hwpt_id);
  if (!hwpt.domain.dirty) throw new SystemError('EOPNOTSUPP', 'ioctl', 'domain has no dirty tracking');
  hwpt.ioas.iopt.setDirtyTracking(hwpt.domain, (cmd.flags & U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0);
}

function getDirtyBitmap(ucmd: Ucmd): void {
  const cmd = iommu_hwpt_get_dirty_bitmap.decode(ucmd.cmd);
  if (cmd.flags & ~U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR || cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'GET_DIRTY_BITMAP flags');
  const hwpt = getHwptPaging(ucmd.ctx, cmd.hwpt_id);
  const base = cmd.iova;
  // The granule is the lowest set bit of page_size (the kernel does not insist on a power of two).
  const granule = cmd.page_size & -cmd.page_size;
  const memory = ucmd.memory;
  const word = new Uint8Array(8);
  const dv = new DataView(word.buffer);
  const mark = (iova: bigint, length: bigint): void => {
    if (granule === 0n) return;
    const first = (iova - base) / granule;
    const last = (iova + length - 1n - base) / granule;
    for (let k = first; k <= last; k++) {
      const at = cmd.data + (k >> 6n) * 8n;
      try {
        word.set(memory.read(at, 8));
        dv.setBigUint64(0, dv.getBigUint64(0, true) | (1n << (k & 63n)), true);
        memory.write(at, word);
      } catch {
        // 7.2.13 discards bitmap write failures: the bit is lost, the ioctl still succeeds.
      }
    }
  };
  hwpt.ioas.iopt.readAndClearDirty(hwpt.domain, cmd.iova, cmd.length, cmd.page_size, (cmd.flags & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0, mark);
}

registerIoctl({ name: 'IOMMU_HWPT_ALLOC', request: U.IOMMU_HWPT_ALLOC, struct: iommu_hwpt_alloc, handler: hwptAllocIoctl });
registerIoctl({ name: 'IOMMU_HWPT_SET_DIRTY_TRACKING', request: U.IOMMU_HWPT_SET_DIRTY_TRACKING, struct: iommu_hwpt_set_dirty_tracking, handler: setDirtyTracking });
registerIoctl({ name: 'IOMMU_HWPT_GET_DIRTY_BITMAP', request: U.IOMMU_HWPT_GET_DIRTY_BITMAP, struct: iommu_hwpt_get_dirty_bitmap, handler: getDirtyBitmap });
