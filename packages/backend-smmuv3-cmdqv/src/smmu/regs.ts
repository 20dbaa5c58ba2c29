// SMMUv3 register offsets and the ID registers the model reports (vendors.md 2.1; arm-smmu-v3.h).
import { psFromAddressBits } from '../pgtable/granule.js';

export const SMMU_IDR0 = 0x00;
export const SMMU_IDR1 = 0x04;
export const SMMU_IDR2 = 0x08;
export const SMMU_IDR3 = 0x0c;
export const SMMU_IDR4 = 0x10;
export const SMMU_IDR5 = 0x14;
export const SMMU_IIDR = 0x18;
export const SMMU_AIDR = 0x1c;
export const SMMU_CR0 = 0x20;
export const SMMU_CR0ACK = 0x24;
export const SMMU_CR1 = 0x28;
export const SMMU_CR2 = 0x2c;
export const SMMU_GBPA = 0x44;
export const SMMU_IRQ_CTRL = 0x50;
export const SMMU_IRQ_CTRLACK = 0x54;
export const SMMU_GERROR = 0x60;
export const SMMU_GERRORN = 0x64;
export const SMMU_STRTAB_BASE = 0x80;
export const SMMU_STRTAB_BASE_CFG = 0x88;
export const SMMU_CMDQ_BASE = 0x90;
export const SMMU_CMDQ_PROD = 0x98;
export const SMMU_CMDQ_CONS = 0x9c;
export const SMMU_EVTQ_BASE = 0xa0;
/** EVTQ PROD/CONS are in page 1 on real hardware. */
export const SMMU_EVTQ_PROD = 0x100a8;
export const SMMU_EVTQ_CONS = 0x100ac;

export const CR0_SMMUEN = 1 << 0;
export const CR0_PRIQEN = 1 << 1;
export const CR0_EVTQEN = 1 << 2;
export const CR0_CMDQEN = 1 << 3;
export const CR0_ATSCHK = 1 << 4;

export const GBPA_ABORT = 1 << 20;
export const GBPA_UPDATE = 1 << 31;

export const GERROR_CMDQ_ERR = 1 << 0;
export const GERROR_EVTQ_ABT_ERR = 1 << 2;

export const IRQ_CTRL_GERROR = 1 << 0;
export const IRQ_CTRL_PRIQ = 1 << 1;
export const IRQ_CTRL_EVTQ = 1 << 2;

export const IDR0_S2P = 1 << 0;
export const IDR0_S1P = 1 << 1;
export const IDR0_TTF_AARCH64 = 2 << 2;
export const IDR0_COHACC = 1 << 4;
export const IDR0_HYP = 1 << 9;
export const IDR0_ATS = 1 << 10;
export const IDR0_ASID16 = 1 << 12;
export const IDR0_MSI = 1 << 13;
export const IDR0_SEV = 1 << 14;
export const IDR0_PRI = 1 << 16;
export const IDR0_VMID16 = 1 << 18;
export const IDR0_CD2L = 1 << 19;
export const IDR0_TTENDIAN_LE = 2 << 21;
export const IDR0_STALL_MODEL_SHIFT = 24;
export const IDR0_ST_LVL_2LVL = 1 << 27;

export const IDR3_FWB = 1 << 8;
export const IDR3_RIL = 1 << 10;

export const IDR5_GRAN4K = 1 << 4;
export const IDR5_GRAN16K = 1 << 5;
export const IDR5_GRAN64K = 1 << 6;

/** CMDQ CONS.ERR (CERROR) values. */
export const CERROR_NONE = 0;
export const CERROR_ILL = 1;
export const CERROR_ABT = 2;
export const CERROR_ATC_INV_SYNC = 3;

export interface SmmuFeatures {
  /** StreamID bits (IDR1.SIDSIZE). */
  sidBits: number;
  /** SubstreamID bits (IDR1.SSIDSIZE). */
  ssidBits: number;
  /** Output (physical) address bits (IDR5.OAS). */
  oasBits: number;
  gran4k: boolean;
  gran16k: boolean;
  gran64k: boolean;
  /** Range invalidation (IDR3.RIL). */
  ril: boolean;
  /** Stage-2 forced write-back (IDR3.FWB). */
  fwb: boolean;
  ats: boolean;
  pri: boolean;
  /** Stall model: 0 stall and terminate, 1 terminate only, 2 stall forced. */
  stallModel: number;
  /** Two-level context-descriptor tables (IDR0.CD2L). */
  cd2l: boolean;
  /** log2 of the largest command / event / PRI queue (IDR1.CMDQS / EVTQS / PRIQS). */
  cmdqs: number;
  evtqs: number;
  priqs: number;
  iidr: number;
  aidr: number;
}

export const DEFAULT_FEATURES: SmmuFeatures = {
  sidBits: 16,
  ssidBits: 20,
  oasBits: 48,
  gran4k: true,
  gran16k: true,
  gran64k: true,
  ril: true,
  fwb: true,
  ats: true,
  pri: true,
  stallModel: 1,
  cd2l: true,
  cmdqs: 19,
  evtqs: 19,
  priqs: 19,
  // Implementer 0x36b (NVIDIA, as on Grace); no product with errata workarounds in the kernel.
  iidr: 0x0000_036b,
  // SMMUv3.2.
  aidr: 0x02,
};

/** IDR0..IDR5 as the hardware reports them (and as GET_HW_INFO copies them raw). */
export function idRegisters(f: SmmuFeatures): Uint32Array {
  const idr = new Uint32Array(6);
  let idr0 = IDR0_S2P | IDR0_S1P | IDR0_TTF_AARCH64 | IDR0_COHACC | IDR0_ASID16 | IDR0_VMID16 | IDR0_TTENDIAN_LE;
  if (f.ats) idr0 |= IDR0_ATS;
  if (f.pri) idr0 |= IDR0_PRI;
  if (f.cd2l) idr0 |= IDR0_CD2L;
  idr0 |= f.stallModel << IDR0_STALL_MODEL_SHIFT;
  idr[0] = idr0 >>> 0;
  idr[1] = (f.sidBits | (f.ssidBits << 6) | (f.priqs << 11) | (f.evtqs << 16) | (f.cmdqs << 21)) >>> 0;
  idr[2] = 0;
  idr[3] = ((f.fwb ? IDR3_FWB : 0) | (f.ril ? IDR3_RIL : 0)) >>> 0;
  idr[4] = 0;
  idr[5] = (psFromAddressBits(f.oasBits) | (f.gran4k ? IDR5_GRAN4K : 0) | (f.gran16k ? IDR5_GRAN16K : 0) | (f.gran64k ? IDR5_GRAN64K : 0)) >>> 0;
  return idr;
}
