// Stream Table Entry: 64 bytes, 8 dwords (vendors.md 2.3; field positions of arm-smmu-v3.h, the
// rest from the SMMUv3 architecture).
import { bytesFromWords, getAddr, getBit, getBits, setAddr, setBit, setBits, wordsFromBytes } from './bits.js';

export const STE_SIZE = 64;

export const STE_CFG_ABORT = 0;
export const STE_CFG_BYPASS = 4;
export const STE_CFG_S1_TRANS = 5;
export const STE_CFG_S2_TRANS = 6;
export const STE_CFG_NESTED = 7;

export const STE_S1FMT_LINEAR = 0;
export const STE_S1FMT_4K_L2 = 1;
export const STE_S1FMT_64K_L2 = 2;

export const STE_S1DSS_TERMINATE = 0;
export const STE_S1DSS_BYPASS = 1;
export const STE_S1DSS_SSID0 = 2;

export const STE_EATS_ABT = 0;
export const STE_EATS_TRANS = 1;
export const STE_EATS_S1CHK = 2;

export interface Ste {
  v: boolean;
  config: number;
  s1fmt: number;
  /** PA (IPA when nested) of the CD table, 64-byte aligned. */
  s1ContextPtr: number;
  s1CdMax: number;
  s1dss: number;
  s1cir: number;
  s1cor: number;
  s1csh: number;
  mev: boolean;
  s2fwb: boolean;
  s1stalld: boolean;
  eats: number;
  strw: number;
  shcfg: number;
  s2vmid: number;
  s2t0sz: number;
  s2sl0: number;
  s2ir0: number;
  s2or0: number;
  s2sh0: number;
  /** VTCR.TG0 encoding: 0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB. */
  s2tg: number;
  s2ps: number;
  s2aa64: boolean;
  s2endi: boolean;
  s2affd: boolean;
  s2ptw: boolean;
  s2hd: boolean;
  s2ha: boolean;
  s2s: boolean;
  s2r: boolean;
  s2ttb: number;
}

export function emptySte(): Ste {
  return {
    v: false, config: 0, s1fmt: 0, s1ContextPtr: 0, s1CdMax: 0, s1dss: 0, s1cir: 0, s1cor: 0, s1csh: 0,
    mev: false, s2fwb: false, s1stalld: false, eats: 0, strw: 0, shcfg: 0, s2vmid: 0, s2t0sz: 0, s2sl0: 0,
    s2ir0: 0, s2or0: 0, s2sh0: 0, s2tg: 0, s2ps: 0, s2aa64: false, s2endi: false, s2affd: false, s2ptw: false,
    s2hd: false, s2ha: false, s2s: false, s2r: false, s2ttb: 0,
  };
}

/** Decodes an STE from its 16 32-bit halves. */
export function decodeSte(w: Uint32Array): Ste {
  return {
    v: getBit(w, 0, 0),
    config: getBits(w, 0, 3, 1),
    s1fmt: getBits(w, 0, 5, 4),
    s1ContextPtr: getAddr(w, 0, 51, 6),
    s1CdMax: getBits(w, 0, 63, 59),
    s1dss: getBits(w, 1, 1, 0),
    s1cir: getBits(w, 1, 3, 2),
    s1cor: getBits(w, 1, 5, 4),
    s1csh: getBits(w, 1, 7, 6),
    mev: getBit(w, 1, 19),
    s2fwb: getBit(w, 1, 25),
    s1stalld: getBit(w, 1, 27),
    eats: getBits(w, 1, 29, 28),
    strw: getBits(w, 1, 31, 30),
    shcfg: getBits(w, 1, 45, 44),
    s2vmid: getBits(w, 2, 15, 0),
    s2t0sz: getBits(w, 2, 37, 32),
    s2sl0: getBits(w, 2, 39, 38),
    s2ir0: getBits(w, 2, 41, 40),
    s2or0: getBits(w, 2, 43, 42),
    s2sh0: getBits(w, 2, 45, 44),
    s2tg: getBits(w, 2, 47, 46),
    s2ps: getBits(w, 2, 50, 48),
    s2aa64: getBit(w, 2, 51),
    s2endi: getBit(w, 2, 52),
    s2affd: getBit(w, 2, 53),
    s2ptw: getBit(w, 2, 54),
    s2hd: getBit(w, 2, 55),
    s2ha: getBit(w, 2, 56),
    s2s: getBit(w, 2, 57),
    s2r: getBit(w, 2, 58),
    s2ttb: getAddr(w, 3, 51, 4),
  };
}

export function encodeSteWords(s: Partial<Ste>): Uint32Array {
  const f = { ...emptySte(), ...s };
  const w = new Uint32Array(16);
  setBit(w, 0, 0, f.v);
  setBits(w, 0, 3, 1, f.config);
  setBits(w, 0, 5, 4, f.s1fmt);
  setAddr(w, 0, 51, 6, f.s1ContextPtr);
  setBits(w, 0, 63, 59, f.s1CdMax);
  setBits(w, 1, 1, 0, f.s1dss);
  setBits(w, 1, 3, 2, f.s1cir);
  setBits(w, 1, 5, 4, f.s1cor);
  setBits(w, 1, 7, 6, f.s1csh);
  setBit(w, 1, 19, f.mev);
  setBit(w, 1, 25, f.s2fwb);
  setBit(w, 1, 27, f.s1stalld);
  setBits(w, 1, 29, 28, f.eats);
  setBits(w, 1, 31, 30, f.strw);
  setBits(w, 1, 45, 44, f.shcfg);
  setBits(w, 2, 15, 0, f.s2vmid);
  setBits(w, 2, 37, 32, f.s2t0sz);
  setBits(w, 2, 39, 38, f.s2sl0);
  setBits(w, 2, 41, 40, f.s2ir0);
  setBits(w, 2, 43, 42, f.s2or0);
  setBits(w, 2, 45, 44, f.s2sh0);
  setBits(w, 2, 47, 46, f.s2tg);
  setBits(w, 2, 50, 48, f.s2ps);
  setBit(w, 2, 51, f.s2aa64);
  setBit(w, 2, 52, f.s2endi);
  setBit(w, 2, 53, f.s2affd);
  setBit(w, 2, 54, f.s2ptw);
  setBit(w, 2, 55, f.s2hd);
  setBit(w, 2, 56, f.s2ha);
  setBit(w, 2, 57, f.s2s);
  setBit(w, 2, 58, f.s2r);
  setAddr(w, 3, 51, 4, f.s2ttb);
  return w;
}

export function encodeSte(s: Partial<Ste>): Uint8Array {
  return bytesFromWords(encodeSteWords(s));
}

export function steFromBytes(bytes: Uint8Array): Ste {
  return decodeSte(wordsFromBytes(bytes.subarray(0, STE_SIZE), new Uint32Array(16)));
}
