// Every TEST_F of tools/testing/selftests/iommu/iommufd.c (Linux 7.2.13), expanded per variant:
// 246 scenarios, the count the kernel's own harness reports.
import { dirtyCases } from './cases/dirty.js';
import { ioasCases } from './cases/ioas.js';
import { changeProcessCases, iommufdCases } from './cases/iommufd.js';
import { mockDomainCases } from './cases/mock-domain.js';
import { pasidCases } from './cases/pasid.js';
import { vfioCompatCases } from './cases/vfio-compat.js';
import { viommuCases } from './cases/viommu.js';
import type { Scenario } from './harness.js';
import { NO_FORK } from './utils.js';

export const scenarios: readonly Scenario[] = [
  ...iommufdCases,
  ...changeProcessCases,
  ...ioasCases,
  ...mockDomainCases,
  ...dirtyCases,
  ...vfioCompatCases,
  ...viommuCases,
  ...pasidCases,
];

/** The cases the kernel itself skips by design (SKIP() in the C file): the no_viommu variant's. */
export const kernelSkips: ReadonlySet<string> = new Set([
  'iommufd_viommu.no_viommu.viommu_alloc_nested_iopf',
  'iommufd_viommu.no_viommu.viommu_alloc_with_data',
  'iommufd_viommu.no_viommu.vdevice_cache',
  'iommufd_viommu.no_viommu.hw_queue',
  'iommufd_viommu.no_viommu.vdevice_tombstone',
]);

/**
 * Cases that skip on every target because the Process contract lacks what they need: none now.
 * (The fork cases need the contract's optional fork/exit/pipe/eventfd/procStatus and skip at run
 * time on a target without them, as the MAP_FILE cases do without memfd_create.)
 */
export const contractSkips: ReadonlyMap<string, string> = new Map<string, string>();

/**
 * The cases that fork (they need the Process contract's optional fork/exit, and procStatus or
 * pipe/eventfd): they pass on the simulator and skip at run time on a target without fork. A
 * runner for such a target may hand this map over as `pending` so they do not run at all.
 */
export const forkCases: ReadonlyMap<string, string> = new Map([
  ...['account_none', 'account_user', 'account_mm'].map((v) => [`change_process.${v}.basic`, NO_FORK] as const),
  ...['no_domain', 'mock_domain', 'two_mock_domain', 'mock_domain_limit'].flatMap((v) => [
    [`iommufd_ioas.${v}.fork_gone`, NO_FORK] as const,
    [`iommufd_ioas.${v}.fork_present`, NO_FORK] as const,
  ]),
]);
