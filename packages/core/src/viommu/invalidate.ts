// IOMMU_HWPT_INVALIDATE (hw_pagetable.c iommufd_hwpt_invalidate): the guest's cache invalidations,
// an array of vendor entries, forwarded to the nested domain's or the vIOMMU's invalidator. The
// count of entries the driver handled is written back in entry_num whatever happens — after a
// partial failure too, and 0 for a failure before the driver ran.

import { PAGE_SIZE, SystemError, iommu_hwpt_invalidate } from '@viommu/uapi';
import type { UserDataArray } from '../driver/driver.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import { OBJ } from '../object/object.js';
import type { HwptNested } from './nested-hwpt.js';
import type { Viommu } from './viommu.js';

/** An arbitrary cap far above any real batch, as the kernel has it (IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX). */
export const INVALIDATE_ENTRY_NUM_MAX = 1 << 19;

const F = iommu_hwpt_invalidate.fields;

/** Whatever carries the invalidator: a nested domain or a driver vIOMMU (same contract). */
interface Invalidator {
  cacheInvalidate?(array: UserDataArray): void;
}

/** The handler. The struct is read straight from the kernel's copy: this is the fast path. */
export function hwptInvalidate(ucmd: Ucmd): number {
  const dv = new DataView(ucmd.cmd.buffer, ucmd.cmd.byteOffset, ucmd.cmd.byteLength);
  const hwptId = dv.getUint32(F.hwpt_id.offset, true);
  const uptr = dv.getBigUint64(F.data_uptr.offset, true);
  const dataType = dv.getUint32(F.data_type.offset, true);
  const entryLen = dv.getUint32(F.entry_len.offset, true);
  const entryNum = dv.getUint32(F.entry_num.offset, true);
  const reserved = dv.getUint32(F.__reserved.offset, true);

  const array: UserDataArray = { type: dataType, uptr, entryLen, entryNum, memory: ucmd.memory };
  let done = 0;
  let error: unknown;
  try {
    const target = invalidatorOf(ucmd, hwptId, reserved, array);
    try {
      target.cacheInvalidate!(array);
    } finally {
      // The driver reports what it handled, on success and on failure alike.
      done = array.entryNum;
    }
  } catch (e) {
    error = e;
  }
  dv.setUint32(F.entry_num.offset, done, true);
  // The write-back happens in every case; if it faults, that is the result.
  ucmd.respond();
  if (error !== undefined) throw error;
  return 0;
}

/** The core's checks, in the kernel's order, up to the driver's invalidator (a failure here reports 0). */
function invalidatorOf(ucmd: Ucmd, hwptId: number, reserved: number, array: UserDataArray): Invalidator {
  if (reserved !== 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'HWPT_INVALIDATE: __reserved must be 0');
  if (array.entryNum !== 0 && (array.uptr === 0n || array.entryLen === 0 || array.entryLen > PAGE_SIZE || array.entryNum > INVALIDATE_ENTRY_NUM_MAX)) {
    throw new SystemError('EINVAL', 'ioctl', 'HWPT_INVALIDATE: bad data_uptr, entry_len or entry_num');
  }
  const obj = ucmd.ctx.objects.get(hwptId, OBJ.ANY);
  let target: Invalidator | undefined;
  if (obj.type === OBJ.HWPT_NESTED) {
    target = (obj as HwptNested).domain;
    if (!target?.cacheInvalidate) throw new SystemError('EOPNOTSUPP', 'ioctl', `HWPT ${hwptId} has no user cache invalidation`);
  } else if (obj.type === OBJ.VIOMMU) {
    target = (obj as Viommu).impl;
    if (!target?.cacheInvalidate) throw new SystemError('EOPNOTSUPP', 'ioctl', `vIOMMU ${hwptId} has no cache invalidation`);
  } else {
    throw new SystemError('EINVAL', 'ioctl', `object ${hwptId} is neither a nested HWPT nor a vIOMMU`);
  }
  return target;
}
