// The vIOMMU family's ioctl handlers and their registration: decode the kernel's copy of the struct,
// run the family function, write the out fields back, and hand the new object to the dispatcher
// (finalized on success, aborted on failure). Importing this module registers the handlers.

import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VIOMMU_ALLOC,
  iommu_fault_alloc,
  iommu_hw_queue_alloc,
  iommu_hwpt_invalidate,
  iommu_vdevice_alloc,
  iommu_veventq_alloc,
  iommu_viommu_alloc,
} from '@viommu/uapi';
import { registerIoctl } from '../ioctl/registry.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import type { IommufdObject } from '../object/object.js';
import type { OpenFile } from '../process/file.js';
import { faultAlloc } from './fault-queue.js';
import { hwQueueAlloc } from './hw-queue.js';
import { hwptInvalidate } from './invalidate.js';
import { vdeviceAlloc } from './vdevice.js';
import { veventqAlloc } from './veventq.js';
import { viommuAlloc } from './viommu.js';

export * from './event-file.js';
export * from './family.js';
export * from './fault-queue.js';
export * from './hw-queue.js';
export * from './invalidate.js';
export * from './nested-hwpt.js';
export * from './user-data.js';
export * from './vdevice.js';
export * from './veventq.js';
export * from './viommu.js';

function viommuAllocIoctl(ucmd: Ucmd): void {
  const c = iommu_viommu_alloc.decode(ucmd.cmd);
  const v = viommuAlloc(ucmd, { flags: c.flags, type: c.type, devId: c.dev_id, hwptId: c.hwpt_id, dataLen: c.data_len, dataUptr: c.data_uptr });
  ucmd.newObject(v);
  iommu_viommu_alloc.set(ucmd.cmd, 'out_viommu_id', v.id);
  ucmd.respond();
}

function vdeviceAllocIoctl(ucmd: Ucmd): void {
  const c = iommu_vdevice_alloc.decode(ucmd.cmd);
  const vdev = vdeviceAlloc(ucmd, { viommuId: c.viommu_id, devId: c.dev_id, virtId: c.virt_id });
  ucmd.newObject(vdev);
  iommu_vdevice_alloc.set(ucmd.cmd, 'out_vdevice_id', vdev.id);
  ucmd.respond();
}

function hwQueueAllocIoctl(ucmd: Ucmd): void {
  const c = iommu_hw_queue_alloc.decode(ucmd.cmd);
  const q = hwQueueAlloc(ucmd, { flags: c.flags, viommuId: c.viommu_id, type: c.type, index: c.index, iova: c.nesting_parent_iova, length: c.length });
  ucmd.newObject(q);
  iommu_hw_queue_alloc.set(ucmd.cmd, 'out_hw_queue_id', q.id);
  ucmd.respond();
}

/**
 * The fd of a new event object: reserved (installed) before the write-back, taken back if the
 * write-back fails — the object's abort then releases the file.
 */
function respondWithFd(ucmd: Ucmd, obj: IommufdObject, file: OpenFile, setOut: (fd: number) => void): void {
  ucmd.newObject(obj);
  const fd = ucmd.installFd(file);
  setOut(fd);
  try {
    ucmd.respond();
  } catch (e) {
    ucmd.process.uninstallFd(fd);
    throw e;
  }
}

function veventqAllocIoctl(ucmd: Ucmd): void {
  const c = iommu_veventq_alloc.decode(ucmd.cmd);
  const q = veventqAlloc(ucmd, { flags: c.flags, reserved: c.__reserved, viommuId: c.viommu_id, type: c.type, depth: c.veventq_depth });
  iommu_veventq_alloc.set(ucmd.cmd, 'out_veventq_id', q.id);
  respondWithFd(ucmd, q, q.file!, (fd) => iommu_veventq_alloc.set(ucmd.cmd, 'out_veventq_fd', fd));
}

function faultAllocIoctl(ucmd: Ucmd): void {
  const c = iommu_fault_alloc.decode(ucmd.cmd);
  const f = faultAlloc(ucmd, c.flags);
  iommu_fault_alloc.set(ucmd.cmd, 'out_fault_id', f.id);
  respondWithFd(ucmd, f, f.file!, (fd) => iommu_fault_alloc.set(ucmd.cmd, 'out_fault_fd', fd));
}

registerIoctl({ name: 'IOMMU_VIOMMU_ALLOC', request: IOMMU_VIOMMU_ALLOC, struct: iommu_viommu_alloc, handler: viommuAllocIoctl });
registerIoctl({ name: 'IOMMU_VDEVICE_ALLOC', request: IOMMU_VDEVICE_ALLOC, struct: iommu_vdevice_alloc, handler: vdeviceAllocIoctl });
registerIoctl({ name: 'IOMMU_HW_QUEUE_ALLOC', request: IOMMU_HW_QUEUE_ALLOC, struct: iommu_hw_queue_alloc, handler: hwQueueAllocIoctl });
registerIoctl({ name: 'IOMMU_VEVENTQ_ALLOC', request: IOMMU_VEVENTQ_ALLOC, struct: iommu_veventq_alloc, handler: veventqAllocIoctl });
registerIoctl({ name: 'IOMMU_FAULT_QUEUE_ALLOC', request: IOMMU_FAULT_QUEUE_ALLOC, struct: iommu_fault_alloc, handler: faultAllocIoctl });
registerIoctl({ name: 'IOMMU_HWPT_INVALIDATE', request: IOMMU_HWPT_INVALIDATE, struct: iommu_hwpt_invalidate, handler: hwptInvalidate });
