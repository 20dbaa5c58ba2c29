// The compliance kit of the selftest mock driver (@viommu/backend-mock/compliance-kit). The kit
// itself lives in @viommu/backend-compliance (`selftestMockKit`, the reference kit for backend
// authors, which that package's own tests run); this entry gives the mock the same shape as every
// other backend, so runners (`viommu conformance`) take `complianceKits` from each backend alike.
import { selftestMockKit, type AnyComplianceKit } from '@viommu/backend-compliance/testing';

export { devCacheHolds, selftestMockKit } from '@viommu/backend-compliance/testing';

/** Every kit the backend proves itself with, in the order its tests and `viommu conformance` run them. */
export const complianceKits: readonly AnyComplianceKit[] = [selftestMockKit];
