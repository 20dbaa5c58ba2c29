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
// Areas are extents in an array sorted by IOVA (they never overlap), one object per mapping, never
// per page. IOVAs are bigints (the space is the full 64 bits); page indexes and frames are numbers.
// The model is single-threaded, so the kernel's "area still being created" EBUSY cannot be seen
// from outside; `preventAccess` is visible to accesses inside their unmap callback, as in the kernel.

import { SystemError } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import type { MemFile } from '../host/mem-file.js';
import { FRAME_SIZE } from '../host/physical-memory.js';
import { IOMMU_READ, IOMMU_WRITE, type PagingDomain } from '../driver/domain.js';
import { accountModeFor, charge, uncharge } from './accounting.js';
import type { DmaBuf } from './dmabuf.js';
import { Pages } from './pages.js';
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

// Area.bits: prot in the low byte, then two flags, the sub-page offset (12 bits), HAS_ACCESS. One field
// instead of four: areas can number millions.
const PROT_MASK = 0xff;
const FILLED = 1 << 8;
const PREVENT_ACCESS = 1 << 9;
const OFFSET_SHIFT = 10;
const OFFSET_MASK = 0xfff;
/** Above the offset: set while accessCounts has an entry for the area (most areas never see an access). */
const HAS_ACCESS = 1 << 22;

/** Access counts of the areas that have any, kept aside: two fields less per mapping (ADR 0190). */
interface AccessCounts {
  accesses: number;
  locks: number;
}
const accessCounts = new WeakMap<Area, AccessCounts>();

/** One mapping: IOVAs [iova, last] show bytes of `pages` from startByte(iova) on. */
class Area implements IovaRange {
  private bits: number;

  constructor(
    readonly iova: bigint,
    readonly last: bigint,
    readonly pages: Pages,
    /** Bytes into page firstIndex where the area starts. */
    pageOffset: number,
    readonly firstIndex: number,
    readonly lastIndex: number,
    prot: number,
  ) {
    this.bits = (prot & PROT_MASK) | (pageOffset << OFFSET_SHIFT);
  }

  get prot(): number {
    return this.bits & PROT_MASK;
  }

  /** Accesses that pinned pages through this area. */
  get numAccesses(): number {
    return this.bits & HAS_ACCESS ? accessCounts.get(this)!.accesses : 0;
  }

  /** Those of numAccesses that lock the area (HW queues). */
  get numLocks(): number {
    return this.bits & HAS_ACCESS ? accessCounts.get(this)!.locks : 0;
  }

  /** Counts one more (+1) or one less (-1) access; `internal` ones also lock. */
  countAccess(delta: 1 | -1, internal: boolean): void {
    let c = this.bits & HAS_ACCESS ? accessCounts.get(this)! : undefined;
    if (!c) {
      accessCounts.set(this, (c = { accesses: 0, locks: 0 }));
      this.bits |= HAS_ACCESS;
    }
    c.accesses += delta;
    if (internal) c.locks += delta;
    if (c.accesses === 0 && c.locks === 0) {
      accessCounts.delete(this);
      this.bits &= ~HAS_ACCESS;
    }
  }

  /** Bytes into page firstIndex where the area starts. */
  get pageOffset(): number {
    return (this.bits >>> OFFSET_SHIFT) & OFFSET_MASK;
  }

  /** Set while UNMAP waits for accesses to let go: new pins and rw fail with EINVAL. */
  get preventAccess(): boolean {
    return (this.bits & PREVENT_ACCESS) !== 0;
  }

  set preventAccess(v: boolean) {
    this.bits = v ? this.bits | PREVENT_ACCESS : this.bits & ~PREVENT_ACCESS;
  }

  /** The area's index range is a pin user of its pages because domains are filled with it (storage_domain). */
  get filled(): boolean {
    return (this.bits & FILLED) !== 0;
  }

  set filled(v: boolean) {
    this.bits = v ? this.bits | FILLED : this.bits & ~FILLED;
  }

  get start(): bigint {
    return this.iova;
  }

  get length(): bigint {
    return this.last - this.iova + 1n;
  }

  /** Byte position in the pages of `iova` (iopt_area_start_byte). */
  startByte(iova: bigint): bigint {
    return iova - this.iova + BigInt(this.pageOffset) + BigInt(this.firstIndex) * PAGE;
  }

