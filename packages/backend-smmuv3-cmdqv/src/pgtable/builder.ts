// Builds VMSAv8-64 translation tables in memory: the host's stage-2 tables for nest-parent domains,
// and (in tests and the harness) a guest's stage-1 tables in guest RAM. The memory is abstract so a
// guest table can live at IPAs that resolve through stage 2.
import { MapOverlapError } from '@viommu/core';
import { blockAllowed, levelShift } from './granule.js';

export interface TableMemory {
  readU32(addr: number): number;
  writeU32(addr: number, value: number): void;
  /** A zeroed table of `bytes` bytes, aligned to `bytes`; returns its address in this memory. */
  allocTable(bytes: number): number;
}

export interface LeafAttrs {
  lo: number;
  hi: number;
}

/** Something already mapped at `ia`; `mapped` (core's MapOverlapError) says how much of the map() call was done. */
export class OverlapError extends MapOverlapError {
  constructor(ia: number) {
    super(`translation table already maps 0x${ia.toString(16)}`);
  }
}

const TWO32 = 0x1_0000_0000;

/**
 * Stage-1 leaf attributes. `ap`: AP[2:1] (bit 0 = EL0 access, bit 1 = read-only). nG defaults to
 * set, as Linux's io-pgtable does for stage 1: entries are then tagged with the CD's ASID.
 */
export function s1LeafAttrs(o: { ap?: number; uxn?: boolean; pxn?: boolean; nG?: boolean; af?: boolean; attrIndx?: number } = {}): LeafAttrs {
  let lo = ((o.attrIndx ?? 0) << 2) | ((o.ap ?? 1) << 6) | (3 << 8);
  if (o.af ?? true) lo |= 1 << 10;
  if (o.nG ?? true) lo |= 1 << 11;
  let hi = 0;
  if (o.pxn) hi |= 1 << 21;
  if (o.uxn) hi |= 1 << 22;
  return { lo: lo >>> 0, hi };
}

/** Stage-2 leaf attributes: S2AP read/write, XN[1:0], Normal write-back memory. */
export function s2LeafAttrs(o: { read?: boolean; write?: boolean; xn?: number; af?: boolean } = {}): LeafAttrs {
  let lo = (0xf << 2) | (3 << 8);
  if (o.read ?? true) lo |= 1 << 6;
  if (o.write ?? true) lo |= 1 << 7;
  if (o.af ?? true) lo |= 1 << 10;
  return { lo: lo >>> 0, hi: (o.xn ?? 0) << 21 };
}

export class TableBuilder {
  readonly root: number;
  private readonly stride: number;

  constructor(
    private readonly mem: TableMemory,
    readonly granuleShift: number,
    readonly inputBits: number,
    readonly startLevel: number,
  ) {
    this.stride = granuleShift - 3;
    this.root = mem.allocTable(this.tableBytes(startLevel));
  }

  /** The start-level table may be larger than a granule (stage-2 concatenation). */
  private tableBytes(level: number): number {
    const bits = level === this.startLevel ? this.inputBits - levelShift(this.granuleShift, level) : this.stride;
    return Math.max(2 ** bits * 8, 2 ** this.granuleShift);
  }

  private index(ia: number, level: number): number {
    const shift = levelShift(this.granuleShift, level);
    const bits = level === this.startLevel ? this.inputBits - shift : this.stride;
    return Math.floor(ia / 2 ** shift) % 2 ** bits;
  }

  private read(addr: number): [number, number] {
    return [this.mem.readU32(addr), this.mem.readU32(addr + 4)];
  }

  private write(addr: number, lo: number, hi: number): void {
    this.mem.writeU32(addr + 4, hi >>> 0);
    this.mem.writeU32(addr, lo >>> 0);
  }

  private output(lo: number, hi: number): number {
    return (hi & 0xffff) * TWO32 + ((lo & ~((1 << this.granuleShift) - 1)) >>> 0);
  }

  private writeOutput(addr: number, oa: number, lo: number, hi: number): void {
    this.write(addr, (lo | (oa % TWO32)) >>> 0, (hi | Math.floor(oa / TWO32)) >>> 0);
  }

