// Bit-field helpers over 64-bit words held as bigint (format encode/decode is not a hot path), and
// little-endian packing of qword arrays into the bytes the hardware reads.

export function field(word: bigint, lo: number, hi: number): bigint {
  return (word >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);
}

export function num(word: bigint, lo: number, hi: number): number {
  return Number(field(word, lo, hi));
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

/** An address field [lo, 63]-style: the value's own bits lo..hi kept in place (low bits must be clear). */
export function putAddr(addr: bigint | number, lo: number, hi: number): bigint {
  const a = BigInt(addr);
  const mask = ((1n << BigInt(hi + 1)) - 1n) & ~((1n << BigInt(lo)) - 1n);
  if ((a & ~mask) !== 0n) throw new RangeError(`address 0x${a.toString(16)} has bits outside ${hi}:${lo}`);
  return a;
}

export function addrOf(word: bigint, lo: number, hi: number): bigint {
  const mask = ((1n << BigInt(hi + 1)) - 1n) & ~((1n << BigInt(lo)) - 1n);
  return word & mask;
}

export function qwordsToBytes(q: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(q.length * 8);
  const v = new DataView(out.buffer);
  q.forEach((w, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, w), true));
  return out;
}

export function bytesToQwords(b: Uint8Array): bigint[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= b.length; i += 8) out.push(v.getBigUint64(i, true));
  return out;
}