  indexOf(iova: bigint): number {
    return Number(this.startByte(iova) / PAGE);
  }
}

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
  private readonly areaList: Area[] = [];
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
    const startByte = userVa % PAGE;
    const pages = this.newPages(startByte, length, opts, { kind: 'user', mm, base: userVa - startByte });
    return this.mapPieces([{ pages, startByte, length }], length, opts, userVa);
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
    const startByte = start % PAGE;
    const pages = this.newPages(startByte, length, opts, { kind: 'file', file, base: start - startByte });
    return this.mapPieces([{ pages, startByte, length }], length, opts, start);
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
    const pages = this.newPages(startByte, length, { ...opts, rlimitMode: 0 }, { kind: 'dmabuf', buf, base: start - startByte });
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
    const done = this.forEachContig(iova, last, (area, cur, pieceLast) => {
      pieces.push({ pages: area.pages, startByte: area.startByte(cur), length: pieceLast - cur + 1n });
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
      const area = this.firstAreaIn(iova, iova);
      if (area) this.splitArea(area, iova);
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
    if (this.firstAreaIn(start, last) || this.allowed.some((a) => overlaps(a, start, last))) {
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
    if (this.domainList.length && this.areaList.length) throw err('EINVAL', 'domains already hold mappings');
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
    for (const area of this.areaList) {
      if (!area.pages.revoked) domain.unmap(area.iova, area.length);
      if (lastOne && area.filled) {
        area.filled = false;
        area.pages.removeUser(area.firstIndex, area.lastIndex);
      }
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
    const frames: number[] = [];
    const done: [Area, number, number][] = [];
    try {
      const covered = this.forEachContig(iova, last, (area, cur, pieceLast, isLastPiece) => {
        if (area.preventAccess || !pieceAligned(area, cur, isLastPiece)) throw err('EINVAL', 'area is being unmapped or piece is not page aligned');
        if (!protAllows(area, flags)) throw err('EPERM', 'area does not allow this access');
        if (flags & ACCESS_RW_WRITE && !area.pages.writable) throw err('EPERM', 'pages are read-only');
        if (area.pages.isDmabuf) throw err('EINVAL', 'dma-buf pages cannot be pinned by an access');
        const first = area.indexOf(cur);
        const lastIndex = area.indexOf(pieceLast);
        area.pages.addAccess(first, lastIndex);
        area.countAccess(1, access.internal);
        done.push([area, first, lastIndex]);
        for (let i = first; i <= lastIndex; i++) frames.push(area.pages.pinnedFrame(i)!);
      });
      if (!covered) throw err('ENOENT', 'range is not fully mapped');
    } catch (e) {
      for (const [area, first, lastIndex] of done) this.removeAreaAccess(area, first, lastIndex, access.internal);
      throw e;
    }
    return frames;
  }

  /** iommufd_access_unpin_pages: undoes one pinPages of exactly this iova/length. */
  unpinPages(access: IoasAccess, iova: bigint, length: bigint): void {
    if (length === 0n) throw new Error('unpinPages: length 0');
    const last = iova + length - 1n;
    const covered = this.forEachContig(iova, last, (area, cur, pieceLast) => {
      this.removeAreaAccess(area, area.indexOf(cur), area.indexOf(pieceLast), access.internal);
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
    const covered = this.forEachContig(iova, last, (area, cur, pieceLast) => {
      if (area.preventAccess) throw err('EINVAL', 'area is being unmapped');
      if (!protAllows(area, flags)) throw err('EPERM', 'area does not allow this access');
      if (write && !area.pages.writable) throw err('EPERM', 'pages are read-only');
      if (area.pages.isDmabuf) throw err('EINVAL', 'dma-buf pages cannot be read by the CPU');
      let byte = Number(area.startByte(cur));
      let left = Number(pieceLast - cur) + 1;
      const phys = area.pages.physical;
      while (left > 0) {
        const index = Math.floor(byte / FRAME_SIZE);
        const off = byte % FRAME_SIZE;
        const n = Math.min(FRAME_SIZE - off, left);
        const pa = area.pages.frameForRw(index, write) * FRAME_SIZE + off;
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
    if (enabled) for (const area of this.areaList) dirty.readAndClear(area.iova, area.length, false, () => {});
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
    this.forEachContig(iova, last, (_area, cur, pieceLast) => dirty.readAndClear(cur, pieceLast - cur + 1n, noClear, mark));
  }

  // --- accounting and lifetime ---------------------------------------------------------------

  /**
   * IOAS_CHANGE_PROCESS over every IOAS of a context, all or nothing: EINVAL for an area not
   * mapped from a file, ENOMEM if charging `owner` fails. (EBUSY for an area being created cannot
   * happen in a single-threaded model.)
   */
  static changeProcess(tables: readonly IoPagetable[], owner: PinOwner): void {
    const all = new Set<Pages>();
    for (const t of tables) {
      for (const area of t.areaList) {
        if (!area.pages.isFile) throw err('EINVAL', 'an area is not mapped from a file');
        all.add(area.pages);
      }
    }
    const moving = [...all].filter((p) => needsChargeUpdate(p, owner));
    const totals = [0, 0, 0];
    for (const p of moving) totals[p.accountMode]! += p.npinned;
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
      if (moving.includes(p)) uncharge(p.owner, p.accountMode, p.npinned);
      p.changeOwner(owner);
    }
  }

  /** Every area, ascending (for the invariant checker, tests and debugging). */
  areas(): AreaInfo[] {
    return this.areaList.map((a) => ({ iova: a.iova, last: a.last, prot: a.prot, numAccesses: a.numAccesses, numLocks: a.numLocks }));
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
    let prev: Area | undefined;
    for (const a of this.areaList) {
      if (a.last < a.iova) fail(`area 0x${a.iova.toString(16)} ends before it starts`);
      if (prev && prev.last >= a.iova) fail(`areas 0x${prev.iova.toString(16)} and 0x${a.iova.toString(16)} overlap`);
      if (a.iova % align || a.length % align || BigInt(a.pageOffset) % align) fail(`area 0x${a.iova.toString(16)} not aligned to ${align}`);
      if (this.reserved.some((r) => overlaps(r, a.iova, a.last))) fail(`area 0x${a.iova.toString(16)} is reserved`);
      if (a.filled !== this.domainList.length > 0) fail(`area 0x${a.iova.toString(16)} filled=${a.filled} with ${this.domainList.length} domains`);
      if (a.numLocks > a.numAccesses) fail('more locks than accesses');
      prev = a;
    }
    for (const r of this.reserved) if (this.allowed.some((x) => overlaps(x, r.start, r.last))) fail('a reserved range is allowed');
    for (const a of this.areaList) {
      if (!a.filled || a.pages.revoked) continue;
      for (let i = a.firstIndex; i <= a.lastIndex; i++) if (a.pages.pinnedFrame(i) === undefined) fail(`page ${i} of a filled area is not pinned`);
      for (const d of this.domainList) this.checkDomainArea(d, a, fail);
    }
  }

  /** IOAS destroy: unmaps everything (releasing every pin). Domains and accesses should be gone already. */
  destroy(): void {
    for (const d of [...this.domainList]) this.detachDomain(d);
    this.unmapAll();
    this.reserved = NONE;
    this.allowed = NONE;
  }

  // --- internals -----------------------------------------------------------------------------

  private newPages(startByte: bigint, length: bigint, opts: MapSourceOptions, source: Pages['source']): Pages {
    if (length > MAX_LENGTH || length === 0n) throw err('EINVAL', 'bad length');
    const npages = Number((length + startByte + PAGE - 1n) / PAGE);
    // A dma-buf is never charged to RLIMIT_MEMLOCK.
    const mode = source.kind === 'dmabuf' ? AccountMode.NONE : accountModeFor(opts.owner, opts.rlimitMode);
    return new Pages(source, npages, (opts.prot & IOMMU_WRITE) !== 0, opts.owner, mode);
  }

  /** iopt_map_pages: places the areas (iopt_alloc_area_pages), then fills the domains, all or nothing. */
  private mapPieces(pieces: readonly PagesPiece[], length: bigint, opts: MapOptions, hintAddr: bigint): bigint {
    const align = BigInt(this.iovaAlignment);
    if (length % align !== 0n || length === 0n) throw err('EINVAL', `length not aligned to ${align}`);
    let iova: bigint;
    if (opts.iova === undefined) {
      iova = this.allocIova(hintAddr, length);
    } else {
      iova = opts.iova;
      this.checkIova(iova, length);
    }
    // Build every area before inserting any (the kernel inserts, then removes them on failure).
    const areas: Area[] = [];
    let at = iova;
    for (const p of pieces) {
      if (opts.prot & IOMMU_WRITE && !p.pages.writable) throw err('EPERM', 'pages were mapped read-only');
      const pageOffset = Number(p.startByte % PAGE);
      if (BigInt(pageOffset) % align !== 0n) throw err('EINVAL', 'sub-page offset not aligned');
      const last = at + p.length - 1n;
      if (last > ULONG_MAX) throw err('EOVERFLOW', 'iova + length overflows');
      const firstIndex = Number(p.startByte / PAGE);
      const lastIndex = Number((p.startByte + p.length - 1n) / PAGE);
      areas.push(new Area(at, last, p.pages, pageOffset, firstIndex, lastIndex, opts.prot));
      at += p.length;
    }
    const filled: Area[] = [];
    try {
      for (const a of areas) {
        this.fillArea(a);
        filled.push(a);
      }
    } catch (e) {
      for (const a of filled) this.unfillArea(a);
      throw e;
    }
    for (const a of areas) this.insertArea(a);
    return iova;
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
   * kernel's double span), and returns the first IOVA that fits. Allocates nothing.
   */
  private firstFitInWindow(first: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | undefined {
    const resv = this.reserved;
    const areas = this.areaList;
    let ri = 0;
    let ai = this.lowerBound(first);
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
        for (; ai < areas.length && areas[ai]!.iova <= cur; ai++) {
          if (areas[ai]!.last < cur) continue;
          if (areas[ai]!.last >= last) return undefined;
          cur = areas[ai]!.last + 1n;
          moved = true;
        }
      }
      // The hole runs to the next range's start, or to the end of the window.
      let holeLast = last;
      if (ri < resv.length && resv[ri]!.start - 1n < holeLast) holeLast = resv[ri]!.start - 1n;
      if (ai < areas.length && areas[ai]!.iova - 1n < holeLast) holeLast = areas[ai]!.iova - 1n;
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
    if (this.firstAreaIn(iova, last)) throw err('EEXIST', 'iova range is already mapped');
  }

  /** Pins an area's pages and maps it into every domain (iopt_area_fill_domains); nothing on failure. */
  private fillArea(area: Area): void {
    if (!this.domainList.length) return;
    area.pages.addUser(area.firstIndex, area.lastIndex);
    area.filled = true;
    const mapped: PagingDomain[] = [];
    try {
      for (const d of this.domainList) {
        this.mapAreaInto(d, area);
        mapped.push(d);
      }
    } catch (e) {
      for (const d of mapped) d.unmap(area.iova, area.length);
      area.filled = false;
      area.pages.removeUser(area.firstIndex, area.lastIndex);
      throw e;
    }
  }

  /** Undoes fillArea. */
  private unfillArea(area: Area): void {
    // A revoked dma-buf was already unmapped from every domain.
    if (!area.pages.revoked) for (const d of this.domainList) d.unmap(area.iova, area.length);
    if (area.filled) {
      area.filled = false;
      area.pages.removeUser(area.firstIndex, area.lastIndex);
    }
  }

  /** iopt_fill_domain: maps every area into a new domain (pinning them if it is the first); nothing on failure. */
  private fillDomain(domain: PagingDomain): void {
    const first = this.domainList.length === 0;
    const done: Area[] = [];
    try {
      for (const area of this.areaList) {
        if (first) {
          area.pages.addUser(area.firstIndex, area.lastIndex);
          area.filled = true;
        }
        try {
          this.mapAreaInto(domain, area);
        } catch (e) {
          if (first) {
            area.filled = false;
            area.pages.removeUser(area.firstIndex, area.lastIndex);
          }
          throw e;
        }
        done.push(area);
      }
    } catch (e) {
      for (const area of done) {
        domain.unmap(area.iova, area.length);
        if (first) {
          area.filled = false;
          area.pages.removeUser(area.firstIndex, area.lastIndex);
        }
      }
      throw e;
    }
  }

  /**
   * Maps an area's pinned frames into `domain`, one call per physically contiguous chunk (or per
   * page with huge pages disabled, as batch_iommu_map_small does). Unmaps what it mapped on failure.
   */
  private mapAreaInto(domain: PagingDomain, area: Area): void {
    const pages = area.pages;
    const areaFirstByte = area.startByte(area.iova);
    const areaLastByte = areaFirstByte + area.length - 1n;
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
          domain.map(iova, pa, n, area.prot);
          iova += n;
          pa += n;
          left -= n;
        }
      } else domain.map(chunkIova, chunkPa, chunkLen, area.prot);
      chunkLen = 0n;
    };
    try {
      const count = pages.segmentCount();
      for (let i = pages.segmentIndexFor(area.firstIndex); i < count; i++) {
        const segStart = pages.segmentStart(i);
        if (segStart > area.lastIndex) break;
        const firstByte = max(BigInt(segStart) * PAGE, areaFirstByte);
        const lastByte = min(BigInt(pages.segmentLast(i) + 1) * PAGE - 1n, areaLastByte);
        const iova = area.iova + (firstByte - areaFirstByte);
        const pa = BigInt(pages.segmentFrame(i)) * PAGE + (firstByte - BigInt(segStart) * PAGE);
        const len = lastByte - firstByte + 1n;
        if (chunkLen && chunkIova + chunkLen === iova && chunkPa + chunkLen === pa) chunkLen += len;
        else {
          flush();
          chunkIova = iova;
          chunkPa = pa;
          chunkLen = len;
        }
      }
      flush();
    } catch (e) {
      domain.unmap(area.iova, area.length);
      throw e;
    }
  }

  private checkDomainArea(domain: PagingDomain, area: Area, fail: (what: string) => never): void {
    // Check the first and last byte of every page-sized step; bounded so huge areas stay cheap.
    const step = area.length > 4096n * PAGE ? area.length / 4096n : BigInt(this.iovaAlignment < FRAME_SIZE ? this.iovaAlignment : FRAME_SIZE);
    for (let iova = area.iova; iova <= area.last; iova += step) {
      const byte = area.startByte(iova);
      const frame = area.pages.pinnedFrame(Number(byte / PAGE));
      const want = BigInt(frame ?? 0) * PAGE + (byte % PAGE);
      const got = domain.iovaToPhys(iova);
      if (got !== want) fail(`domain maps 0x${iova.toString(16)} to ${got === undefined ? 'nothing' : `0x${got.toString(16)}`}, want 0x${want.toString(16)}`);
    }
  }

  /**
   * iopt_unmap_iova_range. Areas removed in a row leave the sorted list in one splice, so
   * unmapping everything is linear.
   */
  private unmapRange(first: bigint, last: bigint): bigint {
    let start = first;
    let unmapped = 0n;
    let tries = 0;
    for (;;) {
      const list = this.areaList;
      const runStart = this.lowerBound(start);
      let i = runStart;
      let failure: UnmapError | undefined;
      let busy: Area | undefined;
      let done = false;
      for (;;) {
        const area = list[i];
        if (!area || area.iova > last) {
          done = true;
          break;
        }
        if (area.numLocks) {
          failure = new UnmapError('EBUSY', 0n, 'area is locked by a HW queue');
          break;
        }
        if (area.iova < start || area.last > last) {
          failure = new UnmapError('ENOENT', 0n, 'area extends outside the range');
          break;
        }
        if (area.iova !== start) tries = 0;
        if (area.numAccesses) {
          busy = area;
          break;
        }
        this.unfillArea(area);
        area.pages.untrackArea(area);
        unmapped += area.length;
        i++;
        if (area.last >= last) {
          done = true;
          break;
        }
        start = area.last + 1n;
      }
      if (i > runStart) list.splice(runStart, i - runStart);
      if (failure) throw new UnmapError(failure.code as 'EBUSY' | 'ENOENT', unmapped, failure.detail ?? '');
      if (done || !busy) return unmapped;
      // Ask every (non-internal) access to let go of the area, then look again.
      start = busy.iova;
      busy.preventAccess = true;
      for (const acc of [...this.accessList]) if (!acc.internal) acc.unmap?.(busy.iova, busy.length);
      if (++tries > UNMAP_TRIES) throw new UnmapError('EDEADLK', unmapped, 'an access does not release its pages');
    }
  }

  private removeAreaAccess(area: Area, first: number, lastIndex: number, internal: boolean): void {
    area.pages.removeAccess(first, lastIndex);
    area.countAccess(-1, internal);
  }

  /** iopt_area_split: `iova` becomes the last byte of the left half. */
  private splitArea(area: Area, iova: bigint): void {
    if (iova === area.iova || iova === area.last) return;
    if (area.preventAccess) throw err('EBUSY', 'area is being unmapped');
    // Domains track dma-buf areas whole, for revocation.
    if (area.pages.isDmabuf) throw err('EOPNOTSUPP', 'a dma-buf area cannot be split');
    const align = BigInt(this.iovaAlignment);
    const rightStart = iova + 1n;
    if (rightStart % align !== 0n || area.startByte(rightStart) % align !== 0n) throw err('EINVAL', 'cut not aligned');
    if (area.numAccesses) throw err('EINVAL', 'an access pinned the area');
    if (area.filled && !this.disableLargePages) throw err('EINVAL', 'domains may hold the area in large pages');
    const leftByte = area.startByte(area.iova);
    const rightByte = area.startByte(rightStart);
    const left = new Area(area.iova, iova, area.pages, Number(leftByte % PAGE), area.firstIndex, Number(area.startByte(iova) / PAGE), area.prot);
    const right = new Area(rightStart, area.last, area.pages, Number(rightByte % PAGE), Number(rightByte / PAGE), area.lastIndex, area.prot);
    if (area.filled) {
      // The halves take over the pin users of the whole (nothing new is pinned); domains keep their mappings.
      area.pages.addUser(left.firstIndex, left.lastIndex);
      area.pages.addUser(right.firstIndex, right.lastIndex);
      area.pages.removeUser(area.firstIndex, area.lastIndex);
      left.filled = right.filled = true;
    }
    this.areaList.splice(this.lowerBound(area.iova), 1, left, right);
    area.pages.trackArea(left);
    area.pages.trackArea(right);
    area.pages.untrackArea(area);
  }

  /** iopt_check_iova_alignment: every area conforms to a larger alignment, else EADDRINUSE. */
  private checkAlignment(newAlignment: number): void {
    const mask = BigInt(newAlignment) - 1n;
    for (const a of this.areaList) {
      if (a.iova & mask || a.length & mask || BigInt(a.pageOffset) & mask) throw err('EADDRINUSE', `an area is not aligned to ${newAlignment}`);
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

  /** Index of the first area whose last >= iova. */
  private lowerBound(iova: bigint): number {
    const list = this.areaList;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.last < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The lowest area intersecting [first, last]. */
  private firstAreaIn(first: bigint, last: bigint): Area | undefined {
    const a = this.areaList[this.lowerBound(first)];
    return a && a.iova <= last ? a : undefined;
  }

  private insertArea(area: Area): void {
    // Only a dma-buf needs a way to take the area out of the domains (on revocation).
    if (area.pages.isDmabuf) {
      area.pages.trackArea(area, () => {
        if (area.filled) for (const d of this.domainList) d.unmap(area.iova, area.length);
      });
    } else area.pages.trackArea(area);
    const i = this.lowerBound(area.iova);
    if (i === this.areaList.length) this.areaList.push(area);
    else this.areaList.splice(i, 0, area);
  }

  /**
   * Walks the areas that cover [first, last] without a gap, from the one holding `first`
   * (iopt_for_each_contig_area); `fn` gets each area with the piece of it inside the range.
   * Returns whether the walk reached `last` (iopt_area_contig_done).
   */
  private forEachContig(first: bigint, last: bigint, fn: (area: Area, cur: bigint, pieceLast: bigint, isLastPiece: boolean) => void): boolean {
    let i = this.lowerBound(first);
    let cur = first;
    for (;;) {
      const area = this.areaList[i];
      if (!area || area.iova > cur) return false;
      const isLast = last <= area.last;
      fn(area, cur, isLast ? last : area.last, isLast);
      if (isLast) return true;
      cur = area.last + 1n;
      // fn may have changed the list (an access callback); find the next area afresh.
      i = this.lowerBound(cur);
    }
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

/** iopt_area_contig_is_aligned: each piece starts on a page, and ends on one unless it ends the range. */
function pieceAligned(area: Area, cur: bigint, isLastPiece: boolean): boolean {
  if (area.startByte(cur) % PAGE !== 0n) return false;
  return isLastPiece || area.startByte(area.last) % PAGE === PAGE - 1n;
}

function protAllows(area: Area, flags: number): boolean {
  return (area.prot & (flags & ACCESS_RW_WRITE ? IOMMU_WRITE : IOMMU_READ)) !== 0;
}

function needsChargeUpdate(p: Pages, owner: PinOwner): boolean {
  switch (p.accountMode) {
    case AccountMode.NONE:
      return false;
    case AccountMode.MM:
      return p.owner.mm !== owner.mm;
    case AccountMode.USER:
      return p.owner.user !== owner.user || p.owner.mm !== owner.mm;
  }
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
