// @viommu/backend-compliance: the suites a backend runs from its own tests.
export * from './fail-nth.js';
export * from './flow.js';
export * from './kit.js';
export * from './kits/selftest-mock.js';
export * from './suite.js';
export * from './rig.js';
