// The pages behind areas (the kernel's iopt_pages): a window of user memory or of a memfd, pinned
// lazily. Several areas (COPY, also across IOASes) share one Pages; a page is pinned once however
// many users need it. Users are the index ranges of areas filled into domains and the exact ranges
// accesses pinned; `segments` keeps, per run of indexes with contiguous frames, how many users
// cover it. Pins are charged to the owner that created the pages (or took them over with
// CHANGE_PROCESS).

import { SystemError } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import type { MemFile } from '../host/mem-file.js';
import type { DmaBuf } from './dmabuf.js';
import { FRAME_SHIFT, FRAME_SIZE, type PhysicalMemory } from '../host/physical-memory.js';
import { charge, uncharge } from './accounting.js';
import { adjustPins } from './pin-counts.js';
import type { AccountMode, PinOwner } from './types.js';

// Segments are kept flat, four numbers each (no object per segment, ADR 0190): indexes
// [start, last] are backed by frames [frame, frame + last - start] and covered by `users` users.
const SEG = 4;
const START = 0;
const LAST = 1;
const FRAME = 2;
const USERS = 3;

/** An exact index range pinned by accesses (iopt_pages_access), with how many pinned it. */
interface AccessRange {
  start: number;
  last: number;
  users: number;
}

/** Address spaces whose process has exited: their pages can no longer be pinned (mmget_not_zero fails). */
const goneMms = new WeakSet<AddressSpace>();

/**
 * Tells the io page table that the process owning `mm` exited. Pages already pinned stay pinned;
 * pinning more of its memory (a first domain attach, an access) fails with EFAULT, as in the
 * selftest's fork_gone.
 */
export function mmExited(mm: AddressSpace): void {
  goneMms.add(mm);
}

export type PagesSource =
  | { readonly kind: 'user'; readonly mm: AddressSpace; /** page-aligned user VA of index 0 */ readonly base: bigint }
  | { readonly kind: 'file'; readonly file: MemFile; /** byte offset of index 0 in the file (page aligned) */ readonly base: bigint }
  | { readonly kind: 'dmabuf'; readonly buf: DmaBuf; /** byte offset of index 0 in the buffer (page aligned) */ readonly base: bigint };

/** The segments of pages with nothing pinned, shared (never mutated: the first pin assigns a fresh array). */
const NO_SEGMENTS: number[] = [];
/** Marker: the pages have exactly one segment, held in the seg* fields (the common case: no array at all). */
const INLINE: number[] = [];

/**
 * dma-buf pages only (kept aside so that other pages pay nothing for it): the areas using them,
 * each with what unmaps it from the domains it is filled into (the kernel's tracker list).
 * Revocation runs them.
 */
const dmabufAreas = new WeakMap<Pages, Map<object, () => void>>();

/** Exact ranges pinned by accesses, per pages that have any (kept aside: most pages never see an access). */
const accessRanges = new WeakMap<Pages, AccessRange[]>();

// Pages.bits: the source kind in the low two bits, then writable, then the account mode. Kind,
// backing and base page are kept as fields rather than a source object: one object less per mapping
// (mappings can number millions, ADR 0190).
export const KIND_USER = 0;
export const KIND_FILE = 1;
export const KIND_DMABUF = 2;
const KIND_MASK = 3;
const WRITABLE = 1 << 2;
const MODE_SHIFT = 3;

export class Pages {
  /** Flat segments, ascending: [start, last, frame, users] per segment; INLINE for one segment. */
  private segments: number[] = NO_SEGMENTS;
  private segStart = 0;
  private segLast = 0;
  private segFrame = 0;
  private segUsers = 0;
  /** Areas using these pages: while there is one, they hold a reference on their memfd or dma-buf. */
  private areaCount = 0;
  private bits: number;
  /** The source's address space, memfd or dma-buf (which one: bits & KIND_MASK). */
  private readonly backing: AddressSpace | MemFile | DmaBuf;
  /**
   * The source's page of index 0 (user VA or byte offset, which are page aligned, >> FRAME_SHIFT):
   * below 2^52, so an exact number, and a small integer for usual VAs (no bigint per mapping).
   */
  private readonly basePage: number;

