// Declarative struct codecs: each C struct is declared once as (field, offset, width) and the
// codec reads and writes exactly those bytes, little-endian, as the kernel's x86-64/arm64 ABI has them.

export type FieldSpec =
  | { readonly kind: 'u8' | 'u16' | 'u32'; readonly offset: number; readonly size: number }
  | { readonly kind: 'u64'; readonly offset: number; readonly size: 8 }
  | { readonly kind: 'u8s' | 'u32s'; readonly offset: number; readonly size: number; readonly count: number }
  | { readonly kind: 'u64s'; readonly offset: number; readonly size: number; readonly count: number };

export const u8 = (offset: number) => ({ kind: 'u8', offset, size: 1 }) as const;
export const u16 = (offset: number) => ({ kind: 'u16', offset, size: 2 }) as const;
export const u32 = (offset: number) => ({ kind: 'u32', offset, size: 4 }) as const;
export const u64 = (offset: number) => ({ kind: 'u64', offset, size: 8 }) as const;
export const u8s = (offset: number, count: number) => ({ kind: 'u8s', offset, size: count, count }) as const;
export const u32s = (offset: number, count: number) => ({ kind: 'u32s', offset, size: 4 * count, count }) as const;
export const u64s = (offset: number, count: number) => ({ kind: 'u64s', offset, size: 8 * count, count }) as const;

type ValueOf<F extends FieldSpec> = F['kind'] extends 'u64'
  ? bigint
  : F['kind'] extends 'u64s'
    ? bigint[]
    : F['kind'] extends 'u8s' | 'u32s'
      ? number[]
      : number;

export type StructValue<F extends Record<string, FieldSpec>> = { [K in keyof F]: ValueOf<F[K]> };

export interface StructCodec<F extends Record<string, FieldSpec> = Record<string, FieldSpec>> {
  /** The C struct name, e.g. `iommu_ioas_map`. */
  readonly name: string;
  /** `sizeof` the struct. */
  readonly size: number;
  /** The smallest `size` the kernel's ioctl dispatch accepts (offsetofend of its last mandatory field); `size` when not an ioctl struct. */
  readonly minSize: number;
  readonly fields: Readonly<F>;
  /** Decodes every field from `bytes` at `at`. */
  decode(bytes: Uint8Array, at?: number): StructValue<F>;
  /**
   * Encodes `value` into fresh zeroed bytes (or into `into` at `at`). Fields left out are zero,
   * except a `size` / `argsz` field, which defaults to `sizeof` the struct as every caller wants.
   */
  encode(value?: Partial<StructValue<F>>, into?: Uint8Array, at?: number): Uint8Array;
  get<K extends keyof F & string>(bytes: Uint8Array, field: K, at?: number): ValueOf<F[K]>;
  set<K extends keyof F & string>(bytes: Uint8Array, field: K, value: ValueOf<F[K]>, at?: number): void;
}

// The DataView of the buffer used last, over all of it: loops over one buffer (an invalidation
// array, a queue, user memory) allocate none per call; offsets add the Uint8Array's byteOffset.
// One entry, not a WeakMap of every buffer: ioctl arguments are fresh buffers, and inserting each
// into a WeakMap made the ioctl path several times slower (the object-table bench). The entry
// holds at most one buffer alive until the next call on another. (A DataView made without a
// length follows a resizable buffer's length.)
let lastBuffer: ArrayBufferLike | undefined;
let lastView: DataView | undefined;

function view(bytes: Uint8Array): DataView {
  const buf = bytes.buffer;
  if (buf !== lastBuffer || lastView === undefined) {
    lastView = new DataView(buf);
    lastBuffer = buf;
  }
  return lastView;
}

function readField(dv: DataView, f: FieldSpec, base: number): number | bigint | number[] | bigint[] {
  const o = base + f.offset;
  switch (f.kind) {
    case 'u8':
      return dv.getUint8(o);
    case 'u16':
      return dv.getUint16(o, true);
    case 'u32':
      return dv.getUint32(o, true);
    case 'u64':
      return dv.getBigUint64(o, true);
    case 'u8s':
      return Array.from({ length: f.count }, (_, i) => dv.getUint8(o + i));
    case 'u32s':
      return Array.from({ length: f.count }, (_, i) => dv.getUint32(o + 4 * i, true));
    case 'u64s':
      return Array.from({ length: f.count }, (_, i) => dv.getBigUint64(o + 8 * i, true));
  }
}

