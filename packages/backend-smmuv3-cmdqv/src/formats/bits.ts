// Bit-field access on little-endian 64-bit hardware words held as pairs of 32-bit halves.
// `w[2 * d]` is the low half of dword d, `w[2 * d + 1]` its high half. Fields are at most 53 bits
// wide, so they come back as plain numbers; no bigint on the hot paths.

const TWO32 = 0x1_0000_0000;

function mask(width: number): number {
  return width >= 32 ? 0xffff_ffff : (1 << width) - 1 >>> 0;
}

/** Bits [hi:lo] of dword `d`, shifted down to bit 0. */
export function getBits(w: Uint32Array, d: number, hi: number, lo: number): number {
  const low = w[2 * d]!;
  const high = w[2 * d + 1]!;
  // `& mask` yields a signed int32; `>>> 0` keeps a full 32-bit field (SID [63:32]) unsigned.
  if (hi < 32) return ((low >>> lo) & mask(hi - lo + 1)) >>> 0;
  if (lo >= 32) return ((high >>> (lo - 32)) & mask(hi - lo + 1)) >>> 0;
  const lowPart = low >>> lo; // 32 - lo bits
  const highPart = (high & mask(hi - 31)) >>> 0;
  return lowPart + highPart * 2 ** (32 - lo);
}

/** Bits [hi:lo] of dword `d` left in place: an address field such as S1ContextPtr [51:6]. */
export function getAddr(w: Uint32Array, d: number, hi: number, lo: number): number {
  return getBits(w, d, hi, lo) * 2 ** lo;
}

export function getBit(w: Uint32Array, d: number, bit: number): boolean {
  return bit < 32 ? ((w[2 * d]! >>> bit) & 1) === 1 : ((w[2 * d + 1]! >>> (bit - 32)) & 1) === 1;
}

/** Sets bits [hi:lo] of dword `d` to `value` (which must fit). */
export function setBits(w: Uint32Array, d: number, hi: number, lo: number, value: number): void {
  const width = hi - lo + 1;
  if (value < 0 || !Number.isInteger(value) || value >= 2 ** width) {
    throw new RangeError(`value ${value} does not fit bits [${hi}:${lo}]`);
  }
  if (hi < 32) {
    const m = (mask(width) << lo) >>> 0;
    w[2 * d] = ((w[2 * d]! & ~m) | (value << lo)) >>> 0;
    return;
  }
  if (lo >= 32) {
    const m = (mask(width) << (lo - 32)) >>> 0;
    w[2 * d + 1] = ((w[2 * d + 1]! & ~m) | (value << (lo - 32))) >>> 0;
    return;
  }
  const lowWidth = 32 - lo;
  const lowValue = value % 2 ** lowWidth;
  const highValue = Math.floor(value / 2 ** lowWidth);
  setBits(w, d, 31, lo, lowValue);
  setBits(w, d, hi, 32, highValue);
}

/** Sets an address field [hi:lo] from an address whose low `lo` bits must be zero. */
export function setAddr(w: Uint32Array, d: number, hi: number, lo: number, addr: number): void {
  if (addr % 2 ** lo !== 0) throw new RangeError(`address 0x${addr.toString(16)} is not aligned to 2^${lo}`);
  setBits(w, d, hi, lo, addr / 2 ** lo);
}

export function setBit(w: Uint32Array, d: number, bit: number, on: boolean): void {
  setBits(w, d, bit, bit, on ? 1 : 0);
}

type NumberKey<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T];
type FlagKey<T> = { [K in keyof T]: T[K] extends boolean ? K : never }[keyof T];

/**
 * One field of a decoded record `T`: bits [hi:lo] of dword d (an `addr` field keeps its low `lo`
 * bits as zeros, like getAddr), or a single flag bit. A table of these describes an STE, a CD, an
 * event or a command once, for both directions.
 */
export type BitField<T> =
  | { readonly key: NumberKey<T>; readonly d: number; readonly hi: number; readonly lo: number; readonly addr?: boolean }
  | { readonly key: FlagKey<T>; readonly d: number; readonly bit: number };

/** Reads every field of `fields` from `w` into `out`. */
export function readFields<T extends object>(w: Uint32Array, fields: readonly BitField<T>[], out: T): T {
  const o = out as Record<PropertyKey, number | boolean>;
  for (const f of fields) {
    if ('bit' in f) o[f.key] = getBit(w, f.d, f.bit);
    else o[f.key] = f.addr === true ? getAddr(w, f.d, f.hi, f.lo) : getBits(w, f.d, f.hi, f.lo);
  }
  return out;
}

/** Writes every field of `fields` from `values` into `w` (RangeError when a value does not fit). */
export function writeFields<T extends object>(w: Uint32Array, fields: readonly BitField<T>[], values: T): Uint32Array {
  const v = values as Record<PropertyKey, number | boolean>;
  for (const f of fields) {
    if ('bit' in f) setBit(w, f.d, f.bit, v[f.key] as boolean);
    else if (f.addr === true) setAddr(w, f.d, f.hi, f.lo, v[f.key] as number);
    else setBits(w, f.d, f.hi, f.lo, v[f.key] as number);
  }
  return w;
}

/** Little-endian bytes → 32-bit halves. */
export function wordsFromBytes(bytes: Uint8Array, into: Uint32Array = new Uint32Array(bytes.length >> 2)): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < into.length; i++) into[i] = view.getUint32(i * 4, true);
  return into;
}

export function bytesFromWords(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < w.length; i++) view.setUint32(i * 4, w[i]!, true);
  return out;
}

/** A 64-bit dword as bigint (for the uAPI boundary, which speaks __le64). */
export function dwordBig(w: Uint32Array, d: number): bigint {
  return (BigInt(w[2 * d + 1]!) << 32n) | BigInt(w[2 * d]!);
}

export function setDwordBig(w: Uint32Array, d: number, value: bigint): void {
  w[2 * d] = Number(value & 0xffff_ffffn);
  w[2 * d + 1] = Number((value >> 32n) & 0xffff_ffffn);
}

/** A number (< 2^53) split into halves. */
export function hi32(value: number): number {
  return Math.floor(value / TWO32) >>> 0;
}
export function lo32(value: number): number {
  return value >>> 0;
}