  constructor(
    source: PagesSource,
    /** Number of PAGE_SIZE pages (may exceed what is mapped: checked at pin time). Not kept: one field less per mapping. */
    npages: number,
    writable: boolean,
    public owner: PinOwner,
    accountMode: AccountMode,
  ) {
    const kind = source.kind === 'user' ? KIND_USER : source.kind === 'file' ? KIND_FILE : KIND_DMABUF;
    this.bits = kind | (writable ? WRITABLE : 0) | (accountMode << MODE_SHIFT);
    this.backing = source.kind === 'user' ? source.mm : source.kind === 'file' ? source.file : source.buf;
    this.basePage = Number(source.base >> BigInt(FRAME_SHIFT));
    if (source.kind === 'dmabuf') {
      // Nothing is pinned: the exporter's range is the one segment, from the moment it is attached.
      const frame = source.buf.iommufdMap() + this.basePage;
      this.setSegments([0, npages - 1, frame, 1]);
    }
  }

  /**
   * Takes over the state of pages that lived inline in an area row (area-store.ts) until something
   * needed them as an object: that one area (it already holds the memfd reference), and when
   * `frame` is given, indexes [0, lastIndex] pinned from `frame` on with that area as their user.
   */
  adoptInline(frame: number | undefined, lastIndex: number): void {
    this.areaCount = 1;
    if (frame !== undefined) this.setSegments([0, lastIndex, frame, 1]);
  }

  /** Where the pages come from (built on demand: only COPY's IOVA hint and tests ask). */
  get source(): PagesSource {
    const kind = this.bits & KIND_MASK;
    const base = BigInt(this.basePage) << BigInt(FRAME_SHIFT);
    if (kind === KIND_USER) return { kind: 'user', mm: this.backing as AddressSpace, base };
    if (kind === KIND_FILE) return { kind: 'file', file: this.backing as MemFile, base };
    return { kind: 'dmabuf', buf: this.backing as DmaBuf, base };
  }

  get writable(): boolean {
    return (this.bits & WRITABLE) !== 0;
  }

  get accountMode(): AccountMode {
    return (this.bits >>> MODE_SHIFT) as AccountMode;
  }

  set accountMode(mode: AccountMode) {
    this.bits = (this.bits & ((1 << MODE_SHIFT) - 1)) | (mode << MODE_SHIFT);
  }

  /**
   * Pages currently pinned (npinned) and charged (last_npinned), equal between operations: what
   * the segments cover (every segment is pinned, except a dma-buf's, which is never pinned).
   * Derived, not stored: one field less per mapping.
   */
  get npinned(): number {
    if (this.isDmabuf || this.segments === NO_SEGMENTS) return 0;
    if (this.segments === INLINE) return this.segLast - this.segStart + 1;
    const s = this.segments;
    let n = 0;
    for (let at = 0; at < s.length; at += SEG) n += s[at + LAST]! - s[at + START]! + 1;
    return n;
  }

  /** The host memory the pages are in (derived, not stored: one field less per mapping). */
  get physical(): PhysicalMemory {
    return this.backing.physical;
  }

  get isFile(): boolean {
    return (this.bits & KIND_MASK) === KIND_FILE;
  }

  get isDmabuf(): boolean {
    return (this.bits & KIND_MASK) === KIND_DMABUF;
  }

  /** The exporter revoked the dma-buf behind these pages (phys.len 0): they map nothing from now on. */
  get revoked(): boolean {
    // Unrevoked dma-buf pages always have their one segment.
    return this.segments === NO_SEGMENTS && this.isDmabuf;
  }

  /**
   * An area now uses these pages (iopt_pages kref). The first one takes a reference on the memfd,
   * or attaches to the dma-buf; for a dma-buf, `unmapDomains` takes the area out of the domains it
   * is filled into (revocation calls it).
   */
  trackArea(area: object, unmapDomains?: () => void): void {
    const kind = this.bits & KIND_MASK;
    if (this.areaCount++ === 0) {
      if (kind === KIND_FILE) (this.backing as MemFile).get();
      else if (kind === KIND_DMABUF) (this.backing as DmaBuf).attach(this);
    }
    if (kind === KIND_DMABUF && unmapDomains) {
      let areas = dmabufAreas.get(this);
      if (!areas) dmabufAreas.set(this, (areas = new Map()));
      areas.set(area, unmapDomains);
    }
  }

