// The IOAS's io page table (the kernel's io_pagetable.c with the parts of pages.c it drives, in our
// words): the areas that map IOVA ranges to pages of user memory or of a memfd, the reserved and
// allowed IOVA ranges, the attached paging domains (kept equal to the areas), the in-kernel
// accesses, and the pinning of pages with its memlock accounting.
//
// Split with the ioctl handlers (src/ioas.c's iommufd_ioas_* in the kernel): the handler checks
// flags, __reserved, `>= ULONG_MAX` and the R/W flag, looks the IOAS up, converts flags to prot, and
// writes results back. Everything from the iopt_* call inward is here, with the kernel's errnos in
// the kernel's order: mapUser = iopt_map_user_pages, mapFile = iopt_map_file_pages (after the
// handler resolved the fd: EBADF is the handler's), getPages + mapPages = iopt_get_pages +
// iopt_map_pages (COPY looks the destination up in between), unmap = iopt_unmap_iova,
// unmapAll = iopt_unmap_all (the handler turns "nothing unmapped" into ENOENT for the ranged form).

import { SystemError } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import type { MemFile } from '../host/mem-file.js';
import type { PagingDomain } from '../driver/domain.js';
import type { AreaInfo, IoasAccess, IovaRange, MapOptions, MapSourceOptions, PinOwner } from './types.js';

/** The pages behind an IOVA range of a source IOAS, taken by getPages for COPY. Release it once. */
export interface PagesList {
  /** Bytes covered (the requested length). */
  readonly length: bigint;
  /** Drops the list's references (iopt_free_pages_list); mapPages does not consume it. */
  release(): void;
}

/** Owner of reserved ranges: a device (its reserved regions), a domain (outside its aperture), or anything core picks. */
export type ReservedOwner = object;

export class IoPagetable {
  /** The IOAS alignment (iova_alignment): 1 when fresh, raised by domains, accesses and HUGE_PAGES off. */
  get alignment(): number {
    throw notYet();
  }

  /** HUGE_PAGES option: false after setHugePages(false). */
  get hugePages(): boolean {
    throw notYet();
  }

  // --- mapping -------------------------------------------------------------------------------

  /**
   * IOAS_MAP: maps [userVa, userVa + length) of `mm` (the owner's mm) at opts.iova (FIXED_IOVA) or
   * at an IOVA chosen as spec §5.5.1, and returns the IOVA. Pins and fills every attached domain
   * now when there is one (nothing is pinned otherwise). Errors in order: EOVERFLOW (userVa + length
   * wraps), EINVAL (length 0 or > SIZE_MAX - PAGE_SIZE), EINVAL (length not aligned), placement
   * (EINVAL/EOVERFLOW/EEXIST fixed, EOVERFLOW/EINVAL/ENOSPC automatic), EINVAL (sub-page offset not
   * aligned), then pinning (EFAULT, ENOMEM for memlock) or the domain's own error; a failed map
   * leaves nothing behind.
   */
  mapUser(mm: AddressSpace, userVa: bigint, length: bigint, opts: MapSourceOptions): bigint {
    void [mm, userVa, length, opts];
    throw notYet();
  }

  /**
   * IOAS_MAP_FILE: maps [start, start + length) of `file`. EINVAL (length 0), EOVERFLOW
   * (start + length - 1 wraps), then as mapUser. A file that is not shmem, or a range past its
   * size, fails with EINVAL when its pages are pinned (now if a domain is attached, else later).
   */
  mapFile(file: MemFile, start: bigint, length: bigint, opts: MapSourceOptions): bigint {
    void [file, start, length, opts];
    throw notYet();
  }

  /**
   * COPY, source side (iopt_get_pages): takes the pages behind [iova, iova + length - 1], which
   * must be contiguously covered by areas. EINVAL (length 0), EOVERFLOW, ENOENT (not covered).
   */
  getPages(iova: bigint, length: bigint): PagesList {
    void [iova, length];
    throw notYet();
  }

