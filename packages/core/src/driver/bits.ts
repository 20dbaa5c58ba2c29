// Bit fields of little-endian 64-bit hardware words held as bigint, and the packing of such words
// into the bytes the hardware reads. For format encoders and decoders (DTEs, context and PASID
// entries, queue descriptors), which are not hot paths; table walkers read u32 halves instead.
// Field positions are inclusive [lo, hi], as the vendors' specifications write them.

const mask = (lo: number, hi: number): bigint => (1n << BigInt(hi - lo + 1)) - 1n;

/** Bits [lo, hi] of `word`, shifted down to bit 0. */
export function field(word: bigint, lo: number, hi: number): bigint {
  return (word >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);
}

/** Bits [lo, hi] of `word` as a number (for fields of at most 53 bits). */
export function num(word: bigint, lo: number, hi: number): number {
  // Written out rather than Number(field(...)): a decoder calls this twenty times, and one call level
  // less measured AMD-Vi DTE decoding x0.6 -> x1.0 of its former local copy.
  return Number((word >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n));
}

export function bit(word: bigint, n: number): boolean {
  return ((word >> BigInt(n)) & 1n) === 1n;
}

/** `value` placed at [lo, hi]; throws when it does not fit (an encoder bug, not a guest error). */
export function put(value: bigint | number | boolean, lo: number, hi: number): bigint {
  const v = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  if (v < 0n || v >> BigInt(hi - lo + 1) !== 0n) throw new RangeError(`0x${v.toString(16)} does not fit bits ${hi}:${lo}`);
  return v << BigInt(lo);
}

/** An address field: the address's own bits [lo, hi] kept in place; any other bit set throws. */
export function putAddr(addr: bigint | number, lo: number, hi: number): bigint {
  const a = BigInt(addr);
  if ((a & ~(mask(lo, hi) << BigInt(lo))) !== 0n) throw new RangeError(`address 0x${a.toString(16)} has bits outside ${hi}:${lo}`);
  return a;
}

/** The address held in bits [lo, hi] of `word`, left in place. */
export function addrOf(word: bigint, lo: number, hi: number): bigint {
  return word & (mask(lo, hi) << BigInt(lo));
}

/** Little-endian bytes of 64-bit words (each taken modulo 2^64). */
export function qwordsToBytes(q: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(q.length * 8);
  const v = new DataView(out.buffer);
  for (let i = 0; i < q.length; i++) v.setBigUint64(i * 8, BigInt.asUintN(64, q[i]!), true);
  return out;
}

/** The whole 64-bit little-endian words of `b` (a trailing partial word is ignored). */
export function bytesToQwords(b: Uint8Array): bigint[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= b.length; i += 8) out.push(v.getBigUint64(i, true));
  return out;
}
