// Context Descriptor: 64 bytes, 8 dwords (vendors.md 2.4). In nesting it is owned by the guest and
// the kernel never reads it; only the hardware model does.
import { type BitField, bytesFromWords, readFields, wordsFromBytes, writeFields } from './bits.js';

export const CD_SIZE = 64;

export interface Cd {
  t0sz: number;
  /** TCR.TG0 encoding: 0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB. */
  tg0: number;
  irgn0: number;
  orgn0: number;
  sh0: number;
  epd0: boolean;
  endi: boolean;
  t1sz: number;
  tg1: number;
  irgn1: number;
  orgn1: number;
  sh1: number;
  epd1: boolean;
  v: boolean;
  ips: number;
  affd: boolean;
  tbi0: boolean;
  tbi1: boolean;
  aa64: boolean;
  hd: boolean;
  ha: boolean;
  s: boolean;
  r: boolean;
  a: boolean;
  aset: boolean;
  asid: number;
  had0: boolean;
  haft: boolean;
  ttb0: number;
  had1: boolean;
  ttb1: number;
  /** The 64-bit MAIR as two halves (attributes are not modelled, only carried). */
  mairLo: number;
  mairHi: number;
}

export function emptyCd(): Cd {
  return {
    t0sz: 0, tg0: 0, irgn0: 0, orgn0: 0, sh0: 0, epd0: false, endi: false, t1sz: 0, tg1: 0, irgn1: 0,
    orgn1: 0, sh1: 0, epd1: false, v: false, ips: 0, affd: false, tbi0: false, tbi1: false, aa64: false,
    hd: false, ha: false, s: false, r: false, a: false, aset: false, asid: 0, had0: false, haft: false,
    ttb0: 0, had1: false, ttb1: 0, mairLo: 0, mairHi: 0,
  };
}

/** Field positions, one row per field of the record. */
const CD_FIELDS: readonly BitField<Cd>[] = [
  { key: 't0sz', d: 0, hi: 5, lo: 0 },
  { key: 'tg0', d: 0, hi: 7, lo: 6 },
  { key: 'irgn0', d: 0, hi: 9, lo: 8 },
  { key: 'orgn0', d: 0, hi: 11, lo: 10 },
  { key: 'sh0', d: 0, hi: 13, lo: 12 },
  { key: 'epd0', d: 0, bit: 14 },
  { key: 'endi', d: 0, bit: 15 },
  { key: 't1sz', d: 0, hi: 21, lo: 16 },
  { key: 'tg1', d: 0, hi: 23, lo: 22 },
  { key: 'irgn1', d: 0, hi: 25, lo: 24 },
  { key: 'orgn1', d: 0, hi: 27, lo: 26 },
  { key: 'sh1', d: 0, hi: 29, lo: 28 },
  { key: 'epd1', d: 0, bit: 30 },
  { key: 'v', d: 0, bit: 31 },
  { key: 'ips', d: 0, hi: 34, lo: 32 },
  { key: 'affd', d: 0, bit: 35 },
  { key: 'tbi0', d: 0, bit: 38 },
  { key: 'tbi1', d: 0, bit: 39 },
  { key: 'aa64', d: 0, bit: 41 },
  { key: 'hd', d: 0, bit: 42 },
  { key: 'ha', d: 0, bit: 43 },
  { key: 's', d: 0, bit: 44 },
  { key: 'r', d: 0, bit: 45 },
  { key: 'a', d: 0, bit: 46 },
  { key: 'aset', d: 0, bit: 47 },
  { key: 'asid', d: 0, hi: 63, lo: 48 },
  { key: 'had0', d: 1, bit: 1 },
  { key: 'haft', d: 1, bit: 3 },
  { key: 'ttb0', d: 1, hi: 51, lo: 4, addr: true },
  { key: 'had1', d: 2, bit: 1 },
  { key: 'ttb1', d: 2, hi: 51, lo: 4, addr: true },
  { key: 'mairLo', d: 3, hi: 31, lo: 0 },
  { key: 'mairHi', d: 3, hi: 63, lo: 32 },
];

export function decodeCd(w: Uint32Array): Cd {
  return readFields(w, CD_FIELDS, emptyCd());
}

export function encodeCdWords(c: Partial<Cd>): Uint32Array {
  const f = { ...emptyCd(), ...c };
  const w = new Uint32Array(16);
  return writeFields(w, CD_FIELDS, f);
}

export function encodeCd(c: Partial<Cd>): Uint8Array {
  return bytesFromWords(encodeCdWords(c));
}

export function cdFromBytes(bytes: Uint8Array): Cd {
  return decodeCd(wordsFromBytes(bytes.subarray(0, CD_SIZE), new Uint32Array(16)));
}
