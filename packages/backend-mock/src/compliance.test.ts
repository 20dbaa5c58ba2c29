// The compliance suite on the kernel selftest mock driver (re-exported here from @viommu/core),
// through the kit @viommu/backend-compliance ships for it (./compliance-kit.ts).
import { runComplianceSuite } from '@viommu/backend-compliance';
import { complianceKits } from './compliance-kit.js';

for (const kit of complianceKits) runComplianceSuite(kit);
