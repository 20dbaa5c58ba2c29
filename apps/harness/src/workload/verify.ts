// The workload's data: every (device, page, generation) has its own 4 KiB pattern, so a DMA that
// lands on the wrong page — a wrong translation, a stale one, another device's page — is caught.
// Pure functions, no allocation on the check path.

export const PAGE = 4096;

/** A 32-bit seed unique to (device, page, generation) for any realistic size. */
export function seedOf(device: number, page: number, gen: number): number {
  return (Math.imul(device + 1, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca77) ^ Math.imul(gen + 1, 0xc2b2ae3d)) >>> 0 || 1;
}

/** Fills `out` (a multiple of 4 bytes) with the pattern of `seed` (xorshift32 words, little-endian). */
export function fillPattern(out: Uint8Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= out.length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
    out[i + 1] = (s >>> 8) & 0xff;
    out[i + 2] = (s >>> 16) & 0xff;
    out[i + 3] = s >>> 24;
  }
}

/** The first byte offset where `bytes` differs from the pattern of `seed`, or -1 when it matches. */
export function firstMismatch(bytes: Uint8Array, seed: number): number {
  let s = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    if (bytes[i] !== (s & 0xff) || bytes[i + 1] !== ((s >>> 8) & 0xff) || bytes[i + 2] !== ((s >>> 16) & 0xff) || bytes[i + 3] !== s >>> 24) {
      return i;
    }
  }
  return -1;
}

/** Which of several candidate seeds `bytes` carries (its index), or -1 for none: names what a DMA saw. */
export function whichPattern(bytes: Uint8Array, seeds: readonly number[]): number {
  for (let i = 0; i < seeds.length; i++) if (firstMismatch(bytes, seeds[i]!) < 0) return i;
  return -1;
}
