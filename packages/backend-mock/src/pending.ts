// Scenarios that cannot pass on the simulator yet because a part of @viommu/core they need has not
// landed. Each is reported skipped with the missing feature named; remove an entry as soon as the
// feature lands (the jest test then runs the case and requires it to pass).

const NO_DMABUF = 'dma-buf export and IOMMU_IOAS_MAP_FILE of a dma-buf are not modelled (ADR 0030)';
const NO_USER_PASID_TABLE =
  'core routes a page request only by its PASID: the mock sets user_pasid_table, so a request for a PASID with nothing attached must go to the nested HWPT on the RID (device.ts routePageRequest)';

export const pendingOnSimulator: ReadonlyMap<string, string> = new Map([
  ...['no_domain', 'mock_domain', 'two_mock_domain', 'mock_domain_limit'].flatMap((v) => [
    [`iommufd_ioas.${v}.dmabuf_simple`, NO_DMABUF] as const,
    [`iommufd_ioas.${v}.dmabuf_revoke`, NO_DMABUF] as const,
  ]),
  ['iommufd_ioas.mock_domain.alloc_hwpt_nested', NO_USER_PASID_TABLE],
  ['iommufd_ioas.two_mock_domain.alloc_hwpt_nested', NO_USER_PASID_TABLE],
  ['iommufd_ioas.mock_domain_limit.alloc_hwpt_nested', NO_USER_PASID_TABLE],
  ['iommufd_viommu.mock_viommu.viommu_alloc_nested_iopf', NO_USER_PASID_TABLE],
  [
    'vfio_compat_mock_domain.Ver1v0.huge_map',
    'core VFIO type1 (v1) compat: VFIO_IOMMU_UNMAP_DMA must cut a larger mapping (type1v2 fails with ENOENT), src/iommufd/vfio-compat.ts',
  ],
]);
