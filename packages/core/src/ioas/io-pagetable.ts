// The IOAS's io page table (the kernel's io_pagetable.c with the parts of pages.c it drives, in our
// words): the areas that map IOVA ranges to pages of user memory or of a memfd, the reserved and
// allowed IOVA ranges, the attached paging domains (kept equal to the areas), the in-kernel
// accesses, and the pinning of pages with its memlock accounting.
//
// Split with the ioctl handlers (ioas.c's iommufd_ioas_* in the kernel): the handler checks flags,
// __reserved, `>= ULONG_MAX` and the R/W flag, looks the IOAS up, converts flags to prot, and writes
// results back. Everything from the iopt_* call inward is here, with the kernel's errnos in the
// kernel's order: mapUser = iopt_map_user_pages, mapFile = iopt_map_file_pages (after the handler
// resolved the fd: EBADF is the handler's), getPages + mapPages = iopt_get_pages + iopt_map_pages
// (COPY looks the destination up in between), unmap = iopt_unmap_iova, unmapAll = iopt_unmap_all
// (the handler turns "nothing unmapped" into ENOENT for the ranged form).
//
// Areas are extents (never per page), rows of a struct-of-arrays store (area-store.ts, ADR 0191)
// named by integer handles and kept sorted by IOVA (they never overlap). The API speaks bigint IOVAs
// (the space is the full 64 bits); the store keeps them as numbers where exact.
// The model is single-threaded, so the kernel's "area still being created" EBUSY cannot be seen
// from outside; `preventAccess` is visible to accesses inside their unmap callback, as in the kernel.

import { SystemError } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import type { MemFile } from '../host/mem-file.js';
import { FRAME_SHIFT, FRAME_SIZE } from '../host/physical-memory.js';
import { IOMMU_READ, IOMMU_WRITE, type PagingDomain } from '../driver/domain.js';
import { accountModeFor, charge, uncharge } from './accounting.js';
import type { DmaBuf } from './dmabuf.js';
import { AreaStore } from './area-store.js';
import { KIND_FILE, KIND_USER, Pages } from './pages.js';
import { lowestBit, roundupPowOfTwo, spans } from './spans.js';
import {
  ACCESS_RW_WRITE,
  AccountMode,
  ULONG_MAX,
  type AreaInfo,
  type IoasAccess,
  type IovaRange,
  type MapOptions,
  type MapSourceOptions,
  type PinOwner,
} from './types.js';

const PAGE = BigInt(FRAME_SIZE);
/** SIZE_MAX - PAGE_SIZE: the longest mapping iopt_alloc_pages accepts. */
const MAX_LENGTH = ULONG_MAX - PAGE;
/** HPAGE_SIZE on x86-64 with THP: the cap on automatic IOVA alignment. */
const HPAGE_SIZE = 2n * 1024n * 1024n;
/** The empty list every fresh io page table shares (lists are replaced, never mutated). */
const NONE: readonly never[] = Object.freeze([]);

/** How often UNMAP asks accesses to let go of an area before giving up with EDEADLK. */
const UNMAP_TRIES = 100;

/** One element of a pages list: `length` bytes of `pages` from byte `startByte`. */
interface PagesPiece {
  readonly pages: Pages;
  readonly startByte: bigint;
  readonly length: bigint;
}

/** The pages behind an IOVA range of a source IOAS, taken by getPages for COPY. */
export class PagesList {
  constructor(
    readonly pieces: readonly PagesPiece[],
    /** Bytes covered (the requested length). */
    readonly length: bigint,
  ) {}

  /** Drops the list (iopt_free_pages_list). Pins are held by areas, not lists, so nothing else happens. */
  release(): void {}
}

/** Owner of reserved ranges: a device (its reserved regions), a domain (outside its aperture), null for IOMMU_TEST_OP_ADD_RESERVED (as the kernel), or whatever core picks. */
export type ReservedOwner = object | null;

interface Reserved extends IovaRange {
  readonly owner: ReservedOwner;
}

/** What UNMAP had removed before it failed (the kernel keeps those unmapped). */
export class UnmapError extends SystemError {
  constructor(
    code: 'EBUSY' | 'ENOENT' | 'EDEADLK',
    readonly unmapped: bigint,
    detail: string,
  ) {
    super(code, 'ioctl', detail);
  }
}

export class IoPagetable {
  /** The areas (rows, by handle) in IOVA order. */
  private readonly rows = new AreaStore();
  // The lists below are replaced, never mutated (they change rarely), so a fresh IOAS shares one
  // empty array for all of them instead of allocating four (tables can hold 100 k IOASes, issue 3).
  private reserved: readonly Reserved[] = NONE;
  private allowed: readonly IovaRange[] = NONE;
  private domainList: readonly PagingDomain[] = NONE;
  private accessList: readonly IoasAccess[] = NONE;
  private iovaAlignment = 1;
  private disableLargePages = false;

  /** The IOAS alignment (iova_alignment): 1 when fresh, raised by domains, accesses and HUGE_PAGES off. */
  get alignment(): number {
    return this.iovaAlignment;
  }

  /** HUGE_PAGES option: false after setHugePages(false). */
  get hugePages(): boolean {
    return !this.disableLargePages;
  }

  // --- mapping -------------------------------------------------------------------------------

  /**
   * IOAS_MAP: maps [userVa, userVa + length) of `mm` (normally opts.owner.mm) at opts.iova
   * (FIXED_IOVA) or at an IOVA chosen as spec §5.5.1, and returns the IOVA. Pins and fills every
   * attached domain now when there is one (nothing is pinned otherwise). Errors in order: EOVERFLOW
   * (userVa + length wraps), EINVAL (length 0 or > SIZE_MAX - PAGE_SIZE), EINVAL (length not
   * aligned), placement (EINVAL/EOVERFLOW/EEXIST fixed, EOVERFLOW/EINVAL/ENOSPC automatic), EINVAL
   * (sub-page offset not aligned), then pinning (EFAULT, ENOMEM for memlock) or the domain's own
   * error; a failed map leaves nothing behind.
   */
  mapUser(mm: AddressSpace, userVa: bigint, length: bigint, opts: MapSourceOptions): bigint {
    if (userVa + length > ULONG_MAX) throw err('EOVERFLOW', 'user_va + length overflows');
    return this.mapInline(KIND_USER, mm, userVa, length, opts);
  }

