// A small paging domain for the io page table's tests and benchmarks: it records mappings as
// extents, checks what the io page table promises (alignment to its smallest page size, no double
// mapping), translates, tracks dirty pages on demand, and can be told to fail the Nth map call.

import { SystemError } from '@viommu/uapi';
import type { DirtyTracking, DomainGeometry, PagingDomain } from '../driver/domain.js';
import { ULONG_MAX } from './types.js';

interface Extent {
  iova: bigint;
  last: bigint;
  pa: bigint;
  prot: number;
}

export interface TestDomainOptions {
  /** Page sizes bitmap; default 4 KiB | 2 MiB | 1 GiB. */
  pgsizeBitmap?: bigint;
  apertureStart?: bigint;
  apertureLast?: bigint;
  dirty?: boolean;
}

export class TestDomain implements PagingDomain {
  readonly geometry: DomainGeometry;
  readonly dirty?: DirtyTracking;
  /** Extents sorted by iova. */
  readonly extents: Extent[] = [];
  mapCalls = 0;
  /** When set, the map call with this 1-based number throws ENOMEM (then it resets). */
  failMapAt = 0;
  private readonly dirtyPages = new Set<bigint>();
  private dirtyState = { enabled: false };

  constructor(opts: TestDomainOptions = {}) {
    this.geometry = {
      apertureStart: opts.apertureStart ?? 0n,
      apertureLast: opts.apertureLast ?? ULONG_MAX,
      pgsizeBitmap: opts.pgsizeBitmap ?? (1n << 12n) | (1n << 21n) | (1n << 30n),
    };
    if (opts.dirty) {
      const state = { enabled: false };
      this.dirtyState = state;
      const pages = this.dirtyPages;
      const page = (): bigint => this.smallest;
      this.dirty = {
        setEnabled: (enabled: boolean) => {
          state.enabled = enabled;
        },
        get enabled() {
          return state.enabled;
        },
        readAndClear: (iova, length, noClear, mark) => {
          for (const p of [...pages].sort((a, b) => (a < b ? -1 : 1))) {
            if (p < iova || p > iova + length - 1n) continue;
            mark(p, page());
            if (!noClear) pages.delete(p);
          }
        },
      };
    }
  }

  get smallest(): bigint {
    const b = this.geometry.pgsizeBitmap;
    return b & -b;
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    this.mapCalls++;
    if (this.failMapAt && this.mapCalls === this.failMapAt) {
      this.failMapAt = 0;
      throw new SystemError('ENOMEM', 'ioctl', 'test domain: injected map failure');
    }
    const pg = this.smallest;
    if (iova % pg || pa % pg || length % pg || length <= 0n) throw new Error(`test domain: unaligned map 0x${iova.toString(16)} len 0x${length.toString(16)}`);
    if (iova < this.geometry.apertureStart || iova + length - 1n > this.geometry.apertureLast) throw new Error('test domain: map outside the aperture');
    const last = iova + length - 1n;
    const i = this.lowerBound(iova);
    const next = this.extents[i];
    if (next && next.iova <= last) throw new Error(`test domain: 0x${iova.toString(16)} is already mapped`);
    // Coalesce with the previous extent when contiguous in both spaces, as a page table would not care.
    const prev = this.extents[i - 1];
    if (prev && prev.last + 1n === iova && prev.pa + (iova - prev.iova) === pa && prev.prot === prot) prev.last = last;
    else this.extents.splice(i, 0, { iova, last, pa, prot });
  }

  unmap(iova: bigint, length: bigint): bigint {
    const last = iova + length - 1n;
    let unmapped = 0n;
    const keep: Extent[] = [];
    for (const e of this.extents) {
      if (e.last < iova || e.iova > last) {
        keep.push(e);
        continue;
      }
      if (e.iova < iova) keep.push({ iova: e.iova, last: iova - 1n, pa: e.pa, prot: e.prot });
      if (e.last > last) keep.push({ iova: last + 1n, last: e.last, pa: e.pa + (last + 1n - e.iova), prot: e.prot });
      const from = e.iova > iova ? e.iova : iova;
      const to = e.last < last ? e.last : last;
      unmapped += to - from + 1n;
    }
    this.extents.length = 0;
    this.extents.push(...keep);
    return unmapped;
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const e = this.extents[this.lowerBound(iova)];
    return e && e.iova <= iova ? e.pa + (iova - e.iova) : undefined;
  }

  /** Bytes mapped in total. */
  get mappedBytes(): bigint {
    let n = 0n;
    for (const e of this.extents) n += e.last - e.iova + 1n;
    return n;
  }

  /** Marks the page holding `iova` dirty, as a device write would (only while tracking). */
  touch(iova: bigint): void {
    if (this.dirtyState.enabled) this.dirtyPages.add(iova - (iova % this.smallest));
  }

  /** Index of the first extent whose last >= iova. */
  private lowerBound(iova: bigint): number {
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.extents[mid]!.last < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
