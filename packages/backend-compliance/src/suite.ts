// runComplianceSuite(kit): the compliance cases (./cases.ts) registered as jest tests, one describe
// per group, so a backend's `pnpm test` and `viommu conformance` run the same code.

import { describe, it } from '@jest/globals';
import { complianceCases, type SuiteOptions } from './cases.js';
import type { AnyComplianceKit } from './kit.js';

export function runComplianceSuite(kit: AnyComplianceKit, options: SuiteOptions = {}): void {
  const groups = new Map<string, ReturnType<typeof complianceCases>>();
  for (const c of complianceCases(kit, options)) groups.set(c.group, [...(groups.get(c.group) ?? []), c]);
  for (const [group, cases] of groups) {
    describe(group, () => {
      for (const c of cases) it(c.title, () => c.run());
    });
  }
}
