// Guest RAM as a VMM holds it: the simulated process's user memory, addressed by IPA from `base`,
// with a bump allocator and a TableMemory view for the guest's own stage-1 tables. Shared by the
// end-to-end test and the benchmark (in-repo only: not exported, not published).
import type { TableMemory } from '../pgtable/builder.js';

export interface GuestRam {
  /** Reserves `bytes` at an IPA aligned to `align`. */
  alloc(bytes: number, align?: number): number;
  /** The guest's table memory (tables aligned to their size). */
  readonly tables: TableMemory;
}

export function guestRam(bytes: Uint8Array, base: number): GuestRam {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let next = 0;
  const alloc = (size: number, align = 4096): number => {
    next = Math.ceil(next / align) * align;
    const ipa = base + next;
    next += size;
    return ipa;
  };
  return {
    alloc,
    tables: {
      readU32: (ipa) => view.getUint32(ipa - base, true),
      writeU32: (ipa, v) => view.setUint32(ipa - base, v, true),
      allocTable: (size) => alloc(size, size),
    },
  };
}