  /**
   * IOAS_MAP_FILE: maps [start, start + length) of `file`. EINVAL (length 0), EOVERFLOW
   * (start + length - 1 wraps), EBADF (`file` undefined: the fd is not an open file; the handler
   * resolves it but the kernel checks it only here), then as mapUser. A file that is not shmem, or a range past its
   * size, fails with EINVAL when its pages are pinned (now if a domain is attached, else later).
   */
  mapFile(file: MemFile | undefined, start: bigint, length: bigint, opts: MapSourceOptions): bigint {
    if (length === 0n) throw err('EINVAL', 'length is 0');
    if (start + length - 1n > ULONG_MAX) throw err('EOVERFLOW', 'start + length overflows');
    if (!file) throw err('EBADF', 'fd is not open');
    return this.mapInline(KIND_FILE, file, start, length, opts);
  }

  /**
   * IOAS_MAP_FILE of a dma-buf (iopt_alloc_dmabuf_pages): [start, start + length) must lie inside
   * the buffer (EINVAL, checked now, domain or not), then ENODEV while the exporter has it revoked,
   * then as mapUser from the length alignment on. Nothing is pinned or charged; the area cannot be
   * cut (cutIova EOPNOTSUPP), pinned or read by accesses (EINVAL), nor moved by CHANGE_PROCESS.
   */
  mapDmabuf(buf: DmaBuf, start: bigint, length: bigint, opts: MapSourceOptions): bigint {
    if (length === 0n) throw err('EINVAL', 'length is 0');
    if (start + length - 1n > ULONG_MAX) throw err('EOVERFLOW', 'start + length overflows');
    if (BigInt(buf.size) <= start + length - 1n) throw err('EINVAL', 'range is past the end of the dma-buf');
    const startByte = start % PAGE;
    checkMapLength(length);
    const npages = Number((length + startByte + PAGE - 1n) / PAGE);
    // Never charged to RLIMIT_MEMLOCK; the constructor attaches to the exporter (ENODEV if revoked).
    const pages = new Pages({ kind: 'dmabuf', buf, base: start - startByte }, npages, (opts.prot & IOMMU_WRITE) !== 0, opts.owner, AccountMode.NONE);
    return this.mapPieces([{ pages, startByte, length }], length, opts, start);
  }

  /**
   * COPY, source side (iopt_get_pages): takes the pages behind [iova, iova + length - 1], which
   * must be contiguously covered by areas. EINVAL (length 0), EOVERFLOW, ENOENT (not covered).
   */
  getPages(iova: bigint, length: bigint): PagesList {
    if (length === 0n) throw err('EINVAL', 'length is 0');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    const pieces: PagesPiece[] = [];
    const done = this.forEachContig(iova, last, (h, cur, pieceLast) => {
      // Both IOASes will share these pages: the source rows hold them as an object from now on.
      pieces.push({ pages: this.rows.share(h).pages, startByte: this.rows.startByte(h, cur), length: pieceLast - cur + 1n });
    });
    if (!done) throw err('ENOENT', 'source range is not fully mapped');
    return new PagesList(pieces, length);
  }

