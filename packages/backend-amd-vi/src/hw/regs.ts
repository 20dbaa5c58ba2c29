// MMIO register offsets and bits (amd_iommu_types.h) and the EFR/EFR2 feature bits the model reports.

export const MMIO_DEV_TABLE_OFFSET = 0x0000;
export const MMIO_CMD_BUF_OFFSET = 0x0008;
export const MMIO_EVT_BUF_OFFSET = 0x0010;
export const MMIO_CONTROL_OFFSET = 0x0018;
export const MMIO_EXT_FEATURES = 0x0030;
export const MMIO_PPR_LOG_OFFSET = 0x0038;
export const MMIO_EXT_FEATURES2 = 0x01a0;
export const MMIO_CMD_HEAD_OFFSET = 0x2000;
export const MMIO_CMD_TAIL_OFFSET = 0x2008;
export const MMIO_EVT_HEAD_OFFSET = 0x2010;
export const MMIO_EVT_TAIL_OFFSET = 0x2018;
export const MMIO_STATUS_OFFSET = 0x2020;
export const MMIO_PPR_HEAD_OFFSET = 0x2030;
export const MMIO_PPR_TAIL_OFFSET = 0x2038;

// Status register bits.
export const STATUS_EVT_OVERFLOW = 1 << 0;
export const STATUS_EVT_INT = 1 << 1;
export const STATUS_COMWAIT_INT = 1 << 2;
export const STATUS_PPR_OVERFLOW = 1 << 5;
export const STATUS_PPR_INT = 1 << 6;

// EFR bits (bit numbers).
export const FEATURE_PPR = 1;
export const FEATURE_NX = 3;
export const FEATURE_GT = 4;
export const FEATURE_IA = 6;
export const FEATURE_GA = 7;
export const FEATURE_HE = 8;
export const FEATURE_PC = 9;
export const FEATURE_GIOSUP = 48;
export const FEATURE_HDSUP = 52;
// EFR2 bits.
export const FEATURE_GCR3TRPMODE = 3;

export interface AmdViFeatures {
  /** EFR GTSup: guest translation (v2 tables, GCR3). */
  gt: boolean;
  /** EFR GIoSup: guest I/O protection (GIoV). */
  gio: boolean;
  /** EFR2 GCR3TRPMode: GCR3 root pointers are GPAs translated by the host table. */
  gcr3trp: boolean;
  /** EFR PPRSup. */
  ppr: boolean;
  /** EFR HDSup (host dirty bits). The model does not write D bits, so it is off by default. */
  hd: boolean;
  /** EFR GLXSup: 0 = one GCR3 level, 1 = two levels (PASIDs above 9 bits). */
  glx: number;
  /** EFR PASmax: PASID width - 1. */
  pasMax: number;
  /** 5-level guest tables supported (EFR GATS = 1). */
  guest5Level: boolean;
}

export const DEFAULT_FEATURES: AmdViFeatures = { gt: true, gio: true, gcr3trp: true, ppr: true, hd: false, glx: 1, pasMax: 15, guest5Level: false };

/** The EFR and EFR2 values for a feature set (raw registers, as GET_HW_INFO reports them). */
export function featureRegisters(f: AmdViFeatures): { efr: bigint; efr2: bigint } {
  const b = (on: boolean, n: number): bigint => (on ? 1n << BigInt(n) : 0n);
  const efr = b(f.ppr, FEATURE_PPR) | b(true, FEATURE_NX) | b(f.gt, FEATURE_GT) | b(true, FEATURE_IA) | b(f.gt, FEATURE_GA) | b(true, FEATURE_HE) |
    b(true, FEATURE_PC) | (3n << 10n) /* HATS: 6-level host tables */ | (BigInt(f.guest5Level ? 1 : 0) << 12n) /* GATS */ |
    (BigInt(f.glx & 3) << 14n) | (BigInt(f.pasMax & 0x1f) << 32n) | b(f.gio, FEATURE_GIOSUP) | b(f.hd, FEATURE_HDSUP);
  const efr2 = b(f.gcr3trp, FEATURE_GCR3TRPMODE);
  return { efr, efr2 };
}
