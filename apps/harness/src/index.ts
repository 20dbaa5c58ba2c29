// @viommu/harness: the workload, the conformance runner and the reports, for the `viommu` command
// and for tests.
// Guest RAM by IPA is the compliance package's (one class for the kits and the workload).
export { GuestMemory } from '@viommu/backend-compliance/testing';
export * from './workload/kit.js';
export * from './workload/kits/index.js';
export * from './workload/run.js';
export * from './workload/verify.js';
