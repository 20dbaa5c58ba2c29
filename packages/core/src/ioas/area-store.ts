// The io page table's areas as a struct-of-arrays store (ADR 0191): one row per mapping in
// parallel typed arrays indexed by a small integer handle, instead of objects per mapping, so that
// 1 M separate 4 KiB maps cost under 64 bytes per page (issue 3).
//
// A row is one area: IOVAs [iova, last], prot, flags, the sub-page offset, and its pages, which are
//  - inline (the common case: a MAP or MAP_FILE nobody else shares): the source (kind, writable,
//    account mode in `bits`; backing and owner through an interned source id; the page of index 0)
//    and, while the area is filled into domains, the first frame of its one pinned run; or
//  - shared: a `Pages` object (pages.ts) and the row's index range, kept in a side map. A row turns
//    shared (`share`) when something needs its pages as an object: COPY (both sides share them), a
//    cut (the halves share them), an access pinning or reading them, pins that are not one
//    contiguous run of frames, and dma-bufs (always). It never turns back.
// IOVAs are float64 numbers, exact below 2^53. A row whose last byte is at 2^53 or above (BIG)
// also keeps its exact bigints in a side map; ordering compares fall back to them on float ties.
// `order` holds the handles sorted by IOVA (areas never overlap), searched by bisection.

import type { AddressSpace } from '../host/address-space.js';
import type { MemFile } from '../host/mem-file.js';
import { FRAME_SHIFT, FRAME_SIZE, type PhysicalMemory } from '../host/physical-memory.js';
import { charge, uncharge } from './accounting.js';
import { KIND_FILE, KIND_USER, Pages, resolveFrames } from './pages.js';
import { adjustPins } from './pin-counts.js';
import type { AccountMode, PinOwner } from './types.js';

const PAGE = BigInt(FRAME_SIZE);
const TWO53 = 2 ** 53;
const TWO53N = 1n << 53n;
const FIRST_CAPACITY = 16;
/** Sources with no row left that a store keeps for reuse before it forgets them (see release). */
const MAX_IDLE_SOURCES = 4;

// Row bits: prot in the low byte, flags, the sub-page offset (12 bits), then for inline rows the
// source's kind (2 bits), writable and account mode (2 bits).
const PROT_MASK = 0xff;
const FILLED = 1 << 8;
const PREVENT_ACCESS = 1 << 9;
const OFFSET_SHIFT = 10;
const OFFSET_MASK = 0xfff;
const SHARED = 1 << 22;
const BIG = 1 << 23;
const KIND_SHIFT = 24;
const WRITABLE = 1 << 26;
const MODE_SHIFT = 27;
/** The bits a row keeps when it turns shared (the source's go to the Pages object). */
const AREA_BITS = PROT_MASK | FILLED | PREVENT_ACCESS | (OFFSET_MASK << OFFSET_SHIFT) | BIG;

/** A shared row's pages: the Pages object, the row's index range in it, and its access counts. */
export class SharedArea {
  /** Accesses that pinned pages through this area. */
  accesses = 0;
  /** Those of `accesses` that lock the area (HW queues). */
  locks = 0;
  constructor(
    readonly pages: Pages,
    readonly firstIndex: number,
    readonly lastIndex: number,
  ) {}
}

/** A memory source of inline rows: backing and owner, interned per store (few distinct ones). */
interface Source {
  readonly backing: AddressSpace | MemFile;
  readonly owner: PinOwner;
  rows: number;
}

const NO_F64: Float64Array = new Float64Array(0);
const NO_I32: Int32Array = new Int32Array(0);

