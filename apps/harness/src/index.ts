// @viommu/harness: the workload, the conformance runner and the reports, for the `viommu` command
// and for tests.
export * from './workload/guest-memory.js';
export * from './workload/kit.js';
export * from './workload/kits/index.js';
export * from './workload/run.js';
export * from './workload/verify.js';
