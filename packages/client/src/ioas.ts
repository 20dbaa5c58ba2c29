// IOAS: an I/O address space. For a VMM it is guest physical memory: map guest RAM at
// IOVA = guest physical address (spec 9.2), then build HWPTs on it.

import {
  IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP, iommu_ioas_iova_ranges, iommu_ioas_map, iommu_ioas_unmap, iommu_iova_range,
} from '@viommu/uapi';
import type { Device } from './device.js';
import type { Hwpt, HwptOptions } from './hwpt.js';
import { ClientObject } from './object.js';

export interface MapOptions {
  /** Map at this IOVA (FIXED_IOVA); otherwise the kernel picks one. */
  iova?: bigint;
  /** Default true. */
  readable?: boolean;
  /** Default true. */
  writeable?: boolean;
}

export interface IovaRange {
  readonly start: bigint;
  /** Inclusive. */
  readonly last: bigint;
}

export class Ioas extends ClientObject {
  /** IOAS_MAP of `length` bytes of this process's memory at `userVa`; returns the IOVA used. */
  map(userVa: bigint, length: number | bigint, opts: MapOptions = {}): bigint {
    let flags = 0;
    if (opts.readable ?? true) flags |= IOMMU_IOAS_MAP_READABLE;
    if (opts.writeable ?? true) flags |= IOMMU_IOAS_MAP_WRITEABLE;
    if (opts.iova !== undefined) flags |= IOMMU_IOAS_MAP_FIXED_IOVA;
    return this.iommufd.call('map', this.label, IOMMU_IOAS_MAP, iommu_ioas_map, {
      ioas_id: this.id, flags, user_va: userVa, length: BigInt(length), iova: opts.iova ?? 0n,
    }).iova;
  }

  /** IOAS_UNMAP; returns the bytes unmapped. With no arguments, unmaps everything. */
  unmap(iova = 0n, length: number | bigint = (1n << 64n) - 1n): bigint {
    return this.iommufd.call('unmap', this.label, IOMMU_IOAS_UNMAP, iommu_ioas_unmap, { ioas_id: this.id, iova, length: BigInt(length) }).length;
  }

  /** IOAS_IOVA_RANGES: the usable IOVA ranges (they change with every attach and detach) and the required alignment. */
  iovaRanges(): { ranges: IovaRange[]; alignment: bigint } {
    // First ask with no buffer: the kernel answers EMSGSIZE with the count, or 0 ranges fit.
    const probe = iommu_ioas_iova_ranges.encode({ ioas_id: this.id, num_iovas: 0 });
    try {
      this.iommufd.ioctlBytes('iovaRanges', this.label, IOMMU_IOAS_IOVA_RANGES, probe);
    } catch (e) {
      if ((e as { code?: string }).code !== 'EMSGSIZE') throw e;
    }
    const n = iommu_ioas_iova_ranges.get(probe, 'num_iovas');
    const buf = this.iommufd.process.memory.alloc(Math.max(n, 1) * iommu_iova_range.size);
    try {
      const bytes = iommu_ioas_iova_ranges.encode({ ioas_id: this.id, num_iovas: n, allowed_iovas: buf.addr });
      this.iommufd.ioctlBytes('iovaRanges', this.label, IOMMU_IOAS_IOVA_RANGES, bytes);
      const ranges: IovaRange[] = [];
      for (let i = 0; i < iommu_ioas_iova_ranges.get(bytes, 'num_iovas'); i++) {
        const r = iommu_iova_range.decode(buf.bytes, i * iommu_iova_range.size);
        ranges.push({ start: r.start, last: r.last });
      }
      return { ranges, alignment: iommu_ioas_iova_ranges.get(bytes, 'out_iova_alignment') };
    } finally {
      this.iommufd.process.memory.free(buf.addr);
    }
  }

  /** HWPT_ALLOC of a paging HWPT on this IOAS for `device`. */
  allocHwpt(device: Device, opts: HwptOptions = {}): Hwpt {
    return this.iommufd.allocHwpt(device, this, opts);
  }

  /** The stage-2 of nested translation: a paging HWPT with NEST_PARENT (spec 9.4 step 9). */
  allocNestParent(device: Device, opts: Omit<HwptOptions, 'nestParent'> = {}): Hwpt {
    return this.iommufd.allocHwpt(device, this, { ...opts, nestParent: true });
  }
}
