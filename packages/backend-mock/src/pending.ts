// Scenarios that cannot pass on the simulator yet because a part of @viommu/core they need has not
// landed. Each is reported skipped with the missing feature named; remove an entry as soon as the
// feature lands (the jest test then runs the case and requires it to pass).

const NO_DMABUF = 'dma-buf export and IOMMU_IOAS_MAP_FILE of a dma-buf are not modelled (ADR 0030)';

export const pendingOnSimulator: ReadonlyMap<string, string> = new Map([
  ...['no_domain', 'mock_domain', 'two_mock_domain', 'mock_domain_limit'].flatMap((v) => [
    [`iommufd_ioas.${v}.dmabuf_simple`, NO_DMABUF] as const,
    [`iommufd_ioas.${v}.dmabuf_revoke`, NO_DMABUF] as const,
  ]),
  [
    'vfio_compat_mock_domain.Ver1v0.huge_map',
    'core VFIO type1 (v1) compat: VFIO_IOMMU_UNMAP_DMA must cut a larger mapping (type1v2 fails with ENOENT), src/iommufd/vfio-compat.ts',
  ],
]);
