// VMSAv8-64 translation granules and level geometry. A granule of 2^g bytes has 2^(g-3)
// descriptors per table; level L (0..3) resolves the input bits [g + (3-L)(g-3) + (g-3) - 1 : g + (3-L)(g-3)].

export const GRANULE_4K = 12;
export const GRANULE_16K = 14;
export const GRANULE_64K = 16;

/** CD.TG0 and STE VTCR.S2TG share this encoding: 0 = 4 KiB, 1 = 64 KiB, 2 = 16 KiB. Returns 0 for reserved. */
export function granuleShiftFromTg0(tg: number): number {
  switch (tg) {
    case 0:
      return GRANULE_4K;
    case 1:
      return GRANULE_64K;
    case 2:
      return GRANULE_16K;
    default:
      return 0;
  }
}

export function tg0FromGranuleShift(shift: number): number {
  return shift === GRANULE_4K ? 0 : shift === GRANULE_64K ? 1 : 2;
}

/** The input-address bit at which level `level` starts indexing. */
export function levelShift(granuleShift: number, level: number): number {
  return granuleShift + (3 - level) * (granuleShift - 3);
}

/** Stage 1: the start level is the first level whose index covers the top input bit. */
export function s1StartLevel(granuleShift: number, inputBits: number): number {
  const levels = Math.ceil((inputBits - granuleShift) / (granuleShift - 3));
  return 4 - levels;
}

/** Stage 2: VTCR.SL0 names the start level (without LPA2): 4 KiB 0→L2, 1→L1, 2→L0; 16/64 KiB 0→L3, 1→L2, 2→L1. */
export function s2StartLevel(granuleShift: number, sl0: number): number {
  if (granuleShift === GRANULE_4K) return sl0 <= 2 ? 2 - sl0 : -1;
  if (granuleShift === GRANULE_64K) return sl0 <= 2 ? 3 - sl0 : -1;
  return sl0 <= 2 ? 3 - sl0 : -1;
}

export function s2Sl0(granuleShift: number, startLevel: number): number {
  return granuleShift === GRANULE_4K ? 2 - startLevel : 3 - startLevel;
}

/**
 * Whether a block descriptor is allowed at `level` (without 52-bit output): 4 KiB granule at L1
 * (1 GiB) and L2 (2 MiB); 16 KiB at L2 (32 MiB); 64 KiB at L2 (512 MiB).
 */
export function blockAllowed(granuleShift: number, level: number): boolean {
  if (granuleShift === GRANULE_4K) return level === 1 || level === 2;
  return level === 2;
}

/** IDR5.OAS, CD.IPS and VTCR.PS encoding → address bits. */
export function addressBitsFromPs(ps: number): number {
  return [32, 36, 40, 42, 44, 48, 52][ps] ?? 48;
}

export function psFromAddressBits(bits: number): number {
  const i = [32, 36, 40, 42, 44, 48, 52].indexOf(bits);
  if (i < 0) throw new RangeError(`no PS encoding for ${bits} address bits`);
  return i;
}
