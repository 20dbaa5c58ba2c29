// The compliance suite on the kernel selftest mock driver (re-exported here from @viommu/core),
// through the kit @viommu/backend-compliance ships for it.
import { runComplianceSuite, selftestMockKit } from '@viommu/backend-compliance';

runComplianceSuite(selftestMockKit);