  /** Undoes trackArea; the last area leaving drops the file reference or the attachment (iopt_release_pages). */
  untrackArea(area: object): void {
    const kind = this.bits & KIND_MASK;
    if (kind === KIND_DMABUF) dmabufAreas.get(this)?.delete(area);
    if (--this.areaCount > 0) return;
    if (kind === KIND_FILE) (this.backing as MemFile).put();
    else if (kind === KIND_DMABUF) {
      dmabufAreas.delete(this);
      (this.backing as DmaBuf).detach(this);
    }
  }

  /** The exporter's revoke notification (iopt_revoke_notify): unmap everywhere, then map nothing. */
  invalidate(): void {
    if (this.revoked) return;
    for (const unmap of dmabufAreas.get(this)?.values() ?? []) unmap();
    this.segments = NO_SEGMENTS;
  }

  /** Number of pinned segments (ascending; read through segmentStart/Last/Frame for filling domains). */
  segmentCount(): number {
    return this.segments === INLINE ? 1 : this.segments.length / SEG;
  }

  segmentStart(i: number): number {
    return this.segments === INLINE ? this.segStart : this.segments[i * SEG + START]!;
  }

  segmentLast(i: number): number {
    return this.segments === INLINE ? this.segLast : this.segments[i * SEG + LAST]!;
  }

  segmentFrame(i: number): number {
    return this.segments === INLINE ? this.segFrame : this.segments[i * SEG + FRAME]!;
  }

  /** Index of the first segment whose last >= index. */
  segmentIndexFor(index: number): number {
    if (this.segments === INLINE) return this.segLast < index ? 1 : 0;
    return indexFor(this.segments, index);
  }

  /** Frame pinned at `index`, or undefined. */
  pinnedFrame(index: number): number | undefined {
    if (this.segments === INLINE) return this.segStart <= index && index <= this.segLast ? this.segFrame + (index - this.segStart) : undefined;
    const s = this.segments;
    const at = indexFor(s, index) * SEG;
    return at < s.length && s[at + START]! <= index ? s[at + FRAME]! + (index - s[at + START]!) : undefined;
  }

  /** The segments as a flat array: for an inline one, a temporary copy (only the pin/unpin paths ask). */
  private flatSegments(): number[] {
    return this.segments === INLINE ? [this.segStart, this.segLast, this.segFrame, this.segUsers] : this.segments;
  }

  /** Stores `s` (merged, ascending): inline when it is one segment, the shared empty array when none. */
  private setSegments(s: number[]): void {
    if (s.length === SEG) {
      this.segStart = s[START]!;
      this.segLast = s[LAST]!;
      this.segFrame = s[FRAME]!;
      this.segUsers = s[USERS]!;
      this.segments = INLINE;
    } else this.segments = s.length ? s : NO_SEGMENTS;
  }

  /**
   * Adds a user over [start, last]: pins what is not pinned yet (EFAULT / EINVAL from the source,
   * then ENOMEM from the memlock charge), all or nothing.
   */
  addUser(start: number, last: number): void {
    if (this.isDmabuf) return; // not pinned, not charged
    if (this.segments === NO_SEGMENTS) return this.addFirstUser(start, last);
    // 1. Find the frames of every unpinned index, without changing anything.
    const s = this.flatSegments();
    const fresh: number[] = [];
    let newly = 0;
    let idx = start;
    for (let at = indexFor(s, start) * SEG; idx <= last; at += SEG) {
      const has = at < s.length && s[at + START]! <= last;
      const gapEnd = has ? s[at + START]! - 1 : last;
      while (idx <= gapEnd) {
        const { frame, count } = this.resolve(idx, gapEnd - idx + 1);
        fresh.push(idx, idx + count - 1, frame, 1);
        idx += count;
        newly += count;
      }
      if (!has) break;
      idx = s[at + LAST]! + 1;
    }
    // 2. Charge them; 3. commit.
    charge(this.owner, this.accountMode, newly);
    for (let f = 0; f < fresh.length; f += SEG) adjustPins(this.physical, fresh[f + FRAME]!, fresh[f + LAST]! - fresh[f + START]! + 1, 1);
    splitAt(s, start);
    splitAt(s, last + 1);
    for (let at = 0; at < s.length; at += SEG) if (s[at + START]! >= start && s[at + LAST]! <= last) s[at + USERS]!++;
    const all = fresh.length ? mergeSorted(s, fresh) : s;
    merge(all);
    this.setSegments(all);
  }