export class AreaStore {
  // Columns, one entry per row handle.
  private iovaF = NO_F64;
  private lastF = NO_F64;
  private bits = NO_I32;
  /** Inline rows: the source id. Free rows: the next free row (-1 ends the list). */
  private src = NO_I32;
  /** Inline rows: the source's page of index 0 (user VA or file offset >> FRAME_SHIFT, below 2^52). */
  private basePage = NO_F64;
  /** Inline rows while filled: the frame of index 0 (the run is contiguous). */
  private frame = NO_F64;
  /** Row handles sorted by IOVA; the first `used` are areas. */
  private order = NO_I32;
  private used = 0;
  /** Rows ever handed out (handles below this are live or on the free list). */
  private top = 0;
  private freeRow = -1;
  private readonly sharedRows = new Map<number, SharedArea>();
  private readonly bigs = new Map<number, { iova: bigint; last: bigint }>();
  private readonly sources: (Source | undefined)[] = [];
  /** Source ids by backing, to intern (backing, owner) pairs. */
  private readonly sourceIds = new Map<object, number[]>();
  /** Sources with no row left, kept for reuse (see release). */
  private idleSources = 0;

  // --- order -----------------------------------------------------------------------------------

  /** Number of areas. */
  get count(): number {
    return this.used;
  }

  /** The handle at position `i` in IOVA order. */
  at(i: number): number {
    return this.order[i]!;
  }