function writeField(dv: DataView, f: FieldSpec, base: number, value: unknown, structName: string, name: string): void {
  const o = base + f.offset;
  const bad = () => new RangeError(`${structName}.${name}: ${String(value)} does not fit ${f.kind}`);
  const num = (v: unknown, max: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw bad();
    return v;
  };
  const big = (v: unknown) => {
    const b = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : v;
    if (typeof b !== 'bigint' || b < 0n || b > 0xffff_ffff_ffff_ffffn) throw bad();
    return b;
  };
  const list = (v: unknown, count: number): unknown[] => {
    if (!Array.isArray(v) || v.length !== count) throw bad();
    return v;
  };
  switch (f.kind) {
    case 'u8':
      return dv.setUint8(o, num(value, 0xff));
    case 'u16':
      return dv.setUint16(o, num(value, 0xffff), true);
    case 'u32':
      return dv.setUint32(o, num(value, 0xffff_ffff), true);
    case 'u64':
      return dv.setBigUint64(o, big(value), true);
    case 'u8s':
      return list(value, f.count).forEach((v, i) => dv.setUint8(o + i, num(v, 0xff)));
    case 'u32s':
      return list(value, f.count).forEach((v, i) => dv.setUint32(o + 4 * i, num(v, 0xffff_ffff), true));
    case 'u64s':
      return list(value, f.count).forEach((v, i) => dv.setBigUint64(o + 8 * i, big(v), true));
  }
}

export function defineStruct<F extends Record<string, FieldSpec>>(
  name: string,
  size: number,
  fields: F,
  options: { last?: keyof F & string } = {},
): StructCodec<F> {
  for (const [field, f] of Object.entries(fields)) {
    if (f.offset + f.size > size) throw new Error(`${name}.${field} runs past sizeof ${size}`);
  }
  const lastField = options.last === undefined ? undefined : fields[options.last];
  const minSize = lastField ? lastField.offset + lastField.size : size;
  const sizeField = 'size' in fields ? 'size' : 'argsz' in fields ? 'argsz' : undefined;
  const entries = Object.entries(fields) as [keyof F & string, FieldSpec][];

  const check = (bytes: Uint8Array, at: number) => {
    if (at < 0 || at + size > bytes.byteLength) {
      throw new RangeError(`${name}: needs ${size} bytes at ${at}, buffer has ${bytes.byteLength}`);
    }
  };

  return {
    name,
    size,
    minSize,
    fields,
    decode(bytes, at = 0) {
      check(bytes, at);
      const dv = view(bytes);
      const base = bytes.byteOffset + at;
      const out: Record<string, unknown> = {};
      for (const [field, f] of entries) out[field] = readField(dv, f, base);
      return out as StructValue<F>;
    },
    encode(value = {}, into, at = 0) {
      const bytes = into ?? new Uint8Array(size);
      check(bytes, at);
      if (!into) at = 0;
      else bytes.fill(0, at, at + size);
      const dv = view(bytes);
      const base = bytes.byteOffset + at;
      if (sizeField && (value as Record<string, unknown>)[sizeField] === undefined) {
        dv.setUint32(base + fields[sizeField]!.offset, size, true);
      }
      for (const [field, f] of entries) {
        const v = (value as Record<string, unknown>)[field];
        if (v !== undefined) writeField(dv, f, base, v, name, field);
      }
      return bytes;
    },
    get(bytes, field, at = 0) {
      check(bytes, at);
      return readField(view(bytes), fields[field]!, bytes.byteOffset + at) as never;
    },
    set(bytes, field, value, at = 0) {
      check(bytes, at);
      writeField(view(bytes), fields[field]!, bytes.byteOffset + at, value, name, field);
    },
  };
}
