// The selftest mock's paging domain (selftest.c's mock_iommu_domain over the amdv1 "mock" page
// table format): 2 KiB pages, the mock aperture, an optional huge variant (1 MiB and PAGE_SIZE
// pages, no aperture override) and a dirty bit per PTE. PTEs are kept in a Map keyed by the PTE's
// first IOVA in 2 KiB units (numbers, not strings), so lookups and dirty walks allocate nothing.

import {
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IOMMUPT_HUGE,
  MOCK_PAGE_SIZE,
  PAGE_SIZE,
  SystemError,
} from '@viommu/uapi';
import type { DirtyTracking, DomainGeometry } from '../driver/domain.js';
import type { DriverPagingDomain } from '../driver/driver.js';

const UNIT = MOCK_PAGE_SIZE; // 2 KiB: the smallest PTE and the key unit
/** The amdv1 mock format's input address width (hw_max_vasz_lg2 56): the aperture without the override. */
const VA_LAST = 2n ** 56n - 1n;

interface Pte {
  /** Physical address of the PTE's first byte. */
  pa: number;
  size: number;
  prot: number;
  dirty: boolean;
}

export class MockPagingDomain implements DriverPagingDomain {
  readonly kind = 'paging';
  readonly geometry: DomainGeometry;
  readonly dirty?: DirtyTracking;
  /** Set when the domain is freed, so a stale reference is visible in tests. */
  freed = false;
  private readonly ptes = new Map<number, Pte>();
  /** PTE sizes this domain uses, largest first. */
  private readonly sizes: readonly number[];
  private tracking = false;

  constructor(
    readonly nestParent: boolean,
    readonly pagetableType: number,
    dirtyTracking: boolean,
  ) {
    const huge = pagetableType === MOCK_IOMMUPT_HUGE;
    // In huge mode userspace provides huge pages only; PAGE_SIZE is there so the IOAS accepts the domain.
    this.sizes = huge ? [MOCK_HUGE_PAGE_SIZE, PAGE_SIZE] : [MOCK_PAGE_SIZE];
    this.geometry = {
      apertureStart: huge ? 0n : BigInt(MOCK_APERTURE_START),
      apertureLast: huge ? VA_LAST : BigInt(MOCK_APERTURE_LAST),
      pgsizeBitmap: huge ? BigInt(MOCK_HUGE_PAGE_SIZE | PAGE_SIZE) : BigInt(MOCK_PAGE_SIZE),
    };
    if (dirtyTracking) {
      const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
      this.dirty = {
        get enabled() {
          return self.tracking;
        },
        setEnabled: (enabled: boolean) => {
          this.tracking = enabled;
        },
        readAndClear: (iova, length, noClear, mark) => this.readAndClearDirty(iova, length, noClear, mark),
      };
    }
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    let at = Number(iova);
    let phys = Number(pa);
    const end = at + Number(length);
    if (at % UNIT || phys % UNIT || (end - at) % UNIT) throw new SystemError('EINVAL', 'ioctl', 'mock map not aligned to its page size');
    if (iova < this.geometry.apertureStart || iova + length - 1n > this.geometry.apertureLast) throw new SystemError('EINVAL', 'ioctl', 'mock map outside the aperture');
    const start = at;
    while (at < end) {
      const size = this.fittingSize(at, phys, end - at);
      if (size === 0 || this.keyOf(at) !== undefined) {
        this.unmap(BigInt(start), BigInt(at - start));
        throw new SystemError('EINVAL', 'ioctl', `mock map at 0x${at.toString(16)}: ${size === 0 ? 'no page size fits' : 'already mapped'}`);
      }
      this.ptes.set(at / UNIT, { pa: phys, size, prot, dirty: false });
      at += size;
      phys += size;
    }
  }

  unmap(iova: bigint, length: bigint): bigint {
    let at = Number(iova);
    const end = at + Number(length);
    let done = 0;
    while (at < end) {
      const key = this.keyOf(at);
      const pte = key === undefined ? undefined : this.ptes.get(key);
      if (key === undefined || !pte) {
        at += UNIT;
        continue;
      }
      this.ptes.delete(key);
      done += pte.size;
      at = key * UNIT + pte.size;
    }
    return BigInt(done);
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const at = Number(iova);
    const key = this.keyOf(at);
    if (key === undefined) return undefined;
    const pte = this.ptes.get(key)!;
    return BigInt(pte.pa + (at - key * UNIT));
  }

  /** The physical address `iova` translates to as a number, or -1 (the DMA fast path). */
  translate(iova: number): number {
    const key = this.keyOf(iova);
    if (key === undefined) return -1;
    const pte = this.ptes.get(key)!;
    return pte.pa + (iova - key * UNIT);
  }

  /** The PTE size covering `iova`, or 0 when unmapped. */
  pteSize(iova: number): number {
    const key = this.keyOf(iova);
    return key === undefined ? 0 : this.ptes.get(key)!.size;
  }

  /**
   * IOMMU_TEST_OP_DIRTY: marks the PTE holding `iova` dirty, as hardware would on a DMA write.
   * Returns false when nothing is mapped there.
   */
  setDirty(iova: number): boolean {
    const key = this.keyOf(iova);
    if (key === undefined) return false;
    this.ptes.get(key)!.dirty = true;
    return true;
  }

  free(): void {
    this.ptes.clear();
    this.freed = true;
  }

  private readAndClearDirty(iova: bigint, length: bigint, noClear: boolean, mark: (iova: bigint, length: bigint) => void): void {
    let at = Number(iova);
    const end = at + Number(length);
    while (at < end) {
      const key = this.keyOf(at);
      const pte = key === undefined ? undefined : this.ptes.get(key);
      if (key === undefined || !pte) {
        at += UNIT;
        continue;
      }
      if (pte.dirty) {
        mark(BigInt(key * UNIT), BigInt(pte.size));
        if (!noClear) pte.dirty = false;
      }
      at = key * UNIT + pte.size;
    }
  }

  /** The key of the PTE covering `iova`, or undefined. */
  private keyOf(iova: number): number | undefined {
    for (let i = 0; i < this.sizes.length; i++) {
      const size = this.sizes[i]!;
      const start = iova - (iova % size);
      const pte = this.ptes.get(start / UNIT);
      if (pte && pte.size === size) return start / UNIT;
    }
    return undefined;
  }

  /** The largest page size that fits at `iova`/`pa` with `left` bytes to go, or 0. */
  private fittingSize(iova: number, pa: number, left: number): number {
    for (let i = 0; i < this.sizes.length; i++) {
      const s = this.sizes[i]!;
      if (iova % s === 0 && pa % s === 0 && left >= s) return s;
    }
    return 0;
  }
}
