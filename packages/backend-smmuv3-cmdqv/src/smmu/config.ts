// Decoded, validated configuration as the SMMU caches it: STEs by StreamID and CDs by
// (StreamID, SubstreamID). Validation follows the architecture's C_BAD_STE / C_BAD_CD rules for
// what this model implements (AArch64 tables, little-endian walks, linear stream table).
import type { Cd } from '../formats/cd.js';
import { STE_CFG_BYPASS, STE_CFG_NESTED, STE_CFG_S1_TRANS, STE_CFG_S2_TRANS, type Ste } from '../formats/ste.js';
import { addressBitsFromPs, granuleShiftFromTg0, levelShift, s1StartLevel, s2StartLevel } from '../pgtable/granule.js';
import type { StageParams } from '../pgtable/walk.js';
import type { SmmuFeatures } from './regs.js';

export const STREAM_ABORT = 0;
export const STREAM_BYPASS = 1;
export const STREAM_TRANSLATE = 2;

export interface StreamConfig {
  mode: number;
  s1: boolean;
  s2: boolean;
  vmid: number;
  s2params: StageParams;
  /** Record stage-2 faults (STE.S2R). */
  s2r: boolean;
  cdPtr: number;
  s1fmt: number;
  s1CdMax: number;
  s1dss: number;
  ste: Ste;
  /** The CDs cached under this STE, by SubstreamID (invalidating the STE drops them). */
  readonly cds: Map<number, ContextConfig>;
}

export interface ContextConfig {
  asid: number;
  s1params: StageParams;
  epd0: boolean;
  /** Record stage-1 faults (CD.R). */
  record: boolean;
  cd: Cd;
}

function granuleSupported(f: SmmuFeatures, shift: number): boolean {
  return (shift === 12 && f.gran4k) || (shift === 14 && f.gran16k) || (shift === 16 && f.gran64k);
}

/** Returns the stream configuration, or undefined for an STE the hardware reports as C_BAD_STE. */
export function streamConfig(ste: Ste, f: SmmuFeatures): StreamConfig | undefined {
  if (!ste.v) return undefined;
  const cfg: StreamConfig = {
    mode: STREAM_ABORT, s1: false, s2: false, vmid: ste.s2vmid, s2r: ste.s2r, cdPtr: ste.s1ContextPtr,
    s1fmt: ste.s1fmt, s1CdMax: ste.s1CdMax, s1dss: ste.s1dss, ste, cds: new Map(),
    s2params: { ttb: 0, granuleShift: 12, inputBits: 0, startLevel: 0, outputBits: 0, affd: false },
  };
  if ((ste.config & 4) === 0) return cfg; // every Config with bit 2 clear aborts, silently
  if (ste.strw !== 0) return undefined; // EL2 streams need IDR0.HYP, which this SMMU lacks
  if (ste.config === STE_CFG_BYPASS) {
    cfg.mode = STREAM_BYPASS;
    return cfg;
  }
  cfg.mode = STREAM_TRANSLATE;
  cfg.s1 = ste.config === STE_CFG_S1_TRANS || ste.config === STE_CFG_NESTED;
  cfg.s2 = ste.config === STE_CFG_S2_TRANS || ste.config === STE_CFG_NESTED;
  if (cfg.s1) {
    if (ste.s1fmt === 3 || (ste.s1fmt !== 0 && !f.cd2l)) return undefined;
    if (ste.s1CdMax > f.ssidBits) return undefined;
    if (ste.s1CdMax !== 0 && ste.s1dss === 3) return undefined;
  }
  if (cfg.s2) {
    if (!ste.s2aa64 || ste.s2endi) return undefined;
    const g = granuleShiftFromTg0(ste.s2tg);
    if (!g || !granuleSupported(f, g)) return undefined;
    const inputBits = 64 - ste.s2t0sz;
    const start = s2StartLevel(g, ste.s2sl0);
    if (start < 0 || inputBits > 48 || inputBits < 24) return undefined;
    // The start level must index at least one bit and at most 16 concatenated tables.
    const startBits = inputBits - levelShift(g, start);
    if (startBits < 1 || startBits > g - 3 + 4) return undefined;
    cfg.s2params = {
      ttb: ste.s2ttb,
      granuleShift: g,
      inputBits,
      startLevel: start,
      outputBits: Math.min(addressBitsFromPs(ste.s2ps), f.oasBits),
      affd: ste.s2affd,
    };
  }
  return cfg;
}

/** Returns the context configuration, or undefined for a CD the hardware reports as C_BAD_CD. */
export function contextConfig(cd: Cd, f: SmmuFeatures): ContextConfig | undefined {
  if (!cd.v || !cd.aa64 || cd.endi) return undefined;
  const g = granuleShiftFromTg0(cd.tg0);
  if (!g || !granuleSupported(f, g)) return undefined;
  if (cd.t0sz < 16 || cd.t0sz > 39) return undefined;
  const inputBits = 64 - cd.t0sz;
  return {
    asid: cd.asid,
    epd0: cd.epd0,
    record: cd.r,
    cd,
    s1params: {
      ttb: cd.ttb0,
      granuleShift: g,
      inputBits,
      startLevel: s1StartLevel(g, inputBits),
      outputBits: Math.min(addressBitsFromPs(cd.ips), f.oasBits),
      affd: cd.affd,
    },
  };
}