  /**
   * COPY, destination side (iopt_map_pages): maps the pages of `list` (one area per source piece,
   * sharing the source's pins: nothing is re-pinned or re-charged). EPERM for WRITE on pages
   * mapped read-only, then as mapUser's placement and fill. Returns the IOVA.
   */
  mapPages(list: PagesList, opts: MapOptions): bigint {
    void [list, opts];
    throw notYet();
  }

  /** COPY in one call: getPages on `src` then mapPages here, releasing the list either way. */
  copy(src: IoPagetable, srcIova: bigint, length: bigint, opts: MapOptions): bigint {
    const list = src.getPages(srcIova, length);
    try {
      return this.mapPages(list, opts);
    } finally {
      list.release();
    }
  }

  /**
   * IOAS_UNMAP of [iova, iova + length - 1]: every area touching the range must lie inside it.
   * Areas go one by one in ascending order; on an error the ones already removed stay removed,
   * and `unmapped` in the error (see UnmapError) says how many bytes. EINVAL (length 0),
   * EOVERFLOW, EBUSY (area locked by a HW queue), ENOENT (area sticks out), EDEADLK (an access
   * keeps its pins after 100 notifications). Returns the bytes unmapped (0 when nothing was
   * there: the handler turns that into ENOENT).
   */
  unmap(iova: bigint, length: bigint): bigint {
    void [iova, length];
    throw notYet();
  }

  /** IOAS_UNMAP of everything (iova 0, length U64_MAX): succeeds with 0 on an empty IOAS. */
  unmapAll(): bigint {
    throw notYet();
  }

  // --- IOVA space ----------------------------------------------------------------------------

  /** IOVA_RANGES: the holes between reserved ranges over [0, ULONG_MAX], ascending. */
  iovaRanges(): IovaRange[] {
    throw notYet();
  }

  /**
   * ALLOW_IOVAS: replaces the allowed list (empty clears it). The caller has validated each entry
   * (EFAULT, start >= last, overlaps: the handler's checks); EADDRINUSE if one intersects a
   * reserved range, keeping the old list.
   */
  allowIovas(ranges: readonly IovaRange[]): void {
    void [ranges];
    throw notYet();
  }

  /** The allowed list, ascending. */
  allowedIovas(): IovaRange[] {
    throw notYet();
  }

  /**
   * Reserves [start, last] for `owner` (iopt_reserve_iova): EADDRINUSE if an area or an allowed
   * range intersects it. Used for device reserved regions (IOMMU_TEST_OP_ADD_RESERVED too).
   */
  reserve(start: bigint, last: bigint, owner: ReservedOwner): void {
    void [start, last, owner];
    throw notYet();
  }

  /**
   * Reserves every range of `regions` for `owner`, all or nothing
   * (iopt_table_enforce_dev_resv_regions without the region listing, which is the caller's).
   */
  reserveAll(regions: readonly IovaRange[], owner: ReservedOwner): void {
    void [regions, owner];
    throw notYet();
  }

  /** Drops every reserved range of `owner`. */
  unreserve(owner: ReservedOwner): void {
    void [owner];
    throw notYet();
  }

  /**
   * OPTION HUGE_PAGES. Disabling: EINVAL when the IOAS has both a domain and an area, EADDRINUSE
   * when an area is not PAGE_SIZE aligned. Enabling never fails.
   */
  setHugePages(enabled: boolean): void {
    void [enabled];
    throw notYet();
  }

  // --- domains -------------------------------------------------------------------------------

  /**
   * Attaches a paging domain (iopt_table_add_domain): raises the alignment to the domain's
   * smallest page size (EINVAL above PAGE_SIZE, EADDRINUSE if an area does not conform),
   * reserves everything outside its aperture (EADDRINUSE on areas or allowed ranges there), then
   * pins and maps every area into it. On failure nothing changed.
   */
  attachDomain(domain: PagingDomain): void {
    void [domain];
    throw notYet();
  }