  /** addUser on pages with nothing pinned yet (the common case of a new mapping): no splitting or sorting. */
  private addFirstUser(start: number, last: number): void {
    const fresh: number[] = [];
    let newly = 0;
    for (let idx = start; idx <= last; ) {
      const { frame, count } = this.resolve(idx, last - idx + 1);
      fresh.push(idx, idx + count - 1, frame, 1);
      idx += count;
      newly += count;
    }
    charge(this.owner, this.accountMode, newly);
    for (let f = 0; f < fresh.length; f += SEG) adjustPins(this.physical, fresh[f + FRAME]!, fresh[f + LAST]! - fresh[f + START]! + 1, 1);
    merge(fresh);
    // slice(): an exact-size array (push grew `fresh` to spare capacity); one segment goes inline.
    this.setSegments(fresh.length === SEG ? fresh : fresh.slice());
  }

  /** Drops a user over [start, last]; pages nobody covers any more are unpinned and uncharged. */
  removeUser(start: number, last: number): void {
    if (this.isDmabuf) return;
    const s = this.flatSegments();
    splitAt(s, start);
    splitAt(s, last + 1);
    let freed = 0;
    const keep: number[] = [];
    for (let at = 0; at < s.length; at += SEG) {
      if (s[at + START]! >= start && s[at + LAST]! <= last) {
        if (s[at + USERS] === 0) throw new Error(`pages: removing a user that was never added at ${s[at + START]}`);
        if (--s[at + USERS]! === 0) {
          const n = s[at + LAST]! - s[at + START]! + 1;
          adjustPins(this.physical, s[at + FRAME]!, n, -1);
          freed += n;
          continue;
        }
      }
      keep.push(s[at + START]!, s[at + LAST]!, s[at + FRAME]!, s[at + USERS]!);
    }
    merge(keep);
    this.setSegments(keep.length === SEG ? keep : keep.slice());
    uncharge(this.owner, this.accountMode, freed);
  }

  /** Records an access to exactly [start, last] (pinning it for the first one). */
  addAccess(start: number, last: number): void {
    const list = accessRanges.get(this);
    const a = list?.find((r) => r.start === start && r.last === last);
    if (a) {
      a.users++;
      return;
    }
    this.addUser(start, last);
    if (list) list.push({ start, last, users: 1 });
    else accessRanges.set(this, [{ start, last, users: 1 }]);
  }

  /** Undoes addAccess. */
  removeAccess(start: number, last: number): void {
    const list = accessRanges.get(this);
    const i = list?.findIndex((r) => r.start === start && r.last === last) ?? -1;
    if (i < 0) throw new Error(`pages: no access at [${start}, ${last}]`);
    const a = list![i]!;
    if (--a.users > 0) return;
    list!.splice(i, 1);
    if (!list!.length) accessRanges.delete(this);
    this.removeUser(start, last);
  }

  /** Access ranges (for invariant checks). */
  accessRanges(): readonly { start: number; last: number; users: number }[] {
    return accessRanges.get(this) ?? [];
  }

  /**
   * The frame behind `index` for a CPU copy (iopt_pages_rw_access): the pinned one, else the
   * source's current one without pinning. EFAULT (user memory) / EINVAL (file) when there is none.
   */
  frameForRw(index: number, write: boolean): number {
    const pinned = this.pinnedFrame(index);
    if (pinned !== undefined) return pinned;
    return this.resolve(index, 1, write).frame;
  }

  /** Re-parents the pages (CHANGE_PROCESS): the caller moved the charge. */
  changeOwner(owner: PinOwner): void {
    this.owner = owner;
  }

