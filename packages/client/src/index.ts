// @viommu/client: the VMM-facing API over any Process target.
export * from './device.js';
export * from './errors.js';
export * from './hwpt.js';
export * from './iommufd.js';
export * from './ioas.js';
export * from './object.js';
export * from './queues.js';
export * from './viommu.js';
