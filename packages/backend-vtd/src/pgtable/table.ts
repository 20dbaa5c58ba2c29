// A page-table builder over any table memory: the host's PhysicalMemory for host domains, or a
// guest's RAM (addressed by GPA) for the guest first stage the tests and benchmarks build. 4 KiB
// leaves only (the domains report a 4 KiB page size); the walkers also handle large pages a guest
// may build by hand.
import { MapOverlapError, type TableMemory } from '@viommu/core';
import { addrHi, addrLo, entryAddr, levelIndex, levelShift } from './pte.js';

export type { TableMemory } from '@viommu/core';

/** A present leaf in the way of a map; `mapped` says how much the call had done. */
export class OverlapError extends MapOverlapError {}

export interface TableFormat {
  /** Low-half bits of a non-leaf entry (present + the widest rights). */
  readonly tableBits: number;
  /** Whether an entry's low half says present. */
  present(lo: number): boolean;
}

export const FS_FORMAT: TableFormat = { tableBits: 0x7 /* P | RW | US */, present: (lo) => (lo & 1) !== 0 };
export const SS_FORMAT: TableFormat = { tableBits: 0x3 /* R | W */, present: (lo) => (lo & 3) !== 0 };

export class PageTable {
  readonly root: number;

  constructor(
    private readonly mem: TableMemory,
    readonly format: TableFormat,
    /** 4 or 5. */
    readonly levels: number,
  ) {
    this.root = mem.allocTable();
  }

  /** The last level table holding `iova`'s leaf, creating tables on the way when `create`. */
  private leafTable(iova: number, create: boolean): number | undefined {
    let table = this.root;
    for (let level = this.levels; level > 1; level--) {
      const e = table + levelIndex(iova, level) * 8;
      const lo = this.mem.readU32(e);
      if (!this.format.present(lo)) {
        if (!create) return undefined;
        const next = this.mem.allocTable();
        this.mem.writeU32(e + 4, addrHi(next));
        this.mem.writeU32(e, (addrLo(next) | this.format.tableBits) >>> 0);
        table = next;
        continue;
      }
      table = entryAddr(lo, this.mem.readU32(e + 4));
    }
    return table;
  }

  /** Maps [iova, iova + length) to [pa, ...) in 4 KiB leaves with the given entry bits; throws OverlapError (after mapping a prefix) on a present leaf. */
  map(iova: number, pa: number, length: number, leafLo: number, leafHi = 0): number {
    let done = 0;
    while (done < length) {
      const va = iova + done;
      const t = this.leafTable(va, true)!;
      const e = t + levelIndex(va, 1) * 8;
      if (this.format.present(this.mem.readU32(e))) {
        const err = new OverlapError(`IOVA 0x${va.toString(16)} is already mapped`);
        err.mapped = done;
        throw err;
      }
      const out = pa + done;
      this.mem.writeU32(e + 4, (addrHi(out) | leafHi) >>> 0);
      this.mem.writeU32(e, (addrLo(out) | leafLo) >>> 0);
      done += 4096;
    }
    return done;
  }

  /** Clears the leaves of [iova, iova + length); returns the bytes that were mapped. */
  unmap(iova: number, length: number): number {
    let n = 0;
    for (let va = iova; va < iova + length; va += 4096) {
      const t = this.leafTable(va, false);
      if (t === undefined) continue;
      const e = t + levelIndex(va, 1) * 8;
      if (!this.format.present(this.mem.readU32(e))) continue;
      this.mem.writeU32(e, 0);
      this.mem.writeU32(e + 4, 0);
      n += 4096;
    }
    return n;
  }

  /** Rewrites the leaf of `iova` (present or not): for tests that change a mapping behind the IOMMU's back. */
  setLeaf(iova: number, pa: number, leafLo: number, leafHi = 0): void {
    const t = this.leafTable(iova, true)!;
    const e = t + levelIndex(iova, 1) * 8;
    this.mem.writeU32(e + 4, (addrHi(pa) | leafHi) >>> 0);
    this.mem.writeU32(e, (addrLo(pa) | leafLo) >>> 0);
  }

  /** Physical address of the 4 KiB leaf entry of `iova` when its tables exist (it may be non-present). */
  leafEntry(iova: number): number | undefined {
    const t = this.leafTable(iova, false);
    return t === undefined ? undefined : t + levelIndex(iova, 1) * 8;
  }

  /** The output address of `iova` by a plain walk (no permission checks), or undefined. */
  lookup(iova: number): number | undefined {
    let table = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const e = table + levelIndex(iova, level) * 8;
      const lo = this.mem.readU32(e);
      if (!this.format.present(lo)) return undefined;
      const out = entryAddr(lo, this.mem.readU32(e + 4));
      if (level === 1 || (lo & 0x80) !== 0) return out + (iova % 2 ** levelShift(level));
      table = out;
    }
    return undefined;
  }
}