  /**
   * The frame behind `index` and how many of the next `max` indexes follow contiguously: what
   * pin_user_pages / memfd_pin_folios find. Throws as they fail.
   */
  private resolve(index: number, max: number, write = this.writable): { frame: number; count: number } {
    return resolveFrames(this.bits & KIND_MASK, this.backing, this.basePage, index, max, write);
  }
}

/**
 * What pin_user_pages / memfd_pin_folios find for index `index` of a source (kind, backing, page
 * of index 0): the frame, and how many of the next `max` indexes follow it contiguously. Throws
 * as they fail: EFAULT (user memory gone, read-only for a write, or its process exited), EINVAL
 * (not shmem, past the file's end, a dma-buf). Shared by Pages and the area store's inline pages.
 */
export function resolveFrames(
  kind: number,
  backing: AddressSpace | MemFile | DmaBuf,
  basePage: number,
  index: number,
  max: number,
  write: boolean,
): { frame: number; count: number } {
  if (kind === KIND_USER) {
    const mm = backing as AddressSpace;
    const va = (basePage + index) * FRAME_SIZE;
    const m = Number.isSafeInteger(va) && !goneMms.has(mm) ? mm.find(va) : undefined;
    if (!m || (write && !m.writable)) {
      throw new SystemError('EFAULT', 'ioctl', `cannot pin user page at 0x${((BigInt(basePage) + BigInt(index)) << BigInt(FRAME_SHIFT)).toString(16)}`);
    }
    const frame = m.run.firstFrame + Math.floor((m.runOffset + va - m.addr) / FRAME_SIZE);
    const count = Math.min(max, Math.ceil((m.addr + m.length - va) / FRAME_SIZE));
    return { frame, count };
  }
  if (kind === KIND_DMABUF) throw new SystemError('EINVAL', 'ioctl', 'dma-buf pages are not read by the CPU');
  const file = backing as MemFile;
  const page = basePage + index;
  const frame = file.isShmem && Number.isSafeInteger(page) ? file.frameOf(page) : undefined;
  if (frame === undefined) throw new SystemError('EINVAL', 'ioctl', `cannot pin page ${page} of ${file.name}`);
  return { frame, count: Math.min(max, file.contiguousFrom(page)) };
}

/** Index of the first segment of flat `s` whose last >= index. */
function indexFor(s: readonly number[], index: number): number {
  let lo = 0;
  let hi = s.length / SEG;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[mid * SEG + LAST]! < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Splits the segment of flat `s` holding `index` (if any starts before it) so that one starts there. */
function splitAt(s: number[], index: number): void {
  const at = indexFor(s, index) * SEG;
  if (at >= s.length || s[at + START]! >= index) return;
  const right = [index, s[at + LAST]!, s[at + FRAME]! + (index - s[at + START]!), s[at + USERS]!];
  s[at + LAST] = index - 1;
  s.splice(at + SEG, 0, ...right);
}

/** Joins neighbours of flat `s` that touch, continue each other's frames and have as many users. */
function merge(s: number[]): void {
  let w = 0;
  for (let r = 0; r < s.length; r += SEG) {
    const p = w - SEG;
    if (
      w > 0 &&
      s[p + LAST]! + 1 === s[r + START] &&
      s[p + USERS] === s[r + USERS] &&
      s[p + FRAME]! + (s[r + START]! - s[p + START]!) === s[r + FRAME]
    ) {
      s[p + LAST] = s[r + LAST]!;
    } else {
      if (w !== r) for (let k = 0; k < SEG; k++) s[w + k] = s[r + k]!;
      w += SEG;
    }
  }
  if (s.length !== w) s.length = w;
}

/** Two flat segment lists, each ascending and disjoint from the other, as one ascending list. */
function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length + b.length);
  let i = 0;
  let j = 0;
  let w = 0;
  while (i < a.length || j < b.length) {
    const fromA = j >= b.length || (i < a.length && a[i + START]! < b[j + START]!);
    const src = fromA ? a : b;
    const at = fromA ? i : j;
    for (let k = 0; k < SEG; k++) out[w++] = src[at + k]!;
    if (fromA) i += SEG;
    else j += SEG;
  }
  return out;
}
