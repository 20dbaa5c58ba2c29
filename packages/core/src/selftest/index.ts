// The kernel selftest mock (ADR 0003): the mock IOMMU driver createSimHost() registers by default.
export { MockDevice, isMockDriver, type MockDriver, MockHwQueue, MockNestedDomain, MockViommu, mockIommu, type MockIommuOptions } from './mock-driver.js';
export { MockPagingDomain } from './mock-domain.js';
export { SelftestObj, testMemoryLimit } from './test-cmd.js';
