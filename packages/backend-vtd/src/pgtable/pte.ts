// Page-table entry bits (64-bit entries, 512 per 4 KiB table, 9 index bits per level from bit 12).
// First stage: the x86-64 format; second stage: VT-d's own (generic_pt fmt/x86_64.h and vtdss.h
// name the same bits). The walkers read entries as two 32-bit halves, so the constants are split.

// First stage (low half)
export const FS_P = 1 << 0;
export const FS_RW = 1 << 1;
export const FS_US = 1 << 2;
export const FS_PWT = 1 << 3;
export const FS_PCD = 1 << 4;
export const FS_A = 1 << 5;
export const FS_D = 1 << 6;
export const FS_PS = 1 << 7;
export const FS_G = 1 << 8;
/** XD is bit 63: bit 31 of the high half. */
export const FS_XD_HI = 0x8000_0000;

// Second stage (low half)
export const SS_R = 1 << 0;
export const SS_W = 1 << 1;
export const SS_X = 1 << 2;
export const SS_PS = 1 << 7;
export const SS_A = 1 << 8;
export const SS_D = 1 << 9;
export const SS_SNP = 1 << 11;

/** Address bits 51:12 as split halves. */
export const ADDR_LO_MASK = 0xffff_f000;
export const ADDR_HI_MASK = 0x000f_ffff;
/** Bits 62:52 of either format: ignored/reserved; the model treats them as reserved (faults). */
export const RSVD_HI_MASK = 0x7ff0_0000;

export const LEVEL_BITS = 9;
export const PAGE_SHIFT = 12;

/** Shift of the region one entry at `level` maps (level 1 = 4 KiB PTE, 2 = 2 MiB, 3 = 1 GiB, ...). */
export function levelShift(level: number): number {
  return PAGE_SHIFT + (level - 1) * LEVEL_BITS;
}

/** Table index of `addr` at `level` (addr below 2^53). */
export function levelIndex(addr: number, level: number): number {
  return Math.floor(addr / 2 ** levelShift(level)) % 512;
}

/** The output address of an entry from its two halves. */
export function entryAddr(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * 0x1_0000_0000 + ((lo & ADDR_LO_MASK) >>> 0);
}

/** Splits a 4 KiB-aligned physical address into entry halves. */
export function addrLo(pa: number): number {
  return (pa % 0x1_0000_0000) >>> 0;
}

export function addrHi(pa: number): number {
  return Math.floor(pa / 0x1_0000_0000);
}

/** Encodes a whole entry as a bigint (for golden tests and readers of raw bytes). */
export function entryQword(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