  /** Detaches a domain: unmaps every area from it, drops its reserved ranges, recomputes the alignment. */
  detachDomain(domain: PagingDomain): void {
    void [domain];
    throw notYet();
  }

  /** The attached domains, in attach order. */
  domains(): readonly PagingDomain[] {
    throw notYet();
  }

  // --- accesses ------------------------------------------------------------------------------

  /** Registers an access (iopt_add_access); may raise the alignment (EADDRINUSE if areas do not conform). */
  addAccess(access: IoasAccess): void {
    void [access];
    throw notYet();
  }

  /** Unregisters an access (iopt_remove_access); it must have unpinned everything. */
  removeAccess(access: IoasAccess): void {
    void [access];
    throw notYet();
  }

  /**
   * iommufd_access_pin_pages: pins the pages behind [iova, iova + length - 1] for `access` and
   * returns their frame numbers, one per PAGE_SIZE page. EINVAL (length 0), EOVERFLOW, EINVAL (an
   * area being unmapped, or a piece not page aligned), EPERM (write to a read-only area, or to
   * pages mapped read-only), ENOENT (not covered), pinning errors. Undo with unpinPages with the
   * same iova and length.
   */
  pinPages(access: IoasAccess, iova: bigint, length: bigint, flags: number): number[] {
    void [access, iova, length, flags];
    throw notYet();
  }

  /** iommufd_access_unpin_pages: undoes one pinPages of exactly this iova/length. */
  unpinPages(access: IoasAccess, iova: bigint, length: bigint): void {
    void [access, iova, length];
    throw notYet();
  }

  /**
   * iommufd_access_rw: copies between `data` and the memory behind [iova, iova + data.length - 1]
   * (flags ACCESS_RW_WRITE writes into it). EINVAL (length 0 or an area being unmapped),
   * EOVERFLOW, EPERM, ENOENT (not covered), EFAULT (user memory gone).
   */
  rw(access: IoasAccess, iova: bigint, data: Uint8Array, flags: number): void {
    void [access, iova, data, flags];
    throw notYet();
  }

  // --- dirty tracking ------------------------------------------------------------------------

  /** iopt_set_dirty_tracking: enabling first clears stale dirty bits of every area. */
  setDirtyTracking(domain: PagingDomain, enabled: boolean): void {
    void [domain, enabled];
    throw notYet();
  }

  /**
   * iopt_read_and_clear_dirty_data: checks the range (EOVERFLOW, EINVAL for alignment or page
   * size 0), then reports dirty IOVAs of `domain` inside areas through `mark`.
   */
  readAndClearDirty(
    domain: PagingDomain,
    iova: bigint,
    length: bigint,
    pageSize: bigint,
    noClear: boolean,
    mark: (iova: bigint, length: bigint) => void,
  ): void {
    void [domain, iova, length, pageSize, noClear, mark];
    throw notYet();
  }

  // --- accounting and lifetime ---------------------------------------------------------------

  /**
   * IOAS_CHANGE_PROCESS over every IOAS of a context, all or nothing: EBUSY, EINVAL for an area
   * not mapped from a file, ENOMEM if charging `owner` fails.
   */
  static changeProcess(tables: readonly IoPagetable[], owner: PinOwner): void {
    void [tables, owner];
    throw notYet();
  }

  /** Every area, ascending (for the invariant checker, tests and debugging). */
  areas(): AreaInfo[] {
    throw notYet();
  }

  /**
   * Throws an Error describing the first broken invariant: areas sorted and disjoint, every
   * attached domain translating exactly the areas' IOVAs to the pinned frames, pin counts and
   * charges matching, reserved ranges clear of areas and allowed ranges.
   */
  checkInvariants(): void {
    throw notYet();
  }

  /** IOAS destroy: unmaps everything (releasing every pin). Domains and accesses must be gone. */
  destroy(): void {
    throw notYet();
  }
}

function notYet(): SystemError {
  return new SystemError('ENOSYS', 'ioctl', 'io page table: not implemented yet');
}
