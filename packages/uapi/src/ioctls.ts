// The iommufd ioctl table as the kernel's dispatcher has it: request number, argument struct,
// and the minimum accepted `size` (offsetofend of the struct's last mandatory field).
import type { StructCodec } from './codec.js';
import * as C from './constants.js';
import * as S from './structs.js';
import { iommu_test_cmd } from './selftest.js';
import * as V from './vfio.js';

export interface IoctlDef {
  readonly name: string;
  readonly request: number;
  readonly struct: StructCodec;
}

const def = (name: string, request: number, struct: StructCodec): IoctlDef => ({ name, request, struct });

/** The iommufd commands, nr 0x80..0x94, in command-number order. */
export const IOMMUFD_IOCTLS: readonly IoctlDef[] = [
  def('IOMMU_DESTROY', C.IOMMU_DESTROY, S.iommu_destroy),
  def('IOMMU_IOAS_ALLOC', C.IOMMU_IOAS_ALLOC, S.iommu_ioas_alloc),
  def('IOMMU_IOAS_ALLOW_IOVAS', C.IOMMU_IOAS_ALLOW_IOVAS, S.iommu_ioas_allow_iovas),
  def('IOMMU_IOAS_COPY', C.IOMMU_IOAS_COPY, S.iommu_ioas_copy),
  def('IOMMU_IOAS_IOVA_RANGES', C.IOMMU_IOAS_IOVA_RANGES, S.iommu_ioas_iova_ranges),
  def('IOMMU_IOAS_MAP', C.IOMMU_IOAS_MAP, S.iommu_ioas_map),
  def('IOMMU_IOAS_UNMAP', C.IOMMU_IOAS_UNMAP, S.iommu_ioas_unmap),
  def('IOMMU_OPTION', C.IOMMU_OPTION, S.iommu_option),
  def('IOMMU_VFIO_IOAS', C.IOMMU_VFIO_IOAS, S.iommu_vfio_ioas),
  def('IOMMU_HWPT_ALLOC', C.IOMMU_HWPT_ALLOC, S.iommu_hwpt_alloc),
  def('IOMMU_GET_HW_INFO', C.IOMMU_GET_HW_INFO, S.iommu_hw_info),
  def('IOMMU_HWPT_SET_DIRTY_TRACKING', C.IOMMU_HWPT_SET_DIRTY_TRACKING, S.iommu_hwpt_set_dirty_tracking),
  def('IOMMU_HWPT_GET_DIRTY_BITMAP', C.IOMMU_HWPT_GET_DIRTY_BITMAP, S.iommu_hwpt_get_dirty_bitmap),
  def('IOMMU_HWPT_INVALIDATE', C.IOMMU_HWPT_INVALIDATE, S.iommu_hwpt_invalidate),
  def('IOMMU_FAULT_QUEUE_ALLOC', C.IOMMU_FAULT_QUEUE_ALLOC, S.iommu_fault_alloc),
  def('IOMMU_IOAS_MAP_FILE', C.IOMMU_IOAS_MAP_FILE, S.iommu_ioas_map_file),
  def('IOMMU_VIOMMU_ALLOC', C.IOMMU_VIOMMU_ALLOC, S.iommu_viommu_alloc),
  def('IOMMU_VDEVICE_ALLOC', C.IOMMU_VDEVICE_ALLOC, S.iommu_vdevice_alloc),
  def('IOMMU_IOAS_CHANGE_PROCESS', C.IOMMU_IOAS_CHANGE_PROCESS, S.iommu_ioas_change_process),
  def('IOMMU_VEVENTQ_ALLOC', C.IOMMU_VEVENTQ_ALLOC, S.iommu_veventq_alloc),
  def('IOMMU_HW_QUEUE_ALLOC', C.IOMMU_HW_QUEUE_ALLOC, S.iommu_hw_queue_alloc),
];

/** IOMMU_TEST_CMD (nr 0xa0), present when the kernel has CONFIG_IOMMUFD_TEST. */
export const IOMMU_TEST_IOCTL: IoctlDef = def('IOMMU_TEST_CMD', C.IOMMU_TEST_CMD, iommu_test_cmd);

/** The VFIO cdev calls of the iommufd device flow; VFIO checks `argsz` against its own minimums. */
export const VFIO_CDEV_IOCTLS: readonly IoctlDef[] = [
  def('VFIO_DEVICE_BIND_IOMMUFD', C.VFIO_DEVICE_BIND_IOMMUFD, V.vfio_device_bind_iommufd),
  def('VFIO_DEVICE_ATTACH_IOMMUFD_PT', C.VFIO_DEVICE_ATTACH_IOMMUFD_PT, V.vfio_device_attach_iommufd_pt),
  def('VFIO_DEVICE_DETACH_IOMMUFD_PT', C.VFIO_DEVICE_DETACH_IOMMUFD_PT, V.vfio_device_detach_iommufd_pt),
];

const byRequest = new Map([...IOMMUFD_IOCTLS, IOMMU_TEST_IOCTL, ...VFIO_CDEV_IOCTLS].map((d) => [d.request, d]));

export function ioctlByRequest(request: number): IoctlDef | undefined {
  return byRequest.get(request);
}

/** The _IOC_NR field of a request number. */
export const ioctlNr = (request: number): number => request & 0xff;
/** The _IOC_TYPE field of a request number. */
export const ioctlType = (request: number): number => (request >>> 8) & 0xff;
