// Host (v1, "AMD IOMMU page table") and guest (v2, x86-64 4/5-level) page tables in their
// architectural formats, written through a TableMemory (host physical memory for host domains,
// guest RAM by GPA for tests building a guest's tables). 4 KiB leaves only when mapping; the
// hardware walker (hw/walk.ts) also understands large leaves written by others.
// Entries are handled as two u32 halves so no bigint is needed: bits 63:32 are the high word.

import { FRAME_SIZE, MapOverlapError, type TableMemory } from '@viommu/core';

// Host tables live in core's PhysicalTableMemory; re-exported so this package's API keeps its names.
export { PhysicalTableMemory, type TableMemory } from '@viommu/core';

// v1 (host) PTE bits.
export const V1_PR = 1 << 0;
export const V1_NEXT_LEVEL_SHIFT = 9;
/** High-word bits: FC 60, IR 61, IW 62. */
export const V1_HI_FC = 1 << 28;
export const V1_HI_IR = 1 << 29;
export const V1_HI_IW = 1 << 30;

// v2 (guest, x86-64) PTE bits.
export const V2_P = 1 << 0;
export const V2_RW = 1 << 1;
export const V2_US = 1 << 2;
export const V2_A = 1 << 5;
export const V2_D = 1 << 6;
export const V2_PS = 1 << 7;
export const V2_HI_NX = 1 << 31;

export type Format = 'v1' | 'v2';

/** Read/write permission of a mapping (both formats). */
export const PERM_R = 1;
export const PERM_W = 2;

const ADDR_LO_MASK = 0xffff_f000;
const ADDR_HI_MASK = 0x000f_ffff;
const TWO32 = 2 ** 32;

export const lowWord = (addr: number): number => (addr % TWO32) & ADDR_LO_MASK;
export const highWord = (addr: number): number => Math.floor(addr / TWO32) & ADDR_HI_MASK;
export const entryAddr = (lo: number, hi: number): number => (hi & ADDR_HI_MASK) * TWO32 + ((lo & ADDR_LO_MASK) >>> 0);

/** A present entry (or a large leaf) in the way of a map; `mapped` says how much the call had done. */
export class OverlapError extends MapOverlapError {}

export class PageTable {
  readonly root: number;

  constructor(
    readonly mem: TableMemory,
    readonly format: Format,
    /** Number of levels (v1: DTE Mode 1-6; v2: 4 or 5). */
    readonly levels: number,
  ) {
    this.root = mem.allocTable();
  }

  private pde(level: number): [number, number] {
    // level = the 0-based level of the table the entry points to.
    if (this.format === 'v1') return [V1_PR | ((level + 1) << V1_NEXT_LEVEL_SHIFT), V1_HI_IR | V1_HI_IW];
    return [V2_P | V2_RW | V2_US | V2_A, 0];
  }

  private leaf(perm: number): [number, number] {
    if (this.format === 'v1') return [V1_PR, ((perm & PERM_R) !== 0 ? V1_HI_IR : 0) | ((perm & PERM_W) !== 0 ? V1_HI_IW : 0)];
    return [V2_P | V2_US | V2_A | ((perm & PERM_W) !== 0 ? V2_RW | V2_D : 0), 0];
  }

  /** The address of the level-0 entry for `iova`, creating tables when `alloc`; -1 when absent. */
  private leafSlot(iova: number, alloc: boolean): number {
    let table = this.root;
    for (let level = this.levels - 1; level > 0; level--) {
      const at = table + indexAt(iova, level) * 8;
      const lo = this.mem.readU32(at);
      const hi = this.mem.readU32(at + 4);
      if ((lo & 1) === 0) {
        if (!alloc) return -1;
        const next = this.mem.allocTable();
        const [plo, phi] = this.pde(level - 1);
        this.mem.writeU32(at + 4, (phi | highWord(next)) >>> 0);
        this.mem.writeU32(at, (plo | lowWord(next)) >>> 0);
        table = next;
        continue;
      }
      if (this.format === 'v1' ? ((lo >>> V1_NEXT_LEVEL_SHIFT) & 7) === 0 : (lo & V2_PS) !== 0) throw new OverlapError(`large page at 0x${iova.toString(16)}`);
      table = entryAddr(lo, hi);
    }
    return table + indexAt(iova, 0) * 8;
  }

  /** Maps [iova, iova + length) to pa in 4 KiB pages; EEXIST-style OverlapError on a present entry (mapped pages stay). */
  map(iova: number, pa: number, length: number, perm: number): void {
    const [llo, lhi] = this.leaf(perm);
    for (let off = 0; off < length; off += FRAME_SIZE) {
      const slot = this.leafSlot(iova + off, true);
      if ((this.mem.readU32(slot) & 1) !== 0) {
        const e = new OverlapError(`0x${(iova + off).toString(16)} is mapped`);
        e.mapped = off;
        throw e;
      }
      this.mem.writeU32(slot + 4, (lhi | highWord(pa + off)) >>> 0);
      this.mem.writeU32(slot, (llo | lowWord(pa + off)) >>> 0);
    }
  }

  /** Unmaps 4 KiB pages in [iova, iova + length); returns the bytes that were mapped (stops at the first hole). */
  unmap(iova: number, length: number): number {
    let done = 0;
    for (let off = 0; off < length; off += FRAME_SIZE) {
      const slot = this.leafSlot(iova + off, false);
      if (slot < 0 || (this.mem.readU32(slot) & 1) === 0) break;
      this.mem.writeU32(slot, 0);
      this.mem.writeU32(slot + 4, 0);
      done += FRAME_SIZE;
    }
    return done;
  }

  /** Software lookup of a 4 KiB mapping (iova_to_phys). */
  lookup(iova: number): number | undefined {
    const slot = this.leafSlot(iova, false);
    if (slot < 0) return undefined;
    const lo = this.mem.readU32(slot);
    if ((lo & 1) === 0) return undefined;
    return entryAddr(lo, this.mem.readU32(slot + 4)) + (iova % FRAME_SIZE);
  }

  /** Rewrites a present leaf to a new page (tests: a guest remapping a page). */
  remap(iova: number, pa: number, perm: number): void {
    const slot = this.leafSlot(iova, true);
    const [llo, lhi] = this.leaf(perm);
    this.mem.writeU32(slot + 4, (lhi | highWord(pa)) >>> 0);
    this.mem.writeU32(slot, (llo | lowWord(pa)) >>> 0);
  }
}

/** Index of `addr` in a table of 0-based level `level` (9 bits per level above the 4 KiB offset). */
export function indexAt(addr: number, level: number): number {
  return Math.floor(addr / 2 ** (12 + 9 * level)) % 512;
}
