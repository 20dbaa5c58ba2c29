// mmap regions of the iommufd (spec section 8): physical pages a vIOMMU registers (e.g. Tegra241's
// VINTF page 0), handed out at offsets from a lowest-free range allocator over [PAGE_SIZE, 2^64).

import { SystemError, PAGE_SIZE } from '@viommu/uapi';
import type { IommufdObject } from './object/object.js';

export interface MmapRegion {
  /** Byte offset userspace passes to mmap. */
  readonly offset: bigint;
  readonly length: number;
  /** Physical address of the region's first byte (page aligned). */
  readonly pa: number;
  /** The object the region belongs to; each live mapping holds a users reference on it. */
  readonly owner: IommufdObject;
}

export class MmapRegistry {
  private readonly regions: MmapRegion[] = []; // sorted by offset

  /** Registers a region, returning its offset (the lowest free page-aligned range at or above PAGE_SIZE). */
  add(owner: IommufdObject, pa: number, length: number): bigint {
    if (length <= 0 || length % PAGE_SIZE !== 0 || pa % PAGE_SIZE !== 0) throw new SystemError('EINVAL', 'ioctl', 'mmap region not page aligned');
    let at = BigInt(PAGE_SIZE);
    let i = 0;
    for (; i < this.regions.length; i++) {
      const r = this.regions[i]!;
      if (at + BigInt(length) <= r.offset) break;
      at = r.offset + BigInt(r.length);
    }
    const region: MmapRegion = { offset: at, length, pa, owner };
    this.regions.splice(i, 0, region);
    return at;
  }

  remove(offset: bigint): void {
    const i = this.regions.findIndex((r) => r.offset === offset);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** Removes every region of `owner` (its destroy). */
  removeOwner(owner: IommufdObject): void {
    for (let i = this.regions.length - 1; i >= 0; i--) if (this.regions[i]!.owner === owner) this.regions.splice(i, 1);
  }

  find(offset: bigint): MmapRegion | undefined {
    return this.regions.find((r) => r.offset === offset);
  }

  get count(): number {
    return this.regions.length;
  }
}
