// What the IOAS's io page table needs from an IOMMU driver's paging domain: the kernel's
// iommu_domain map/unmap ops and geometry, in our words. Backends implement it; the io page table
// (src/ioas/) keeps every attached domain equal to the IOAS's areas.

export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;

export interface DomainGeometry {
  /** First and last IOVA the domain can translate (inclusive). IOVAs outside become reserved in the IOAS. */
  readonly apertureStart: bigint;
  readonly apertureLast: bigint;
  /** Supported page sizes, one bit per size (bit n = 2^n bytes); the lowest sets the IOAS alignment. */
  readonly pgsizeBitmap: bigint;
}

export interface PagingDomain {
  readonly geometry: DomainGeometry;
  /**
   * Maps [iova, iova + length) to physically contiguous [pa, pa + length) with IOMMU_READ/IOMMU_WRITE
   * permissions. iova, pa and length are aligned to the domain's smallest page size. Throws a
   * SystemError (ENOMEM, EINVAL, ...) on failure, having mapped nothing.
   */
  map(iova: bigint, pa: bigint, length: bigint, prot: number): void;
  /** Unmaps [iova, iova + length); returns the bytes unmapped. */
  unmap(iova: bigint, length: bigint): bigint;
  /** The physical address `iova` translates to, or undefined when unmapped. */
  iovaToPhys(iova: bigint): bigint | undefined;
  /** Dirty tracking, when the domain was allocated with it (IOMMU_HWPT_ALLOC_DIRTY_TRACKING). */
  readonly dirty?: DirtyTracking;
}

export interface DirtyTracking {
  setEnabled(enabled: boolean): void;
  readonly enabled: boolean;
  /**
   * Reports each dirty page in [iova, iova + length) by calling `mark(iova, length)`, and clears
   * the dirty state unless `noClear`.
   */
  readAndClear(iova: bigint, length: bigint, noClear: boolean, mark: (iova: bigint, length: bigint) => void): void;
}
