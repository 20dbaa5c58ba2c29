// The driver a host gets when created with no options (ADR 0003): the selftest mock of
// src/selftest/, whose IOMMU_TEST_CMD creates the mock devices the kernel selftest flow uses.

import type { DriverV1 } from '../driver/driver.js';
import { mockIommu } from '../selftest/index.js';

export function defaultDriver(): DriverV1 {
  return mockIommu();
}
