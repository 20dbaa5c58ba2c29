// Scenarios that cannot pass on the simulator yet because a part of @viommu/core they need has not
// landed. Each is reported skipped with the missing feature named; remove an entry as soon as the
// feature lands (the jest test then runs the case and requires it to pass).

const NO_REVOKE = 'dma-buf revocation is not modelled: MAP_FILE must refuse a revoked dma-buf with ENODEV and revoke must unmap it from the domains (ADR 0030)';
const DMABUF_LAZY =
  'MAP_FILE of a dma-buf checks start/length against it at map time even without a domain; the memfd stand-in is only checked when pinned (ADR 0030)';

export const pendingOnSimulator: ReadonlyMap<string, string> = new Map([
  ['iommufd_ioas.no_domain.dmabuf_simple', DMABUF_LAZY],
  ...['no_domain', 'mock_domain', 'two_mock_domain', 'mock_domain_limit'].map((v) => [`iommufd_ioas.${v}.dmabuf_revoke`, NO_REVOKE] as const),
]);