  /** Position of the first area whose last >= q (count when none). */
  lowerBound(q: bigint): number {
    const qn = Number(q);
    let lo = 0;
    let hi = this.used;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.lastBelow(this.order[mid]!, q, qn)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Puts row `h` at position `pos` of the order. */
  insertAt(pos: number, h: number): void {
    const o = this.order;
    if (pos < this.used) o.copyWithin(pos + 1, pos, this.used);
    o[pos] = h;
    this.used++;
  }

  /** Takes `n` rows out of the order from position `pos` and frees them. */
  removeAt(pos: number, n: number): void {
    for (let i = pos; i < pos + n; i++) this.free(this.order[i]!);
    this.order.copyWithin(pos, pos + n, this.used);
    this.used -= n;
  }

  /** Replaces the row at position `pos` by rows `a` then `b` (a split), freeing it. */
  replaceAt(pos: number, a: number, b: number): void {
    this.free(this.order[pos]!);
    this.order[pos] = a;
    this.insertAt(pos + 1, b);
  }

  /** Drops every row and gives the columns back (the store's io page table is being destroyed). */
  clear(): void {
    this.iovaF = this.lastF = this.basePage = this.frame = NO_F64;
    this.bits = this.src = this.order = NO_I32;
    this.used = this.top = 0;
    this.freeRow = -1;
    this.sharedRows.clear();
    this.bigs.clear();
    this.sources.length = 0;
    this.sourceIds.clear();
    this.idleSources = 0;
  }

  // --- rows ------------------------------------------------------------------------------------

  /** A new row (not yet in the order) whose pages are inline, nothing pinned. */
  addInline(iova: bigint, last: bigint, prot: number, pageOffset: number, kind: number, backing: AddressSpace | MemFile, basePage: number, writable: boolean, owner: PinOwner, mode: AccountMode): number {
    const h = this.newRow(iova, last, prot, pageOffset);
    this.bits[h]! |= (kind << KIND_SHIFT) | (writable ? WRITABLE : 0) | (mode << MODE_SHIFT);
    this.src[h] = this.intern(backing, owner);
    this.basePage[h] = basePage;
    return h;
  }

  /** A new row (not yet in the order) over indexes [firstIndex, lastIndex] of shared `pages`. */
  addShared(iova: bigint, last: bigint, prot: number, pageOffset: number, pages: Pages, firstIndex: number, lastIndex: number): number {
    const h = this.newRow(iova, last, prot, pageOffset);
    this.bits[h]! |= SHARED;
    this.sharedRows.set(h, new SharedArea(pages, firstIndex, lastIndex));
    return h;
  }

  /** Frees a row that is not (or no longer) in the order. */
  free(h: number): void {
    const b = this.bits[h]!;
    if (b & SHARED) this.sharedRows.delete(h);
    else this.release(this.src[h]!);
    if (b & BIG) this.bigs.delete(h);
    this.bits[h] = 0;
    this.src[h] = this.freeRow;
    this.freeRow = h;
  }

  iova(h: number): bigint {
    return this.bits[h]! & BIG ? this.bigs.get(h)!.iova : BigInt(this.iovaF[h]!);
  }

  last(h: number): bigint {
    return this.bits[h]! & BIG ? this.bigs.get(h)!.last : BigInt(this.lastF[h]!);
  }

  length(h: number): bigint {
    return this.bits[h]! & BIG ? this.last(h) - this.iova(h) + 1n : BigInt(this.lastF[h]! - this.iovaF[h]! + 1);
  }

  prot(h: number): number {
    return this.bits[h]! & PROT_MASK;
  }

  /** Bytes into page firstIndex where the area starts. */
  pageOffset(h: number): number {
    return (this.bits[h]! >>> OFFSET_SHIFT) & OFFSET_MASK;
  }

  /** The area's index range is a pin user of its pages because domains are filled with it (storage_domain). */
  filled(h: number): boolean {
    return (this.bits[h]! & FILLED) !== 0;
  }

  /** Marks a shared row filled or not, for a caller that moved the pin users itself (a split). */
  setFilled(h: number, v: boolean): void {
    this.bits[h] = v ? this.bits[h]! | FILLED : this.bits[h]! & ~FILLED;
  }

  /** Set while UNMAP waits for accesses to let go: new pins and rw fail with EINVAL. */
  preventAccess(h: number): boolean {
    return (this.bits[h]! & PREVENT_ACCESS) !== 0;
  }

  setPreventAccess(h: number, v: boolean): void {
    this.bits[h] = v ? this.bits[h]! | PREVENT_ACCESS : this.bits[h]! & ~PREVENT_ACCESS;
  }

  /** The row's shared pages, or undefined for inline ones. */
  shared(h: number): SharedArea | undefined {
    return this.bits[h]! & SHARED ? this.sharedRows.get(h) : undefined;
  }

  firstIndex(h: number): number {
    return this.bits[h]! & SHARED ? this.sharedRows.get(h)!.firstIndex : 0;
  }

  lastIndex(h: number): number {
    const b = this.bits[h]!;
    if (b & SHARED) return this.sharedRows.get(h)!.lastIndex;
    const offset = (b >>> OFFSET_SHIFT) & OFFSET_MASK;
    if (b & BIG) return Number((BigInt(offset) + this.last(h) - this.iova(h)) / PAGE);
    return Math.floor((offset + this.lastF[h]! - this.iovaF[h]!) / FRAME_SIZE);
  }

  /** Byte position in the pages of `iova` (iopt_area_start_byte). */
  startByte(h: number, iova: bigint): bigint {
    return iova - this.iova(h) + BigInt(this.pageOffset(h)) + BigInt(this.firstIndex(h)) * PAGE;
  }

  /** Index in the pages of the page holding `iova`. */
  indexOf(h: number, iova: bigint): number {
    return Number(this.startByte(h, iova) / PAGE);
  }

  /** Accesses that pinned pages through this area (only shared rows can have any). */
  numAccesses(h: number): number {
    return this.bits[h]! & SHARED ? this.sharedRows.get(h)!.accesses : 0;
  }

  /** Those of numAccesses that lock the area (HW queues). */
  numLocks(h: number): number {
    return this.bits[h]! & SHARED ? this.sharedRows.get(h)!.locks : 0;
  }

  // --- the row's pages -------------------------------------------------------------------------

  /**
   * The row's pages as an object, turning an inline row shared: a Pages that takes over the row's
   * source, its memfd reference and its pins (nothing is pinned, charged or referenced again).
   */
  share(h: number): SharedArea {
    const b = this.bits[h]!;
    if (b & SHARED) return this.sharedRows.get(h)!;
    const source = this.sources[this.src[h]!]!;
    const kind = (b >>> KIND_SHIFT) & 3;
    const base = BigInt(this.basePage[h]!) << BigInt(FRAME_SHIFT);
    const lastIndex = this.lastIndex(h);
    const pages = new Pages(
      kind === KIND_USER ? { kind: 'user', mm: source.backing as AddressSpace, base } : { kind: 'file', file: source.backing as MemFile, base },
      lastIndex + 1,
      (b & WRITABLE) !== 0,
      source.owner,
      (b >>> MODE_SHIFT) & 3,
    );
    pages.adoptInline(b & FILLED ? this.frame[h]! : undefined, lastIndex);
    const sa = new SharedArea(pages, 0, lastIndex);
    this.release(this.src[h]!);
    this.bits[h] = (b & AREA_BITS) | SHARED;
    this.sharedRows.set(h, sa);
    return sa;
  }

  isFile(h: number): boolean {
    const sa = this.shared(h);
    return sa ? sa.pages.isFile : ((this.bits[h]! >>> KIND_SHIFT) & 3) === KIND_FILE;
  }

  isDmabuf(h: number): boolean {
    return this.shared(h)?.pages.isDmabuf ?? false;
  }

  /** The dma-buf behind the row was revoked: it maps nothing. */
  revoked(h: number): boolean {
    return this.shared(h)?.pages.revoked ?? false;
  }

  /** The pages were mapped writable (COPY may then map them writable too). */
  writable(h: number): boolean {
    const sa = this.shared(h);
    return sa ? sa.pages.writable : (this.bits[h]! & WRITABLE) !== 0;
  }

  accountMode(h: number): AccountMode {
    const sa = this.shared(h);
    return sa ? sa.pages.accountMode : (this.bits[h]! >>> MODE_SHIFT) & 3;
  }

  owner(h: number): PinOwner {
    const sa = this.shared(h);
    return sa ? sa.pages.owner : this.sources[this.src[h]!]!.owner;
  }

  /** Pages an inline row has pinned (and charged): all of them while filled. */
  npinnedInline(h: number): number {
    return this.bits[h]! & FILLED ? this.lastIndex(h) + 1 : 0;
  }

  /** Re-parents an inline row's pages (CHANGE_PROCESS): the caller moved the charge. */
  changeOwnerInline(h: number, owner: PinOwner): void {
    const old = this.src[h]!;
    this.src[h] = this.intern(this.sources[old]!.backing, owner);
    this.release(old);
  }

  /** The frame pinned at `index` of the row's pages, or undefined. */
  pinnedFrame(h: number, index: number): number | undefined {
    const sa = this.shared(h);
    if (sa) return sa.pages.pinnedFrame(index);
    return this.bits[h]! & FILLED && index <= this.lastIndex(h) ? this.frame[h]! + index : undefined;
  }

  /** Calls `fn` with each pinned run of the row's pages that meets its index range, ascending. */
  forEachPinnedRun(h: number, fn: (start: number, last: number, frame: number) => void): void {
    const sa = this.shared(h);
    if (!sa) {
      if (this.bits[h]! & FILLED) fn(0, this.lastIndex(h), this.frame[h]!);
      return;
    }
    const p = sa.pages;
    const count = p.segmentCount();
    for (let i = p.segmentIndexFor(sa.firstIndex); i < count; i++) {
      const start = p.segmentStart(i);
      if (start > sa.lastIndex) break;
      fn(start, p.segmentLast(i), p.segmentFrame(i));
    }
  }

  /** The host memory the row's pages are in. */
  physical(h: number): PhysicalMemory {
    const sa = this.shared(h);
    return sa ? sa.pages.physical : this.sources[this.src[h]!]!.backing.physical;
  }

  /**
   * Pins the row's whole index range for its domains and marks it filled: the frames first (EFAULT
   * / EINVAL), then the memlock charge (ENOMEM), then the pins, all or nothing. An inline row whose
   * frames are not one contiguous run turns shared and pins through its Pages.
   */
  fill(h: number): void {
    const b = this.bits[h]!;
    if (b & SHARED) {
      const sa = this.sharedRows.get(h)!;
      sa.pages.addUser(sa.firstIndex, sa.lastIndex);
    } else {
      const source = this.sources[this.src[h]!]!;
      const n = this.lastIndex(h) + 1;
      const run = resolveFrames((b >>> KIND_SHIFT) & 3, source.backing, this.basePage[h]!, 0, n, (b & WRITABLE) !== 0);
      if (run.count < n) {
        const sa = this.share(h);
        sa.pages.addUser(0, sa.lastIndex);
      } else {
        charge(source.owner, (b >>> MODE_SHIFT) & 3, n);
        adjustPins(source.backing.physical, run.frame, n, 1);
        this.frame[h] = run.frame;
      }
    }
    this.bits[h]! |= FILLED;
  }

  /** Undoes fill: clears filled, unpins and uncharges what no other user covers. */
  unfill(h: number): void {
    const b = this.bits[h]!;
    this.bits[h] = b & ~FILLED;
    if (b & SHARED) {
      const sa = this.sharedRows.get(h)!;
      sa.pages.removeUser(sa.firstIndex, sa.lastIndex);
      return;
    }
    const source = this.sources[this.src[h]!]!;
    const n = this.lastIndex(h) + 1;
    adjustPins(source.backing.physical, this.frame[h]!, n, -1);
    uncharge(source.owner, (b >>> MODE_SHIFT) & 3, n);
  }

  /**
   * The row now uses its pages (inserted into the io page table): a memfd gets a reference while
   * any area uses it; for a dma-buf, `unmapDomains` is what revocation calls to unmap the area.
   */
  track(h: number, unmapDomains?: () => void): void {
    const sa = this.shared(h);
    if (sa) sa.pages.trackArea(sa, unmapDomains);
    else if (((this.bits[h]! >>> KIND_SHIFT) & 3) === KIND_FILE) (this.sources[this.src[h]!]!.backing as MemFile).get();
  }

  /** Undoes track (the row leaves the io page table). */
  untrack(h: number): void {
    const sa = this.shared(h);
    if (sa) sa.pages.untrackArea(sa);
    else if (((this.bits[h]! >>> KIND_SHIFT) & 3) === KIND_FILE) (this.sources[this.src[h]!]!.backing as MemFile).put();
  }

  /**
   * Throws an Error naming the first inconsistency of the store itself (for the io page table's
   * invariant check): every live row in the order once, side maps matching the row bits, floats
   * matching the exact IOVAs, source counts matching the inline rows that use them.
   */
  checkConsistency(): void {
    const fail = (what: string): never => {
      throw new Error(`area store: ${what}`);
    };
    const free = new Set<number>();
    for (let h = this.freeRow; h >= 0; h = this.src[h]!) {
      if (free.has(h) || h >= this.top) fail(`free list broken at row ${h}`);
      free.add(h);
    }
    if (this.top - free.size !== this.used) fail(`${this.used} rows in order, ${this.top - free.size} live`);
    const seen = new Set<number>();
    const uses = new Map<number, number>();
    for (let i = 0; i < this.used; i++) {
      const h = this.order[i]!;
      if (free.has(h) || seen.has(h) || h >= this.top) fail(`order position ${i} holds row ${h} twice or a free one`);
      seen.add(h);
      const b = this.bits[h]!;
      if (((b & SHARED) !== 0) !== this.sharedRows.has(h)) fail(`row ${h}: shared bit and side map disagree`);
      if (((b & BIG) !== 0) !== this.bigs.has(h)) fail(`row ${h}: BIG bit and side map disagree`);
      const big = this.bigs.get(h);
      if (big && (this.iovaF[h] !== Number(big.iova) || this.lastF[h] !== Number(big.last) || big.last < TWO53N)) fail(`row ${h}: exact IOVAs do not match`);
      if (!big && this.lastF[h]! >= TWO53) fail(`row ${h}: not BIG at 2^53 or above`);
      if (!(b & SHARED)) uses.set(this.src[h]!, (uses.get(this.src[h]!) ?? 0) + 1);
    }
    if (this.sharedRows.size + [...uses.values()].reduce((x, y) => x + y, 0) !== this.used) fail('rows neither shared nor inline');
    let idle = 0;
    this.sources.forEach((s, id) => {
      if (!s) return;
      if (s.rows !== (uses.get(id) ?? 0)) fail(`source ${id} counts ${s.rows} rows, ${uses.get(id) ?? 0} use it`);
      if (s.rows === 0) idle++;
      if (!this.sourceIds.get(s.backing)?.includes(id)) fail(`source ${id} is not found by its backing`);
    });
    for (const id of uses.keys()) if (!this.sources[id]) fail(`an inline row uses the missing source ${id}`);
    if (idle !== this.idleSources) fail(`${idle} idle sources, counted ${this.idleSources}`);
  }

  // --- internals -------------------------------------------------------------------------------

  /** Row `h`'s last < q, exactly: floats decide unless they tie at 2^53 or above. */
  private lastBelow(h: number, q: bigint, qn: number): boolean {
    const l = this.lastF[h]!;
    if (l !== qn) return l < qn;
    return l >= TWO53 && this.last(h) < q;
  }

  private newRow(iova: bigint, last: bigint, prot: number, pageOffset: number): number {
    let h = this.freeRow;
    if (h >= 0) this.freeRow = this.src[h]!;
    else {
      if (this.top === this.bits.length) this.grow();
      h = this.top++;
    }
    this.iovaF[h] = Number(iova);
    this.lastF[h] = Number(last);
    let b = (prot & PROT_MASK) | (pageOffset << OFFSET_SHIFT);
    if (last >= TWO53N) {
      b |= BIG;
      this.bigs.set(h, { iova, last });
    }
    this.bits[h] = b;
    return h;
  }

  /** Doubles every column (typed arrays cannot grow in place). */
  private grow(): void {
    const cap = Math.max(FIRST_CAPACITY, this.bits.length * 2);
    const f64 = (old: Float64Array): Float64Array => {
      const a = new Float64Array(cap);
      a.set(old);
      return a;
    };
    const i32 = (old: Int32Array): Int32Array => {
      const a = new Int32Array(cap);
      a.set(old);
      return a;
    };
    this.iovaF = f64(this.iovaF);
    this.lastF = f64(this.lastF);
    this.basePage = f64(this.basePage);
    this.frame = f64(this.frame);
    this.bits = i32(this.bits);
    this.src = i32(this.src);
    this.order = i32(this.order);
  }

  /**
   * The id of (backing, owner), by value: every ioctl passes a fresh owner object, but what pins
   * are charged to is its mm, user, limit and capability.
   */
  private intern(backing: AddressSpace | MemFile, owner: PinOwner): number {
    let ids = this.sourceIds.get(backing);
    for (const id of ids ?? []) {
      const s = this.sources[id]!;
      const o = s.owner;
      if (o.mm === owner.mm && o.user === owner.user && o.memlockLimit === owner.memlockLimit && o.capIpcLock === owner.capIpcLock) {
        if (s.rows++ === 0) this.idleSources--;
        return id;
      }
    }
    let id = this.sources.indexOf(undefined);
    if (id < 0) id = this.sources.length;
    this.sources[id] = { backing, owner, rows: 1 };
    if (!ids) this.sourceIds.set(backing, (ids = []));
    ids.push(id);
    return id;
  }

  /**
   * Drops a row's use of source `id`. A source left with no row stays for reuse (mapping and
   * unmapping one area over and over would otherwise make and drop it every time), until more than
   * MAX_IDLE_SOURCES are idle: then every idle one goes, so a store holds no stale mm or file long.
   */
  private release(id: number): void {
    if (--this.sources[id]!.rows > 0) return;
    if (++this.idleSources <= MAX_IDLE_SOURCES) return;
    for (let i = 0; i < this.sources.length; i++) {
      const s = this.sources[i];
      if (!s || s.rows > 0) continue;
      this.sources[i] = undefined;
      const ids = this.sourceIds.get(s.backing)!;
      ids.splice(ids.indexOf(i), 1);
      if (!ids.length) this.sourceIds.delete(s.backing);
    }
    this.idleSources = 0;
  }
}
