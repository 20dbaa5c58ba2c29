// @viommu/backend-smmuv3-cmdqv: the ARM SMMUv3 hardware model (with NVIDIA Tegra241 CMDQV) and its
// iommufd driver backend.
export * from './formats/bits.js';
export * from './formats/cd.js';
export * from './formats/command.js';
export * from './formats/event.js';
export * from './formats/ste.js';
export * from './pgtable/builder.js';
export * from './pgtable/granule.js';
// Host table memory is core's (shared with the other backends); re-exported under its old name here.
export { PhysicalTableMemory } from '@viommu/core';
export * from './pgtable/s2-domain.js';
export * from './pgtable/walk.js';
export * from './smmu/config.js';
export * from './smmu/queue.js';
export * from './smmu/regs.js';
export * from './smmu/smmu.js';
export * from './smmu/tlb.js';
export * from './testing/rig.js';
export * from './cmdqv/cmdqv.js';
export * from './driver/domains.js';
export * from './driver/driver.js';
export * from './driver/master.js';
export * from './driver/vsmmu.js';