  /**
   * Maps [ia, ia + size) to [oa, oa + size) with the largest blocks alignment allows. Throws
   * OverlapError (having mapped part of the range) when something is already mapped there.
   */
  map(ia: number, oa: number, size: number, attrs: LeafAttrs): void {
    const minSize = 2 ** this.granuleShift;
    if (ia % minSize || oa % minSize || size % minSize || size <= 0) throw new RangeError('map: unaligned range');
    if (ia + size > 2 ** this.inputBits) throw new RangeError('map: beyond the input range');
    let done = 0;
    while (done < size) {
      const a = ia + done;
      const o = oa + done;
      let level = this.startLevel;
      for (; level < 3; level++) {
        const blk = 2 ** levelShift(this.granuleShift, level);
        if (blockAllowed(this.granuleShift, level) && a % blk === 0 && o % blk === 0 && size - done >= blk) break;
      }
      try {
        this.install(a, o, level, attrs);
      } catch (e) {
        if (e instanceof OverlapError) e.mapped = done;
        throw e;
      }
      done += 2 ** levelShift(this.granuleShift, level);
    }
  }

  private install(ia: number, oa: number, target: number, attrs: LeafAttrs): void {
    let table = this.root;
    for (let level = this.startLevel; level < target; level++) {
      const addr = table + this.index(ia, level) * 8;
      const [lo, hi] = this.read(addr);
      if ((lo & 1) === 0) {
        const next = this.mem.allocTable(this.tableBytes(level + 1));
        this.writeOutput(addr, next, 3, 0);
        table = next;
      } else if ((lo & 2) === 0) {
        throw new OverlapError(ia);
      } else {
        table = this.output(lo, hi);
      }
    }
    const addr = table + this.index(ia, target) * 8;
    if ((this.mem.readU32(addr) & 1) !== 0) throw new OverlapError(ia);
    this.writeOutput(addr, oa, attrs.lo | (target === 3 ? 3 : 1), attrs.hi);
  }

  /** Unmaps [ia, ia + size), splitting blocks that straddle its ends; returns the bytes that were mapped. */
  unmap(ia: number, size: number): number {
    let unmapped = 0;
    let a = ia;
    const end = ia + size;
    while (a < end) {
      let table = this.root;
      let level = this.startLevel;
      for (;;) {
        const shift = levelShift(this.granuleShift, level);
        const span = 2 ** shift;
        const addr = table + this.index(a, level) * 8;
        const [lo, hi] = this.read(addr);
        if ((lo & 1) === 0) {
          a = Math.min(end, (Math.floor(a / span) + 1) * span);
          break;
        }
        if (level < 3 && (lo & 2) !== 0) {
          table = this.output(lo, hi);
          level++;
          continue;
        }
        const base = Math.floor(a / span) * span;
        if (base === a && a + span <= end) {
          this.write(addr, 0, 0);
          unmapped += span;
          a += span;
          break;
        }
        // Split the block one level down and retry this address.
        const next = this.mem.allocTable(this.tableBytes(level + 1));
        const childSpan = 2 ** levelShift(this.granuleShift, level + 1);
        // Every block span is at most 1 GiB, so its offset bits lie in the low word.
        const oaBase = (hi & 0xffff) * TWO32 + ((lo & ~(span - 1)) >>> 0);
        const attrLo = lo & 0xffc;
        const attrHi = hi & 0xfff0_0000;
        const childType = level + 1 === 3 ? 3 : 1;
        for (let i = 0; i < 2 ** this.stride; i++) {
          this.writeOutput(next + i * 8, oaBase + i * childSpan, attrLo | childType, attrHi);
        }
        this.writeOutput(addr, next, 3, 0);
      }
    }
    return unmapped;
  }

  /** The output address for `ia`, or undefined when not mapped (no permission or AF checks). */
  lookup(ia: number): number | undefined {
    let table = this.root;
    for (let level = this.startLevel; level <= 3; level++) {
      const [lo, hi] = this.read(table + this.index(ia, level) * 8);
      if ((lo & 1) === 0) return undefined;
      if (level < 3 && (lo & 2) !== 0) {
        table = this.output(lo, hi);
        continue;
      }
      const span = 2 ** levelShift(this.granuleShift, level);
      const base = (hi & 0xffff) * TWO32 + ((lo & ~(span - 1)) >>> 0);
      return base + (ia % span);
    }
    return undefined;
  }
}
