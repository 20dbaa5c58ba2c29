// The compliance suite on the ARM SMMUv3 backend, with and without the Tegra241 CMDQV extension
// (the kits are in ./compliance-kit.ts, which `viommu conformance` runs too).
import { runComplianceSuite } from '@viommu/backend-compliance';
import { complianceKits } from './compliance-kit.js';

for (const kit of complianceKits) runComplianceSuite(kit);
