// Context Descriptor: 64 bytes, 8 dwords (vendors.md 2.4). In nesting it is owned by the guest and
// the kernel never reads it; only the hardware model does.
import { bytesFromWords, getAddr, getBit, getBits, setAddr, setBit, setBits, wordsFromBytes } from './bits.js';

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

export function decodeCd(w: Uint32Array): Cd {
  return {
    t0sz: getBits(w, 0, 5, 0),
    tg0: getBits(w, 0, 7, 6),
    irgn0: getBits(w, 0, 9, 8),
    orgn0: getBits(w, 0, 11, 10),
    sh0: getBits(w, 0, 13, 12),
    epd0: getBit(w, 0, 14),
    endi: getBit(w, 0, 15),
    t1sz: getBits(w, 0, 21, 16),
    tg1: getBits(w, 0, 23, 22),
    irgn1: getBits(w, 0, 25, 24),
    orgn1: getBits(w, 0, 27, 26),
    sh1: getBits(w, 0, 29, 28),
    epd1: getBit(w, 0, 30),
    v: getBit(w, 0, 31),
    ips: getBits(w, 0, 34, 32),
    affd: getBit(w, 0, 35),
    tbi0: getBit(w, 0, 38),
    tbi1: getBit(w, 0, 39),
    aa64: getBit(w, 0, 41),
    hd: getBit(w, 0, 42),
    ha: getBit(w, 0, 43),
    s: getBit(w, 0, 44),
    r: getBit(w, 0, 45),
    a: getBit(w, 0, 46),
    aset: getBit(w, 0, 47),
    asid: getBits(w, 0, 63, 48),
    had0: getBit(w, 1, 1),
    haft: getBit(w, 1, 3),
    ttb0: getAddr(w, 1, 51, 4),
    had1: getBit(w, 2, 1),
    ttb1: getAddr(w, 2, 51, 4),
    mairLo: w[6]!,
    mairHi: w[7]!,
  };
}

export function encodeCdWords(c: Partial<Cd>): Uint32Array {
  const f = { ...emptyCd(), ...c };
  const w = new Uint32Array(16);
  setBits(w, 0, 5, 0, f.t0sz);
  setBits(w, 0, 7, 6, f.tg0);
  setBits(w, 0, 9, 8, f.irgn0);
  setBits(w, 0, 11, 10, f.orgn0);
  setBits(w, 0, 13, 12, f.sh0);
  setBit(w, 0, 14, f.epd0);
  setBit(w, 0, 15, f.endi);
  setBits(w, 0, 21, 16, f.t1sz);
  setBits(w, 0, 23, 22, f.tg1);
  setBits(w, 0, 25, 24, f.irgn1);
  setBits(w, 0, 27, 26, f.orgn1);
  setBits(w, 0, 29, 28, f.sh1);
  setBit(w, 0, 30, f.epd1);
  setBit(w, 0, 31, f.v);
  setBits(w, 0, 34, 32, f.ips);
  setBit(w, 0, 35, f.affd);
  setBit(w, 0, 38, f.tbi0);
  setBit(w, 0, 39, f.tbi1);
  setBit(w, 0, 41, f.aa64);
  setBit(w, 0, 42, f.hd);
  setBit(w, 0, 43, f.ha);
  setBit(w, 0, 44, f.s);
  setBit(w, 0, 45, f.r);
  setBit(w, 0, 46, f.a);
  setBit(w, 0, 47, f.aset);
  setBits(w, 0, 63, 48, f.asid);
  setBit(w, 1, 1, f.had0);
  setBit(w, 1, 3, f.haft);
  setAddr(w, 1, 51, 4, f.ttb0);
  setBit(w, 2, 1, f.had1);
  setAddr(w, 2, 51, 4, f.ttb1);
  w[6] = f.mairLo >>> 0;
  w[7] = f.mairHi >>> 0;
  return w;
}

export function encodeCd(c: Partial<Cd>): Uint8Array {
  return bytesFromWords(encodeCdWords(c));
}

export function cdFromBytes(bytes: Uint8Array): Cd {
  return decodeCd(wordsFromBytes(bytes.subarray(0, CD_SIZE), new Uint32Array(16)));
}
