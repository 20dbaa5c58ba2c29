// @viommu/backend-amd-vi: the AMD-Vi hardware model and its iommufd driver backend.
export * from './formats/commands.js';
export * from './formats/dte.js';
export * from './formats/logs.js';
export * from './pgtable/table.js';
export * from './hw/regs.js';
export * from './hw/amd-vi.js';
export * from './driver/device.js';
export * from './driver/domains.js';
export * from './driver/driver.js';
export * from './driver/viommu.js';
export * from './driver/hw-viommu.js';
export * from './guest/guest-stage1.js';
