// The kernel selftest package (ADR 0003, 0031): the mock driver factory (it lives in @viommu/core)
// and the port of tools/testing/selftests/iommu as scenarios over the Process contract.
export { mockIommu, type MockIommuOptions } from '@viommu/core';
export * from './fail-nth.js';
export * from './fixtures.js';
export * from './harness.js';
export * from './pending.js';
export * from './rng.js';
export * from './scenarios.js';
export * from './utils.js';
