// @viommu/backend-vtd: the Intel VT-d (scalable mode) hardware model and its iommufd driver backend.
// Shared with the other backends through core; re-exported under the names this package always had.
export { addrOf, bit, bytesToQwords, field, num, put, putAddr, qwordsToBytes, PhysicalTableMemory } from '@viommu/core';
export * from './formats/descriptors.js';
export * from './formats/entries.js';
export * from './formats/fault.js';
export * from './pgtable/pte.js';
export * from './pgtable/table.js';
export * from './hw/regs.js';
export * from './hw/vtd.js';
export * from './driver/device.js';
export * from './driver/domains.js';
export * from './driver/driver.js';
