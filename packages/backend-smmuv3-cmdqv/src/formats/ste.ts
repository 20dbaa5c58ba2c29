// Stream Table Entry: 64 bytes, 8 dwords (vendors.md 2.3; field positions of arm-smmu-v3.h, the
// rest from the SMMUv3 architecture).
import { type BitField, bytesFromWords, readFields, wordsFromBytes, writeFields } from './bits.js';

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

/** Field positions, one row per field of the record. */
const STE_FIELDS: readonly BitField<Ste>[] = [
  { key: 'v', d: 0, bit: 0 },
  { key: 'config', d: 0, hi: 3, lo: 1 },
  { key: 's1fmt', d: 0, hi: 5, lo: 4 },
  { key: 's1ContextPtr', d: 0, hi: 51, lo: 6, addr: true },
  { key: 's1CdMax', d: 0, hi: 63, lo: 59 },
  { key: 's1dss', d: 1, hi: 1, lo: 0 },
  { key: 's1cir', d: 1, hi: 3, lo: 2 },
  { key: 's1cor', d: 1, hi: 5, lo: 4 },
  { key: 's1csh', d: 1, hi: 7, lo: 6 },
  { key: 'mev', d: 1, bit: 19 },
  { key: 's2fwb', d: 1, bit: 25 },
  { key: 's1stalld', d: 1, bit: 27 },
  { key: 'eats', d: 1, hi: 29, lo: 28 },
  { key: 'strw', d: 1, hi: 31, lo: 30 },
  { key: 'shcfg', d: 1, hi: 45, lo: 44 },
  { key: 's2vmid', d: 2, hi: 15, lo: 0 },
  { key: 's2t0sz', d: 2, hi: 37, lo: 32 },
  { key: 's2sl0', d: 2, hi: 39, lo: 38 },
  { key: 's2ir0', d: 2, hi: 41, lo: 40 },
  { key: 's2or0', d: 2, hi: 43, lo: 42 },
  { key: 's2sh0', d: 2, hi: 45, lo: 44 },
  { key: 's2tg', d: 2, hi: 47, lo: 46 },
  { key: 's2ps', d: 2, hi: 50, lo: 48 },
  { key: 's2aa64', d: 2, bit: 51 },
  { key: 's2endi', d: 2, bit: 52 },
  { key: 's2affd', d: 2, bit: 53 },
  { key: 's2ptw', d: 2, bit: 54 },
  { key: 's2hd', d: 2, bit: 55 },
  { key: 's2ha', d: 2, bit: 56 },
  { key: 's2s', d: 2, bit: 57 },
  { key: 's2r', d: 2, bit: 58 },
  { key: 's2ttb', d: 3, hi: 51, lo: 4, addr: true },
];

/** Decodes an STE from its 16 32-bit halves. */
export function decodeSte(w: Uint32Array): Ste {
  return readFields(w, STE_FIELDS, emptySte());
}

export function encodeSteWords(s: Partial<Ste>): Uint32Array {
  const f = { ...emptySte(), ...s };
  const w = new Uint32Array(16);
  return writeFields(w, STE_FIELDS, f);
}

export function encodeSte(s: Partial<Ste>): Uint8Array {
  return bytesFromWords(encodeSteWords(s));
}

export function steFromBytes(bytes: Uint8Array): Ste {
  return decodeSte(wordsFromBytes(bytes.subarray(0, STE_SIZE), new Uint32Array(16)));
}
