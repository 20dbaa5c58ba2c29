// The VFIO cdev structs the iommufd device flow needs (include/uapi/linux/vfio.h, Linux 7.2.13).
// Layouts are Linux 7.2.13's; src/layouts.test.ts checks every size and offset against the fact table.
import { defineStruct, u32, u64 } from './codec.js';

export const vfio_device_bind_iommufd = defineStruct('vfio_device_bind_iommufd', 24, {
  argsz: u32(0),
  flags: u32(4),
  iommufd: u32(8),
  out_devid: u32(12),
  token_uuid_ptr: u64(16),
});

export const vfio_device_attach_iommufd_pt = defineStruct('vfio_device_attach_iommufd_pt', 16, {
  argsz: u32(0),
  flags: u32(4),
  pt_id: u32(8),
  pasid: u32(12),
});

export const vfio_device_detach_iommufd_pt = defineStruct('vfio_device_detach_iommufd_pt', 12, {
  argsz: u32(0),
  flags: u32(4),
  pasid: u32(8),
});
