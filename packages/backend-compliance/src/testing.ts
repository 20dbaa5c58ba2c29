// @viommu/backend-compliance/testing: everything but the jest registration: the compliance cases as
// data (complianceCases), their assertions, the kits' types, the flow, the fail_nth sweep, the
// selftest mock's kit and the VMM rig, for runners and benchmarks run by plain node (the main
// entry adds runComplianceSuite, which imports @jest/globals and only loads under jest).
export * from './assert.js';
export * from './cases.js';
export * from './fail-nth.js';
export * from './flow.js';
export * from './kit.js';
export * from './kits/selftest-mock.js';
export * from './rig.js';
