// Device Table Entry (256 bits = 4 little-endian u64, indexed by DeviceID; AMD IOMMU spec and
// drivers/iommu/amd/amd_iommu_types.h). Pure encode/decode: tests compare golden bytes.
import { bit, bytesToQwords, num, qwordsToBytes } from '@viommu/core';

export const DTE_SIZE = 32;

/** The DTE fields this model uses; everything else is carried in `raw` by the callers that need it. */
export interface Dte {
  v: boolean;
  tv: boolean;
  /** Host access/dirty update (2 bits). */
  had: number;
  /** Host page-table levels (0 = no host translation). */
  mode: number;
  /** Host page-table root (4 KiB aligned physical address). */
  hostRoot: number;
  ppr: boolean;
  giov: boolean;
  gv: boolean;
  /** GCR3 table levels - 1 (3 reserved). */
  glx: number;
  /** GCR3 table root (4 KiB aligned; a GPA when the DTE nests). */
  gcr3: number;
  ir: boolean;
  iw: boolean;
  domainId: number;
  /** Device IOTLB (ATS) enable. */
  i: boolean;
  /** Suppress all I/O page fault events (the kernel's DTE_FLAG_SA / "no page fault"). */
  sa: boolean;
  iv: boolean;
  intTabLen: number;
  intTableRoot: number;
  intCtl: number;
  /** Guest paging mode: 0 = 4-level, 1 = 5-level (2, 3 reserved). */
  gpm: number;
  /** u64[3]: no upstream field; kept verbatim. */
  dw3: bigint;
}

const B = (v: boolean, n: number): bigint => (v ? 1n << BigInt(n) : 0n);
const F = (v: number | bigint, shift: number, width: number): bigint => (BigInt(v) & ((1n << BigInt(width)) - 1n)) << BigInt(shift);

export const DTE_ZERO: Readonly<Dte> = Object.freeze({
  v: false, tv: false, had: 0, mode: 0, hostRoot: 0, ppr: false, giov: false, gv: false, glx: 0, gcr3: 0, ir: false, iw: false,
  domainId: 0, i: false, sa: false, iv: false, intTabLen: 0, intTableRoot: 0, intCtl: 0, gpm: 0, dw3: 0n,
});

export function encodeDteQwords(d: Partial<Dte>): [bigint, bigint, bigint, bigint] {
  const e = { ...DTE_ZERO, ...d };
  const g = BigInt(e.gcr3);
  const q0 = B(e.v, 0) | B(e.tv, 1) | F(e.had, 7, 2) | F(e.mode, 9, 3) | (BigInt(e.hostRoot) & 0x000f_ffff_ffff_f000n) |
    B(e.ppr, 52) | B(e.giov, 54) | B(e.gv, 55) | F(e.glx, 56, 2) | F(g >> 12n, 58, 3) | B(e.ir, 61) | B(e.iw, 62);
  const q1 = F(e.domainId, 0, 16) | F(g >> 15n, 16, 16) | B(e.i, 32) | B(e.sa, 34) | F(g >> 31n, 43, 21);
  const q2 = B(e.iv, 0) | F(e.intTabLen, 1, 4) | (BigInt(e.intTableRoot) & 0x000f_ffff_ffff_ffc0n) | F(e.gpm, 54, 2) | F(e.intCtl, 60, 2);
  return [q0, q1, q2, BigInt.asUintN(64, e.dw3)];
}

export function decodeDteQwords(q: readonly bigint[]): Dte {
  const [q0 = 0n, q1 = 0n, q2 = 0n, q3 = 0n] = q;
  // Fields as [lo, hi] bit ranges of each qword (core's field helpers).
  const gcr3 = (num(q0, 58, 60) * 2 ** 12) + (num(q1, 16, 31) * 2 ** 15) + (num(q1, 43, 63) * 2 ** 31);
  return {
    v: bit(q0, 0), tv: bit(q0, 1), had: num(q0, 7, 8), mode: num(q0, 9, 11), hostRoot: num(q0, 12, 51) * 4096, ppr: bit(q0, 52),
    giov: bit(q0, 54), gv: bit(q0, 55), glx: num(q0, 56, 57), gcr3, ir: bit(q0, 61), iw: bit(q0, 62), domainId: num(q1, 0, 15),
    i: bit(q1, 32), sa: bit(q1, 34), iv: bit(q2, 0), intTabLen: num(q2, 1, 4), intTableRoot: num(q2, 6, 51) * 64, gpm: num(q2, 54, 55),
    intCtl: num(q2, 60, 61), dw3: q3,
  };
}

export const encodeDte = (d: Partial<Dte>): Uint8Array => qwordsToBytes(encodeDteQwords(d));
export const decodeDte = (b: Uint8Array): Dte => decodeDteQwords(bytesToQwords(b.subarray(0, DTE_SIZE)));

// Field masks of the guest DTE (iommu_hwpt_amd_guest.dte), as the dormant nested code reads them.
export const DTE_MODE_MASK = 0x7n << 9n;
export const DTE_HOST_TRP = 0x000f_ffff_ffff_f000n;
export const DTE_FLAG_V = 1n;
export const DTE_FLAG_PPR = 1n << 52n;
export const DTE_FLAG_GIOV = 1n << 54n;
export const DTE_FLAG_GV = 1n << 55n;
export const DTE_GLX = 0x3n << 56n;
export const DTE_GCR3_14_12 = 0x7n << 58n;
export const DTE_GCR3_30_15 = 0xffffn << 16n;
export const DTE_GCR3_51_31 = 0x1f_ffffn << 43n;
export const DTE_DOMID_MASK = 0xffffn;
export const DTE_GPT_LEVEL_MASK = 0x3n << 54n;

// GCR3 table entries: bit 0 valid, [51:12] next-level table or (level 0) the guest CR3.
export const GCR3_VALID = 1;
export function encodeGcr3Entry(valid: boolean, addr: number): bigint {
  return (BigInt(addr) & 0x000f_ffff_ffff_f000n) | (valid ? 1n : 0n);
}
export function decodeGcr3Entry(q: bigint): { valid: boolean; addr: number } {
  return { valid: (q & 1n) === 1n, addr: Number(q & 0x000f_ffff_ffff_f000n) };
}
