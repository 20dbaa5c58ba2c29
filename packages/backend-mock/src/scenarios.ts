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
 * Cases that skip on every target because the Process contract lacks what they need (fork). The
 * kernel passes them; they run up to the fork. (MAP_FILE cases need memfd_create, which the
 * simulator offers as an extension; on a target without it they skip at run time.)
 */
export const contractSkips: ReadonlyMap<string, string> = new Map([
  ['change_process.account_none.basic', 'fork is not in the Process contract'],
  ['change_process.account_user.basic', 'fork is not in the Process contract'],
  ['change_process.account_mm.basic', 'fork is not in the Process contract'],
  ...['no_domain', 'mock_domain', 'two_mock_domain', 'mock_domain_limit'].flatMap((v) => [
    [`iommufd_ioas.${v}.fork_gone`, 'fork is not in the Process contract'] as const,
    [`iommufd_ioas.${v}.fork_present`, 'fork, pipe2 and eventfd are not in the Process contract'] as const,
  ]),
]);
