// The compliance suite on the VT-d backend (the kit is in ./compliance-kit.ts, which `viommu
// conformance` runs too), and a check that the kit's staleness test can fail.

import { describe, expect, it } from '@jest/globals';
import { buildFlow, remapGuestPage, runComplianceSuite, type NoViommuKit } from '@viommu/backend-compliance';
import { complianceKits, vtdKit } from './compliance-kit.js';
import type { vtd } from './driver/driver.js';

for (const kit of complianceKits) runComplianceSuite(kit);

describe('the VT-d kit is a real check', () => {
  it('a unit whose user invalidations never reach the IOTLB keeps the stale page the suite looks for', async () => {
    const broken: NoViommuKit = {
      ...vtdKit,
      createHost() {
        const made = vtdKit.createHost();
        const drv = made.host.driver('dmar0') as ReturnType<typeof vtd>;
        // Reports every entry handled (entryNum left as passed) and flushes nothing.
        drv.invalidateUser = () => undefined;
        return made;
      },
    };
    const f = buildFlow(broken);
    const read = await remapGuestPage(f);
    const entries = vtdKit.invalidation.flushAll(f);
    expect(f.nested.invalidate({ type: vtdKit.invalidation.type, entryLen: vtdKit.invalidation.entryLen, entries })).toEqual({ ok: true, handled: 1 });
    // What the suite's staleness test would catch: the new mapping never shows.
    expect(await read()).toBe('old page');
    f.iommufd.teardown();
  });
});
