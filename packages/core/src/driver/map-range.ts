// The all-or-nothing contract of a domain's map (the IOMMU core's iommu_map): a range either
// becomes mapped as a whole, or what this call mapped before it failed is taken back. Backends'
// page-table builders report a present entry in the way with a MapOverlapError.
import { SystemError } from '@viommu/uapi';

/** A map met an entry that is already present; the call had mapped `mapped` bytes before it. */
export class MapOverlapError extends Error {
  /** Bytes from the start of the map call that were mapped before the present entry. */
  mapped = 0;
}

/** The part of a backend's page table that mapRange needs (addresses and lengths in bytes, below 2^53). */
export interface RangeTable<A> {
  map(iova: number, pa: number, length: number, attrs: A): void;
  /** Returns the bytes that were mapped. */
  unmap(iova: number, length: number): number;
}

/**
 * Maps [iova, iova + length) to pa with the leaf attributes `attrs`. On an overlap, unmaps what the
 * call had mapped and throws EEXIST; other errors pass through. The undo goes to the table, not
 * the domain: entries that were never visible to a device need no flush.
 */
export function mapRange<A>(table: RangeTable<A>, iova: number, pa: number, length: number, attrs: A): void {
  try {
    table.map(iova, pa, length, attrs);
  } catch (e) {
    if (!(e instanceof MapOverlapError)) throw e;
    if (e.mapped > 0) table.unmap(iova, e.mapped);
    throw new SystemError('EEXIST', 'ioctl', e.message);
  }
}
