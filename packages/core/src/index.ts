import './families.js';

export * from './context.js';
export * from './device/device.js';
export * from './device/sim-device.js';
export * from './device/vfio-cdev.js';
export * from './driver/domain.js';
export * from './driver/driver.js';
export * from './host/address-space.js';
export * from './host/fail-nth.js';
export * from './host/physical-memory.js';
export * from './host/sim-host.js';
export * from './hwpt/hwpt.js';
export * from './hwpt/paging.js';
export * from './iommufd/ioas.js';
export * from './iommufd/vfio-compat.js';
export * from './ioctl/dispatch.js';
export * from './ioctl/registry.js';
export * from './ioctl/ucmd.js';
export * from './mmap.js';
export * from './object/object.js';
export * from './object/object-table.js';
export * from './process/file.js';
export * from './process/sim-process.js';
export * from './invariants.js';
export { mockIommu, type MockIommuOptions } from './selftest/index.js';
// Vendor-data copies with the kernel's rules, for drivers (iommu_copy_struct_*_user*).
export {
  copyFullUserArray,
  copyStructFromUser,
  copyUserArrayEntry,
  copyUserData,
  copyUserDataOut,
  userView,
} from './viommu/user-data.js';
// Hardware-model helpers shared by the vendor backends (ADR 0015).
export * from './driver/bits.js';
export * from './driver/map-range.js';
export * from './driver/table-memory.js';
