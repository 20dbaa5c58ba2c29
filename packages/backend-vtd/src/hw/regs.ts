// VT-d register offsets and capability encodings (VT-d spec 11.4; Linux iommu.h uses the same).
export const DMAR_CAP_REG = 0x08;
export const DMAR_ECAP_REG = 0x10;
export const DMAR_RTADDR_REG = 0x20;
export const DMAR_FSTS_REG = 0x34;
export const DMAR_IQH_REG = 0x80;
export const DMAR_IQT_REG = 0x88;
export const DMAR_IQA_REG = 0x90;
export const DMAR_ICS_REG = 0x9c;
export const DMAR_IQERCD_REG = 0xb0;
export const DMAR_PQH_REG = 0xc0;
export const DMAR_PQT_REG = 0xc8;
export const DMAR_PQA_REG = 0xd0;
export const DMAR_PRS_REG = 0xdc;

/** RTADDR bit 10: the root table is in scalable mode. */
export const RTADDR_SMT = 1n << 10n;
/** IQA bit 11: 256-bit descriptors. */
export const IQA_DW = 1n << 11n;

export const FSTS_PFO = 1 << 0;
export const FSTS_PPF = 1 << 1;
export const FSTS_IQE = 1 << 4;
export const FSTS_ICE = 1 << 5;
export const FSTS_ITE = 1 << 6;
export const PRS_PPR = 1 << 0;
export const PRS_PRO = 1 << 1;

/** The capability fields the model implements, in words; `capReg`/`ecapReg` pack them. */
export interface VtdFeatures {
  /** Number of domain IDs: 2^(4 + 2*nd). */
  nd: number;
  /** Caching mode (a virtual IOMMU's bit: not-present entries may be cached). */
  cm: boolean;
  /** SAGAW: bit 2 = 4-level (48-bit), bit 3 = 5-level (57-bit) second stage. */
  sagaw: number;
  /** Max guest address width in bits. */
  mgaw: number;
  /** Second-stage large pages: bit 0 = 2 MiB, bit 1 = 1 GiB. */
  sllps: number;
  /** Fault recording registers. */
  nfr: number;
  fs1gp: boolean;
  fs5lp: boolean;
  /** ECAP: coherent page walks. */
  coherent: boolean;
  /** ECAP.SC: snoop control (PGSNP / second-stage SNP honoured). */
  sc: boolean;
  deviceTlb: boolean;
  nest: boolean;
  prs: boolean;
  srs: boolean;
  eafs: boolean;
  /** PASID width (PSS + 1 bits). */
  pasidBits: number;
  smts: boolean;
  slads: boolean;
  slts: boolean;
  flts: boolean;
  smpwc: boolean;
}

/** A Sapphire-Rapids-like unit: scalable mode, nesting, PRS, 20-bit PASIDs, 4-level stages (no second-stage A/D: not modelled). */
export const DEFAULT_FEATURES: VtdFeatures = {
  nd: 6, cm: false, sagaw: 0b00100, mgaw: 48, sllps: 0b11, nfr: 8, fs1gp: true, fs5lp: false,
  coherent: true, sc: true, deviceTlb: true, nest: true, prs: true, srs: true, eafs: false, pasidBits: 20,
  smts: true, slads: false, slts: true, flts: true, smpwc: true,
};

/** Fault recording registers' offset (CAP.FRO x 16). */
export const FRO_OFFSET = 0x400;

const b = (v: boolean): bigint => (v ? 1n : 0n);

export function capReg(f: VtdFeatures): bigint {
  return BigInt(f.nd) | (b(f.cm) << 7n) | (BigInt(f.sagaw) << 8n) | (BigInt(f.mgaw - 1) << 16n) | (BigInt(FRO_OFFSET / 16) << 24n) |
    (BigInt(f.sllps) << 34n) | (1n << 39n) /* PSI */ | (BigInt(f.nfr - 1) << 40n) | (18n << 48n) /* MAMV */ |
    (1n << 54n) | (1n << 55n) /* DWD, DRD */ | (b(f.fs1gp) << 56n) | (b(f.fs5lp) << 60n);
}

export function ecapReg(f: VtdFeatures): bigint {
  return b(f.coherent) | (1n << 1n) /* QI */ | (b(f.deviceTlb) << 2n) | (1n << 6n) /* PT */ | (b(f.sc) << 7n) | (b(f.nest) << 26n) |
    (b(f.prs) << 29n) | (b(f.srs) << 31n) | (b(f.eafs) << 34n) | (BigInt(f.pasidBits - 1) << 35n) | (1n << 40n) /* PASID */ |
    (b(f.smts) << 43n) | (b(f.slads) << 45n) | (b(f.slts) << 46n) | (b(f.flts) << 47n) | (b(f.smpwc) << 48n);
}