  /**
   * COPY, destination side (iopt_map_pages): maps the pages of `list` (one area per source piece,
   * sharing the source's pins: nothing is re-pinned or re-charged). As mapUser's checks from the
   * length alignment on, with EPERM for WRITE on pages mapped read-only. Returns the IOVA.
   */
  mapPages(list: PagesList, opts: MapOptions): bigint {
    const first = list.pieces[0]!;
    return this.mapPieces(list.pieces, list.length, opts, first.pages.source.base + first.startByte);
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
   * Areas go one by one in ascending order; on an error the ones already removed stay removed and
   * the UnmapError says how many bytes went. EINVAL (length 0), EOVERFLOW, EBUSY (area locked by a
   * HW queue), ENOENT (area sticks out), EDEADLK (an access keeps its pins after 100
   * notifications). Returns the bytes unmapped (0 when nothing was there: the handler turns that
   * into ENOENT).
   */
  unmap(iova: bigint, length: bigint): bigint {
    if (length === 0n) throw err('EINVAL', 'length is 0');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    return this.unmapRange(iova, last);
  }

  /** IOAS_UNMAP of everything (iova 0, length U64_MAX): succeeds with 0 on an empty IOAS. */
  unmapAll(): bigint {
    return this.unmapRange(0n, ULONG_MAX);
  }

  /**
   * iopt_cut_iova, for the VFIO type1 compatibility UNMAP_DMA (with huge pages off): splits the
   * area holding each IOVA so that the IOVA becomes the last byte of an area, the two halves
   * sharing the pages. Stops at the first error, keeping earlier cuts: EBUSY (area being unmapped),
   * EOPNOTSUPP (a dma-buf area), EINVAL (cut not aligned, area pinned by an access, or filled into domains while huge pages are
   * on).
   */
  cutIova(iovas: readonly bigint[]): void {
    for (const iova of iovas) {
      const pos = this.firstAreaIn(iova, iova);
      if (pos >= 0) this.splitArea(pos, iova);
    }
  }

  // --- IOVA space ----------------------------------------------------------------------------

  /** IOVA_RANGES: the holes between reserved ranges over [0, ULONG_MAX], ascending. */
  iovaRanges(): IovaRange[] {
    return spans(this.reserved, 0n, ULONG_MAX)
      .filter((s) => !s.used)
      .map(({ start, last }) => ({ start, last }));
  }

  /**
   * ALLOW_IOVAS: replaces the allowed list (empty clears it). The handler has validated each entry
   * (EFAULT, start >= last, overlaps); EADDRINUSE if one intersects a reserved range, keeping the
   * old list.
   */
  allowIovas(ranges: readonly IovaRange[]): void {
    const sorted = [...ranges].sort((a, b) => cmp(a.start, b.start)).map(({ start, last }) => ({ start, last }));
    for (const r of sorted) {
      if (this.reserved.some((x) => overlaps(x, r.start, r.last))) throw err('EADDRINUSE', 'allowed range intersects a reserved range');
    }
    this.allowed = orNone(sorted);
  }

  /** The allowed list, ascending. */
  allowedIovas(): IovaRange[] {
    return this.allowed.map(({ start, last }) => ({ start, last }));
  }

  /** Reserved ranges, ascending by start (with their owners), for IOVA_RANGES-like views and checks. */
  reservedRanges(): readonly (IovaRange & { owner: ReservedOwner })[] {
    return this.reserved;
  }

  /**
   * Reserves [start, last] for `owner` (iopt_reserve_iova): EADDRINUSE if an area or an allowed
   * range intersects it. Used for device reserved regions (IOMMU_TEST_OP_ADD_RESERVED too).
   */
  reserve(start: bigint, last: bigint, owner: ReservedOwner): void {
    if (this.firstAreaIn(start, last) >= 0 || this.allowed.some((a) => overlaps(a, start, last))) {
      throw err('EADDRINUSE', `[0x${start.toString(16)}, 0x${last.toString(16)}] is mapped or allowed`);
    }
    const r: Reserved = { start, last, owner };
    let i = this.reserved.length;
    while (i > 0 && this.reserved[i - 1]!.start > start) i--;
    this.reserved = [...this.reserved.slice(0, i), r, ...this.reserved.slice(i)];
  }

  /**
   * Reserves every range of `regions` for `owner`, all or nothing
   * (iopt_table_enforce_dev_resv_regions without listing the regions, which is the caller's).
   */
  reserveAll(regions: readonly IovaRange[], owner: ReservedOwner): void {
    try {
      for (const r of regions) this.reserve(r.start, r.last, owner);
    } catch (e) {
      this.unreserve(owner);
      throw e;
    }
  }

  /** Drops every reserved range of `owner`. */
  unreserve(owner: ReservedOwner): void {
    if (this.reserved.some((r) => r.owner === owner)) this.reserved = orNone(this.reserved.filter((r) => r.owner !== owner));
  }

  /**
   * OPTION HUGE_PAGES. Disabling: EINVAL when the IOAS has both a domain and an area, EADDRINUSE
   * when an area is not PAGE_SIZE aligned. Enabling never fails.
   */
  setHugePages(enabled: boolean): void {
    if (enabled) {
      this.disableLargePages = false;
      this.recalculateAlignment();
      return;
    }
    if (this.disableLargePages) return;
    if (this.domainList.length && this.rows.count) throw err('EINVAL', 'domains already hold mappings');
    this.disableLargePages = true;
    try {
      this.recalculateAlignment();
    } catch (e) {
      this.disableLargePages = false;
      throw e;
    }
  }

  // --- domains -------------------------------------------------------------------------------

  /**
   * Attaches a paging domain (iopt_table_add_domain): raises the alignment to the domain's
   * smallest page size (EINVAL above PAGE_SIZE, EADDRINUSE if an area does not conform), reserves
   * everything outside its aperture (EADDRINUSE on areas or allowed ranges there), then pins and
   * maps every area into it. On failure nothing changed.
   */
  attachDomain(domain: PagingDomain): void {
    if (this.domainList.includes(domain)) throw err('EEXIST', 'domain already attached');
    const g = domain.geometry;
    const smallest = Number(lowestBit(g.pgsizeBitmap));
    const newAlignment = Math.max(smallest, this.iovaAlignment);
    if (newAlignment > FRAME_SIZE) throw err('EINVAL', 'domain page size above PAGE_SIZE');
    if (newAlignment !== this.iovaAlignment) this.checkAlignment(newAlignment);
    try {
      if (g.apertureStart !== 0n) this.reserve(0n, g.apertureStart - 1n, domain);
      if (g.apertureLast !== ULONG_MAX) this.reserve(g.apertureLast + 1n, ULONG_MAX, domain);
      this.fillDomain(domain);
    } catch (e) {
      this.unreserve(domain);
      throw e;
    }
    this.iovaAlignment = newAlignment;
    this.domainList = [...this.domainList, domain];
  }

  /** Detaches a domain: unmaps every area from it, drops its reserved ranges, recomputes the alignment. */
  detachDomain(domain: PagingDomain): void {
    if (!this.domainList.includes(domain)) return;
    this.domainList = without(this.domainList, domain);
    const lastOne = this.domainList.length === 0;
    const rows = this.rows;
    for (let i = 0; i < rows.count; i++) {
      const h = rows.at(i);
      if (!rows.revoked(h)) domain.unmap(rows.iova(h), rows.length(h));
      if (lastOne && rows.filled(h)) rows.unfill(h);
    }
    this.unreserve(domain);
    this.recalculateAlignment();
  }

  /** The attached domains, in attach order. */
  domains(): readonly PagingDomain[] {
    return this.domainList;
  }

  // --- accesses ------------------------------------------------------------------------------

  /** Registers an access (iopt_add_access); may raise the alignment (EADDRINUSE if areas do not conform). */
  addAccess(access: IoasAccess): void {
    const before = this.accessList;
    this.accessList = [...before, access];
    try {
      this.recalculateAlignment();
    } catch (e) {
      this.accessList = before;
      throw e;
    }
  }

  /** Unregisters an access (iopt_remove_access); it must have unpinned everything. */
  removeAccess(access: IoasAccess): void {
    if (!this.accessList.includes(access)) return;
    this.accessList = without(this.accessList, access);
    this.recalculateAlignment();
  }

  /** Registered accesses, in registration order. */
  accesses(): readonly IoasAccess[] {
    return this.accessList;
  }

  /**
   * iommufd_access_pin_pages: pins the pages behind [iova, iova + length - 1] for `access` and
   * returns their frame numbers, one per PAGE_SIZE page. EINVAL (an access whose alignment is not
   * PAGE_SIZE, or a non-internal one without an unmap callback), EINVAL (length 0), EOVERFLOW, EINVAL (an
   * area being unmapped, or a piece not page aligned), EPERM (write to a read-only area, or to
   * pages mapped read-only), ENOENT (not covered), pinning errors. Undo with unpinPages with the
   * same iova and length. (ENOENT for an access with no IOAS is the access object's.)
   */
  pinPages(access: IoasAccess, iova: bigint, length: bigint, flags: number): number[] {
    // The kernel's test build (our oracle) refuses pin users that could not honour an unmap.
    if (access.iovaAlignment !== FRAME_SIZE || (!access.internal && !access.unmap)) throw err('EINVAL', 'access cannot pin pages');
    if (length === 0n) throw err('EINVAL', 'length is 0');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    const rows = this.rows;
    const frames: number[] = [];
    const done: [number, number, number][] = [];
    try {
      const covered = this.forEachContig(iova, last, (h, cur, pieceLast, isLastPiece) => {
        if (rows.preventAccess(h) || !this.pieceAligned(h, cur, isLastPiece)) throw err('EINVAL', 'area is being unmapped or piece is not page aligned');
        if (!protAllows(rows.prot(h), flags)) throw err('EPERM', 'area does not allow this access');
        if (flags & ACCESS_RW_WRITE && !rows.writable(h)) throw err('EPERM', 'pages are read-only');
        if (rows.isDmabuf(h)) throw err('EINVAL', 'dma-buf pages cannot be pinned by an access');
        const first = rows.indexOf(h, cur);
        const lastIndex = rows.indexOf(h, pieceLast);
        // Access pins are kept per exact range in the Pages object: the row holds its pages as one.
        const sa = rows.share(h);
        sa.pages.addAccess(first, lastIndex);
        sa.accesses++;
        if (access.internal) sa.locks++;
        done.push([h, first, lastIndex]);
        for (let i = first; i <= lastIndex; i++) frames.push(sa.pages.pinnedFrame(i)!);
      });
      if (!covered) throw err('ENOENT', 'range is not fully mapped');
    } catch (e) {
      for (const [h, first, lastIndex] of done) this.removeAreaAccess(h, first, lastIndex, access.internal);
      throw e;
    }
    return frames;
  }

  /** iommufd_access_unpin_pages: undoes one pinPages of exactly this iova/length. */
  unpinPages(access: IoasAccess, iova: bigint, length: bigint): void {
    if (length === 0n) throw new Error('unpinPages: length 0');
    const last = iova + length - 1n;
    const covered = this.forEachContig(iova, last, (h, cur, pieceLast) => {
      this.removeAreaAccess(h, this.rows.indexOf(h, cur), this.rows.indexOf(h, pieceLast), access.internal);
    });
    if (!covered) throw new Error('unpinPages: range is not covered by areas');
  }

  /**
   * iommufd_access_rw: copies between `data` and the memory behind [iova, iova + data.length - 1]
   * (flags ACCESS_RW_WRITE writes into it). EINVAL (length 0 or an area being unmapped),
   * EOVERFLOW, EPERM, EFAULT/EINVAL (source memory gone), ENOENT (not covered).
   */
  rw(access: IoasAccess, iova: bigint, data: Uint8Array, flags: number): void {
    void access;
    const length = BigInt(data.length);
    if (length === 0n) throw err('EINVAL', 'length is 0');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    const write = (flags & ACCESS_RW_WRITE) !== 0;
    let pos = 0;
    const rows = this.rows;
    const covered = this.forEachContig(iova, last, (h, cur, pieceLast) => {
      if (rows.preventAccess(h)) throw err('EINVAL', 'area is being unmapped');
      if (!protAllows(rows.prot(h), flags)) throw err('EPERM', 'area does not allow this access');
      if (write && !rows.writable(h)) throw err('EPERM', 'pages are read-only');
      if (rows.isDmabuf(h)) throw err('EINVAL', 'dma-buf pages cannot be read by the CPU');
      let byte = Number(rows.startByte(h, cur));
      let left = Number(pieceLast - cur) + 1;
      // CPU copies are rare: read them through the row's pages as an object.
      const pages = rows.share(h).pages;
      const phys = pages.physical;
      while (left > 0) {
        const index = Math.floor(byte / FRAME_SIZE);
        const off = byte % FRAME_SIZE;
        const n = Math.min(FRAME_SIZE - off, left);
        const pa = pages.frameForRw(index, write) * FRAME_SIZE + off;
        if (write) phys.write(pa, data.subarray(pos, pos + n));
        else phys.read(pa, data.subarray(pos, pos + n));
        pos += n;
        byte += n;
        left -= n;
      }
    });
    if (!covered) throw err('ENOENT', 'range is not fully mapped');
  }

  // --- dirty tracking ------------------------------------------------------------------------

  /** iopt_set_dirty_tracking: EOPNOTSUPP without dirty ops; enabling first clears stale dirty bits of every area. */
  setDirtyTracking(domain: PagingDomain, enabled: boolean): void {
    const dirty = domain.dirty;
    if (!dirty) throw err('EOPNOTSUPP', 'domain has no dirty tracking');
    if (enabled) for (let i = 0; i < this.rows.count; i++) dirty.readAndClear(this.rows.iova(this.rows.at(i)), this.rows.length(this.rows.at(i)), false, () => {});
    dirty.setEnabled(enabled);
  }

  /**
   * iopt_read_and_clear_dirty_data: checks the range (EOVERFLOW; EINVAL when iova or the end is
   * not aligned to the IOAS alignment or to pageSize, or pageSize is 0), then reports dirty IOVAs
   * of `domain` inside areas through `mark`, walking areas contiguously from `iova` (a hole ends
   * the walk silently, as the kernel ignores that error). EOPNOTSUPP without dirty ops.
   */
  readAndClearDirty(
    domain: PagingDomain,
    iova: bigint,
    length: bigint,
    pageSize: bigint,
    noClear: boolean,
    mark: (iova: bigint, length: bigint) => void,
  ): void {
    // u64 arithmetic, as the kernel: length 0 makes length - 1 wrap to U64_MAX.
    const last = iova + BigInt.asUintN(64, length - 1n);
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    const align = BigInt(this.iovaAlignment);
    if (iova % align !== 0n || (last + 1n) % align !== 0n) throw err('EINVAL', 'range not aligned to the IOAS');
    if (pageSize === 0n) throw err('EINVAL', 'page_size is 0');
    if (iova % pageSize !== 0n || (last + 1n) % pageSize !== 0n) throw err('EINVAL', 'range not aligned to page_size');
    const dirty = domain.dirty;
    if (!dirty) throw err('EOPNOTSUPP', 'domain has no dirty tracking');
    if (length === 0n) return; // an empty bitmap: nothing to report
    this.forEachContig(iova, last, (_h, cur, pieceLast) => dirty.readAndClear(cur, pieceLast - cur + 1n, noClear, mark));
  }

  // --- accounting and lifetime ---------------------------------------------------------------

  /**
   * IOAS_CHANGE_PROCESS over every IOAS of a context, all or nothing: EINVAL for an area not
   * mapped from a file, ENOMEM if charging `owner` fails. (EBUSY for an area being created cannot
   * happen in a single-threaded model.)
   */
  static changeProcess(tables: readonly IoPagetable[], owner: PinOwner): void {
    // What carries a charge: each shared Pages once (however many areas use it), each inline row.
    const all = new Set<Pages>();
    const inline: [AreaStore, number][] = [];
    for (const t of tables) {
      const rows = t.rows;
      for (let i = 0; i < rows.count; i++) {
        const h = rows.at(i);
        if (!rows.isFile(h)) throw err('EINVAL', 'an area is not mapped from a file');
        const sa = rows.shared(h);
        if (sa) all.add(sa.pages);
        else inline.push([rows, h]);
      }
    }
    const moving = new Set([...all].filter((p) => needsChargeUpdate(p.accountMode, p.owner, owner)));
    const movingInline = new Set(inline.filter(([rows, h]) => needsChargeUpdate(rows.accountMode(h), rows.owner(h), owner)));
    const totals = [0, 0, 0];
    for (const p of moving) totals[p.accountMode]! += p.npinned;
    for (const [rows, h] of movingInline) totals[rows.accountMode(h)]! += rows.npinnedInline(h);
    const charged: AccountMode[] = [];
    try {
      for (const mode of [AccountMode.NONE, AccountMode.USER, AccountMode.MM]) {
        if (!totals[mode]) continue;
        charge(owner, mode, totals[mode]!);
        charged.push(mode);
      }
    } catch (e) {
      for (const mode of charged) uncharge(owner, mode, totals[mode]!);
      throw e;
    }
    for (const p of all) {
      if (moving.has(p)) uncharge(p.owner, p.accountMode, p.npinned);
      p.changeOwner(owner);
    }
    for (const row of inline) {
      const [rows, h] = row;
      if (movingInline.has(row)) uncharge(rows.owner(h), rows.accountMode(h), rows.npinnedInline(h));
      rows.changeOwnerInline(h, owner);
    }
  }

  /** Every area, ascending (for the invariant checker, tests and debugging). */
  areas(): AreaInfo[] {
    const rows = this.rows;
    const out: AreaInfo[] = [];
    for (let i = 0; i < rows.count; i++) {
      const h = rows.at(i);
      out.push({ iova: rows.iova(h), last: rows.last(h), prot: rows.prot(h), numAccesses: rows.numAccesses(h), numLocks: rows.numLocks(h) });
    }
    return out;
  }

  /**
   * Throws an Error describing the first broken invariant: areas sorted and disjoint and aligned,
   * reserved ranges clear of areas and allowed ranges, every attached domain translating the
   * areas' IOVAs to the pinned frames, pins matching their users.
   */
  checkInvariants(): void {
    const fail = (what: string): never => {
      throw new Error(`io page table invariant: ${what}`);
    };
    const align = BigInt(this.iovaAlignment);
    const rows = this.rows;
    rows.checkConsistency();
    let prevLast = -1n;
    for (let i = 0; i < rows.count; i++) {
      const h = rows.at(i);
      const iova = rows.iova(h);
      const last = rows.last(h);
      const at = `area 0x${iova.toString(16)}`;
      if (last < iova) fail(`${at} ends before it starts`);
      if (prevLast >= iova) fail(`${at} overlaps the one before`);
      if (iova % align || rows.length(h) % align || BigInt(rows.pageOffset(h)) % align) fail(`${at} not aligned to ${align}`);
      if (this.reserved.some((r) => overlaps(r, iova, last))) fail(`${at} is reserved`);
      if (rows.filled(h) !== this.domainList.length > 0) fail(`${at} filled=${rows.filled(h)} with ${this.domainList.length} domains`);
      if (rows.numLocks(h) > rows.numAccesses(h)) fail('more locks than accesses');
      if (rows.lastIndex(h) !== rows.indexOf(h, last)) fail(`${at}: last index ${rows.lastIndex(h)}, its last byte is in page ${rows.indexOf(h, last)}`);
      prevLast = last;
    }
    for (const r of this.reserved) if (this.allowed.some((x) => overlaps(x, r.start, r.last))) fail('a reserved range is allowed');
    for (let i = 0; i < rows.count; i++) {
      const h = rows.at(i);
      if (!rows.filled(h) || rows.revoked(h)) continue;
      for (let x = rows.firstIndex(h), end = rows.lastIndex(h); x <= end; x++) if (rows.pinnedFrame(h, x) === undefined) fail(`page ${x} of a filled area is not pinned`);
      for (const d of this.domainList) this.checkDomainArea(d, h, fail);
    }
  }

  /** IOAS destroy: unmaps everything (releasing every pin). Domains and accesses should be gone already. */
  destroy(): void {
    for (const d of [...this.domainList]) this.detachDomain(d);
    this.unmapAll();
    this.rows.clear();
    this.reserved = NONE;
    this.allowed = NONE;
  }

  // --- internals -----------------------------------------------------------------------------

  /**
   * MAP and MAP_FILE (iopt_alloc_user_pages / iopt_alloc_file_pages, then iopt_map_pages): one
   * area whose pages stay inline in its row, `start` being the user VA or file offset.
   */
  private mapInline(kind: number, backing: AddressSpace | MemFile, start: bigint, length: bigint, opts: MapSourceOptions): bigint {
    checkMapLength(length);
    const startByte = start % PAGE;
    const iova = this.placeArea(length, opts, start);
    const pageOffset = Number(startByte);
    if (pageOffset % this.iovaAlignment !== 0) throw err('EINVAL', 'sub-page offset not aligned');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    const mode = accountModeFor(opts.owner, opts.rlimitMode);
    const basePage = Number((start - startByte) >> BigInt(FRAME_SHIFT));
    const h = this.rows.addInline(iova, last, opts.prot, pageOffset, kind, backing, basePage, (opts.prot & IOMMU_WRITE) !== 0, opts.owner, mode);
    try {
      this.fillArea(h);
    } catch (e) {
      this.rows.free(h);
      throw e;
    }
    this.insertArea(h);
    return iova;
  }

  /** iopt_map_pages over shared pages (COPY, dma-buf): places the areas, then fills the domains, all or nothing. */
  private mapPieces(pieces: readonly PagesPiece[], length: bigint, opts: MapOptions, hintAddr: bigint): bigint {
    const iova = this.placeArea(length, opts, hintAddr);
    // Build every area before inserting any (the kernel inserts, then removes them on failure).
    const rows = this.rows;
    const built: number[] = [];
    let at = iova;
    try {
      for (const p of pieces) {
        if (opts.prot & IOMMU_WRITE && !p.pages.writable) throw err('EPERM', 'pages were mapped read-only');
        const pageOffset = Number(p.startByte % PAGE);
        if (pageOffset % this.iovaAlignment !== 0) throw err('EINVAL', 'sub-page offset not aligned');
        const last = at + p.length - 1n;
        if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
        const firstIndex = Number(p.startByte / PAGE);
        const lastIndex = Number((p.startByte + p.length - 1n) / PAGE);
        built.push(rows.addShared(at, last, opts.prot, pageOffset, p.pages, firstIndex, lastIndex));
        at += p.length;
      }
    } catch (e) {
      for (const h of built) rows.free(h);
      throw e;
    }
    let filled = 0;
    try {
      for (; filled < built.length; filled++) this.fillArea(built[filled]!);
    } catch (e) {
      for (let i = 0; i < filled; i++) this.unfillArea(built[i]!);
      for (const h of built) rows.free(h);
      throw e;
    }
    for (const h of built) this.insertArea(h);
    return iova;
  }

  /** The IOVA for a new mapping of `length` bytes: fixed (checked) or allocated near `hintAddr`. */
  private placeArea(length: bigint, opts: MapOptions, hintAddr: bigint): bigint {
    const align = BigInt(this.iovaAlignment);
    if (length % align !== 0n || length === 0n) throw err('EINVAL', `length not aligned to ${align}`);
    if (opts.iova === undefined) return this.allocIova(hintAddr, length);
    this.checkIova(opts.iova, length);
    return opts.iova;
  }

  /** iopt_alloc_iova (spec §5.5.1). */
  private allocIova(addr: bigint, length: bigint): bigint {
    const pageOffset = addr % PAGE;
    if (length === 0n || length >= ULONG_MAX / 2n) throw err('EOVERFLOW', 'length too large for automatic IOVA');
    let align = addr === 0n ? roundupPowOfTwo(length) : min(roundupPowOfTwo(length), lowestBit(addr));
    if (align >= HPAGE_SIZE) align = HPAGE_SIZE;
    if (align < BigInt(this.iovaAlignment)) throw err('EINVAL', 'automatic alignment below the IOAS alignment');
    const windowFirst = PAGE;
    const windowLast = ULONG_MAX - PAGE;
    const allowedSpans = this.allowed.length
      ? spans(this.allowed, windowFirst, windowLast).filter((s) => s.used)
      : [{ start: windowFirst, last: windowLast, used: true }];
    for (const w of allowedSpans) {
      const wStart = fitIn(w.start, w.last, length, align, pageOffset);
      if (wStart === undefined) continue;
      const a = this.firstFitInWindow(wStart, w.last, length, align, pageOffset);
      if (a !== undefined) return a;
    }
    throw err('ENOSPC', 'no free IOVA range fits');
  }

  /**
   * Walks the holes of [first, last] not covered by a reserved range or an area, ascending (the
   * kernel's double span), and returns the first IOVA that fits.
   */
  private firstFitInWindow(first: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | undefined {
    const resv = this.reserved;
    const rows = this.rows;
    let ri = 0;
    let ai = rows.lowerBound(first);
    let cur = first;
    for (;;) {
      // Move cur past every range covering it (reserved ranges may overlap each other).
      for (let moved = true; moved; ) {
        moved = false;
        for (; ri < resv.length && resv[ri]!.start <= cur; ri++) {
          if (resv[ri]!.last < cur) continue;
          if (resv[ri]!.last >= last) return undefined;
          cur = resv[ri]!.last + 1n;
          moved = true;
        }
        for (; ai < rows.count && rows.iova(rows.at(ai)) <= cur; ai++) {
          const areaLast = rows.last(rows.at(ai));
          if (areaLast < cur) continue;
          if (areaLast >= last) return undefined;
          cur = areaLast + 1n;
          moved = true;
        }
      }
      // The hole runs to the next range's start, or to the end of the window.
      let holeLast = last;
      if (ri < resv.length && resv[ri]!.start - 1n < holeLast) holeLast = resv[ri]!.start - 1n;
      if (ai < rows.count && rows.iova(rows.at(ai)) - 1n < holeLast) holeLast = rows.iova(rows.at(ai)) - 1n;
      const a = fitIn(cur, holeLast, length, align, pageOffset);
      if (a !== undefined) return a;
      if (holeLast >= last) return undefined;
      cur = holeLast + 1n;
    }
  }

  /** iopt_check_iova for FIXED_IOVA. */
  private checkIova(iova: bigint, length: bigint): void {
    if (iova % BigInt(this.iovaAlignment) !== 0n) throw err('EINVAL', 'iova not aligned');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
    if (this.reserved.some((r) => overlaps(r, iova, last))) throw err('EINVAL', 'iova range is reserved');
    if (this.firstAreaIn(iova, last) >= 0) throw err('EEXIST', 'iova range is already mapped');
  }

  /** Pins an area's pages and maps it into every domain (iopt_area_fill_domains); nothing on failure. */
  private fillArea(h: number): void {
    if (!this.domainList.length) return;
    const rows = this.rows;
    rows.fill(h);
    const mapped: PagingDomain[] = [];
    try {
      for (const d of this.domainList) {
        this.mapAreaInto(d, h);
        mapped.push(d);
      }
    } catch (e) {
      for (const d of mapped) d.unmap(rows.iova(h), rows.length(h));
      rows.unfill(h);
      throw e;
    }
  }

  /** Undoes fillArea. */
  private unfillArea(h: number): void {
    const rows = this.rows;
    // A revoked dma-buf was already unmapped from every domain.
    if (!rows.revoked(h)) for (const d of this.domainList) d.unmap(rows.iova(h), rows.length(h));
    if (rows.filled(h)) rows.unfill(h);
  }

  /** iopt_fill_domain: maps every area into a new domain (pinning them if it is the first); nothing on failure. */
  private fillDomain(domain: PagingDomain): void {
    const first = this.domainList.length === 0;
    const rows = this.rows;
    let done = 0;
    try {
      for (; done < rows.count; done++) {
        const h = rows.at(done);
        if (first) rows.fill(h);
        try {
          this.mapAreaInto(domain, h);
        } catch (e) {
          if (first) rows.unfill(h);
          throw e;
        }
      }
    } catch (e) {
      for (let i = 0; i < done; i++) {
        const h = rows.at(i);
        domain.unmap(rows.iova(h), rows.length(h));
        if (first) rows.unfill(h);
      }
      throw e;
    }
  }

  /**
   * Maps an area's pinned frames into `domain`, one call per physically contiguous chunk (or per
   * page with huge pages disabled, as batch_iommu_map_small does). Unmaps what it mapped on failure.
   */
  private mapAreaInto(domain: PagingDomain, h: number): void {
    const rows = this.rows;
    const areaIova = rows.iova(h);
    const areaLength = rows.length(h);
    const prot = rows.prot(h);
    const areaFirstByte = rows.startByte(h, areaIova);
    const areaLastByte = areaFirstByte + areaLength - 1n;
    let chunkIova = -1n;
    let chunkPa = 0n;
    let chunkLen = 0n;
    const flush = (): void => {
      if (chunkLen === 0n) return;
      if (this.disableLargePages) {
        // Page by page, splitting at PAGE_SIZE boundaries of the physical address.
        let iova = chunkIova;
        let pa = chunkPa;
        let left = chunkLen;
        while (left > 0n) {
          const n = min(left, PAGE - (pa % PAGE));
          domain.map(iova, pa, n, prot);
          iova += n;
          pa += n;
          left -= n;
        }
      } else domain.map(chunkIova, chunkPa, chunkLen, prot);
      chunkLen = 0n;
    };
    try {
      rows.forEachPinnedRun(h, (segStart, segLast, segFrame) => {
        const firstByte = max(BigInt(segStart) * PAGE, areaFirstByte);
        const lastByte = min(BigInt(segLast + 1) * PAGE - 1n, areaLastByte);
        const iova = areaIova + (firstByte - areaFirstByte);
        const pa = BigInt(segFrame) * PAGE + (firstByte - BigInt(segStart) * PAGE);
        const len = lastByte - firstByte + 1n;
        if (chunkLen && chunkIova + chunkLen === iova && chunkPa + chunkLen === pa) chunkLen += len;
        else {
          flush();
          chunkIova = iova;
          chunkPa = pa;
          chunkLen = len;
        }
      });
      flush();
    } catch (e) {
      domain.unmap(areaIova, areaLength);
      throw e;
    }
  }

  private checkDomainArea(domain: PagingDomain, h: number, fail: (what: string) => never): void {
    const rows = this.rows;
    const length = rows.length(h);
    const areaLast = rows.last(h);
    // Check the first and last byte of every page-sized step; bounded so huge areas stay cheap.
    const step = length > 4096n * PAGE ? length / 4096n : BigInt(this.iovaAlignment < FRAME_SIZE ? this.iovaAlignment : FRAME_SIZE);
    for (let iova = rows.iova(h); iova <= areaLast; iova += step) {
      const byte = rows.startByte(h, iova);
      const frame = rows.pinnedFrame(h, Number(byte / PAGE));
      const want = BigInt(frame ?? 0) * PAGE + (byte % PAGE);
      const got = domain.iovaToPhys(iova);
      if (got !== want) fail(`domain maps 0x${iova.toString(16)} to ${got === undefined ? 'nothing' : `0x${got.toString(16)}`}, want 0x${want.toString(16)}`);
    }
  }

  /**
   * iopt_unmap_iova_range. Areas removed in a row leave the order in one move, so unmapping
   * everything is linear.
   */
  private unmapRange(first: bigint, last: bigint): bigint {
    const rows = this.rows;
    let start = first;
    let unmapped = 0n;
    let tries = 0;
    for (;;) {
      const runStart = rows.lowerBound(start);
      let i = runStart;
      let failure: UnmapError | undefined;
      let busy = -1;
      let done = false;
      for (;;) {
        if (i >= rows.count) {
          done = true;
          break;
        }
        const h = rows.at(i);
        const iova = rows.iova(h);
        if (iova > last) {
          done = true;
          break;
        }
        if (rows.numLocks(h)) {
          failure = new UnmapError('EBUSY', 0n, 'area is locked by a HW queue');
          break;
        }
        const areaLast = rows.last(h);
        if (iova < start || areaLast > last) {
          failure = new UnmapError('ENOENT', 0n, 'area extends outside the range');
          break;
        }
        if (iova !== start) tries = 0;
        if (rows.numAccesses(h)) {
          busy = h;
          break;
        }
        this.unfillArea(h);
        rows.untrack(h);
        unmapped += areaLast - iova + 1n;
        i++;
        if (areaLast >= last) {
          done = true;
          break;
        }
        start = areaLast + 1n;
      }
      if (i > runStart) rows.removeAt(runStart, i - runStart);
      if (failure) throw new UnmapError(failure.code as 'EBUSY' | 'ENOENT', unmapped, failure.detail ?? '');
      if (done || busy < 0) return unmapped;
      // Ask every (non-internal) access to let go of the area, then look again.
      const busyIova = rows.iova(busy);
      const busyLength = rows.length(busy);
      start = busyIova;
      rows.setPreventAccess(busy, true);
      for (const acc of this.accessList) if (!acc.internal) acc.unmap?.(busyIova, busyLength);
      if (++tries > UNMAP_TRIES) throw new UnmapError('EDEADLK', unmapped, 'an access does not release its pages');
    }
  }

  private removeAreaAccess(h: number, first: number, lastIndex: number, internal: boolean): void {
    // Only shared rows have accesses (pinPages shares the row first).
    const sa = this.rows.shared(h)!;
    sa.pages.removeAccess(first, lastIndex);
    sa.accesses--;
    if (internal) sa.locks--;
  }

  /** iopt_area_split: `iova` becomes the last byte of the left half. */
  private splitArea(pos: number, iova: bigint): void {
    const rows = this.rows;
    const h = rows.at(pos);
    const areaIova = rows.iova(h);
    const areaLast = rows.last(h);
    if (iova === areaIova || iova === areaLast) return;
    if (rows.preventAccess(h)) throw err('EBUSY', 'area is being unmapped');
    // Domains track dma-buf areas whole, for revocation.
    if (rows.isDmabuf(h)) throw err('EOPNOTSUPP', 'a dma-buf area cannot be split');
    const align = BigInt(this.iovaAlignment);
    const rightStart = iova + 1n;
    if (rightStart % align !== 0n || rows.startByte(h, rightStart) % align !== 0n) throw err('EINVAL', 'cut not aligned');
    if (rows.numAccesses(h)) throw err('EINVAL', 'an access pinned the area');
    const filled = rows.filled(h);
    if (filled && !this.disableLargePages) throw err('EINVAL', 'domains may hold the area in large pages');
    // The halves share the pages: the row holds them as an object first.
    const whole = rows.share(h);
    const prot = rows.prot(h);
    const leftByte = rows.startByte(h, areaIova);
    const rightByte = rows.startByte(h, rightStart);
    const leftLastIndex = Number(rows.startByte(h, iova) / PAGE);
    const rightFirstIndex = Number(rightByte / PAGE);
    const left = rows.addShared(areaIova, iova, prot, Number(leftByte % PAGE), whole.pages, whole.firstIndex, leftLastIndex);
    const right = rows.addShared(rightStart, areaLast, prot, Number(rightByte % PAGE), whole.pages, rightFirstIndex, whole.lastIndex);
    if (filled) {
      // The halves take over the pin users of the whole (nothing new is pinned); domains keep their mappings.
      whole.pages.addUser(whole.firstIndex, leftLastIndex);
      whole.pages.addUser(rightFirstIndex, whole.lastIndex);
      whole.pages.removeUser(whole.firstIndex, whole.lastIndex);
      rows.setFilled(left, true);
      rows.setFilled(right, true);
    }
    rows.track(left);
    rows.track(right);
    rows.untrack(h);
    rows.replaceAt(pos, left, right);
  }

  /** iopt_check_iova_alignment: every area conforms to a larger alignment, else EADDRINUSE. */
  private checkAlignment(newAlignment: number): void {
    const mask = BigInt(newAlignment) - 1n;
    const rows = this.rows;
    for (let i = 0; i < rows.count; i++) {
      const h = rows.at(i);
      if (rows.iova(h) & mask || rows.length(h) & mask || BigInt(rows.pageOffset(h)) & mask) throw err('EADDRINUSE', `an area is not aligned to ${newAlignment}`);
    }
  }

  /** iopt_calculate_iova_alignment. */
  private recalculateAlignment(): void {
    let next = this.disableLargePages ? FRAME_SIZE : 1;
    for (const d of this.domainList) next = Math.max(next, Number(lowestBit(d.geometry.pgsizeBitmap)));
    for (const a of this.accessList) next = Math.max(next, a.iovaAlignment);
    if (next > this.iovaAlignment) this.checkAlignment(next);
    this.iovaAlignment = next;
  }

  /** Position (in IOVA order) of the lowest area intersecting [first, last], or -1. */
  private firstAreaIn(first: bigint, last: bigint): number {
    const pos = this.rows.lowerBound(first);
    return pos < this.rows.count && this.rows.iova(this.rows.at(pos)) <= last ? pos : -1;
  }

  private insertArea(h: number): void {
    const rows = this.rows;
    // Only a dma-buf needs a way to take the area out of the domains (on revocation).
    if (rows.isDmabuf(h)) {
      rows.track(h, () => {
        if (rows.filled(h)) for (const d of this.domainList) d.unmap(rows.iova(h), rows.length(h));
      });
    } else rows.track(h);
    rows.insertAt(rows.lowerBound(rows.iova(h)), h);
  }

  /**
   * Walks the areas that cover [first, last] without a gap, from the one holding `first`
   * (iopt_for_each_contig_area); `fn` gets each area with the piece of it inside the range.
   * Returns whether the walk reached `last` (iopt_area_contig_done).
   */
  private forEachContig(first: bigint, last: bigint, fn: (h: number, cur: bigint, pieceLast: bigint, isLastPiece: boolean) => void): boolean {
    const rows = this.rows;
    let i = rows.lowerBound(first);
    let cur = first;
    for (;;) {
      if (i >= rows.count) return false;
      const h = rows.at(i);
      if (rows.iova(h) > cur) return false;
      const areaLast = rows.last(h);
      const isLast = last <= areaLast;
      fn(h, cur, isLast ? last : areaLast, isLast);
      if (isLast) return true;
      cur = areaLast + 1n;
      // fn may have changed the areas (an access callback); find the next one afresh.
      i = rows.lowerBound(cur);
    }
  }

  /** iopt_area_contig_is_aligned: each piece starts on a page, and ends on one unless it ends the range. */
  private pieceAligned(h: number, cur: bigint, isLastPiece: boolean): boolean {
    if (this.rows.startByte(h, cur) % PAGE !== 0n) return false;
    return isLastPiece || this.rows.startByte(h, this.rows.last(h)) % PAGE === PAGE - 1n;
  }
}

function orNone<T>(list: readonly T[]): readonly T[] {
  return list.length ? list : NONE;
}

function without<T>(list: readonly T[], item: T): readonly T[] {
  return orNone(list.filter((x) => x !== item));
}

/** __alloc_iova_check_range: the aligned start inside [start, last] that fits `length`, if any. */
function fitIn(start: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | undefined {
  const up = start + align - 1n;
  if (up > ULONG_MAX) return undefined;
  const aligned = (up & ~(align - 1n)) | pageOffset;
  if (aligned >= last || last - aligned < length - 1n) return undefined;
  return aligned;
}

function protAllows(prot: number, flags: number): boolean {
  return (prot & (flags & ACCESS_RW_WRITE ? IOMMU_WRITE : IOMMU_READ)) !== 0;
}

/** CHANGE_PROCESS must move the charge of pages charged in `mode` to `was` when the new owner is `owner`. */
function needsChargeUpdate(mode: AccountMode, was: PinOwner, owner: PinOwner): boolean {
  switch (mode) {
    case AccountMode.NONE:
      return false;
    case AccountMode.MM:
      return was.mm !== owner.mm;
    case AccountMode.USER:
      return was.user !== owner.user || was.mm !== owner.mm;
  }
}

/** iopt_alloc_pages' length check: EINVAL for 0 or more than SIZE_MAX - PAGE_SIZE. */
function checkMapLength(length: bigint): void {
  if (length > MAX_LENGTH || length === 0n) throw err('EINVAL', 'bad length');
}

function overlaps(r: IovaRange, first: bigint, last: bigint): boolean {
  return r.start <= last && r.last >= first;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function err(code: 'EBADF' | 'EINVAL' | 'EOVERFLOW' | 'EEXIST' | 'ENOSPC' | 'ENOENT' | 'EPERM' | 'EADDRINUSE' | 'EOPNOTSUPP' | 'EBUSY', detail: string): SystemError {
  return new SystemError(code, 'ioctl', detail);
}
