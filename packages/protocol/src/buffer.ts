// Little-endian writer and reader for payloads. Offsets are checked: a short or lying payload is a
// ProtocolError, never an out-of-range read.

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos: number;

  /** `reserve` bytes are left at the front (the frame header is written there at the end). */
  constructor(initial = 256, reserve = 0) {
    this.buf = new Uint8Array(Math.max(initial, reserve + 16));
    this.view = new DataView(this.buf.buffer);
    this.pos = reserve;
  }

  get length(): number {
    return this.pos;
  }

  /** Starts over (keeping the buffer), leaving `reserve` bytes at the front. */
  reset(reserve = 0): this {
    this.pos = reserve;
    return this;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(x: number): this {
    this.ensure(1);
    this.view.setUint8(this.pos, x);
    this.pos += 1;
    return this;
  }
  u32(x: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, x >>> 0, true);
    this.pos += 4;
    return this;
  }
  i32(x: number): this {
    this.ensure(4);
    this.view.setInt32(this.pos, x, true);
    this.pos += 4;
    return this;
  }
  /** A u64 from a number or bigint (addresses, offsets). */
  u64(x: number | bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, BigInt(x)), true);
    this.pos += 8;
    return this;
  }
  f64(x: number): this {
    this.ensure(8);
    this.view.setFloat64(this.pos, x, true);
    this.pos += 8;
    return this;
  }
  /** u32 length, then the bytes. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.raw(b);
    return this;
  }
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  string(s: string): this {
    return this.bytes(new TextEncoder().encode(s));
  }
  /** The written bytes (a view; valid until the next write). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

export class Reader {
  private readonly view: DataView;
  pos = 0;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new ProtocolError(`payload too short: need ${n} bytes at ${this.pos}, have ${this.buf.length - this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const x = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return x;
  }
  i32(): number {
    this.need(4);
    const x = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return x;
  }
  u64(): bigint {
    this.need(8);
    const x = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return x;
  }
  /** A u64 that must be a safe integer (an address in our user address spaces). */
  u64n(): number {
    const x = this.u64();
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`value 0x${x.toString(16)} out of range`);
    return Number(x);
  }
  f64(): number {
    this.need(8);
    const x = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return x;
  }
  /** u32 length, then that many bytes (a view into the frame). */
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  string(): string {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.bytes());
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new ProtocolError(`${this.buf.length - this.pos} trailing bytes in payload`);
  }
}
