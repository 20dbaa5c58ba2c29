// The simulated host's one physical memory. User memory, guest RAM, page tables, queues and device
// DMA all meet here, as bytes in the hardware's own formats.
//
// Frames are 4 KiB and materialised lazily: a frame that was never written reads as zeros and costs
// nothing. Frame storage comes from SharedArrayBuffer slabs so that a hardware model running in a
// worker thread can see the same bytes (see `frameLocation`).

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 1 << FRAME_SHIFT;
const FRAMES_PER_SLAB = 256; // 1 MiB slabs

export interface FrameLocation {
  readonly slab: SharedArrayBuffer;
  readonly offset: number;
}

export class PhysicalMemory {
  /** Frame number -> its 4 KiB of storage; absent means all zero. */
  private readonly frames = new Map<number, Uint8Array>();
  private readonly slabs: SharedArrayBuffer[] = [];
  private readonly freeStorage: Uint8Array[] = [];
  /** Next never-used frame number; frame 0 is kept unused so physical address 0 never holds data. */
  private nextFrame = 1;
  private readonly freeRuns: { first: number; count: number }[] = [];
  private allocatedFrames = 0;
  private readonly zeroFrame = new Uint8Array(FRAME_SIZE);

  /** Allocates `count` physically contiguous frames and returns the first frame number. */
  allocFrames(count: number): number {
    if (!Number.isInteger(count) || count <= 0) throw new RangeError(`allocFrames: bad count ${count}`);
    const i = this.freeRuns.findIndex((r) => r.count >= count);
    let first: number;
    if (i >= 0) {
      const run = this.freeRuns[i]!;
      first = run.first;
      run.first += count;
      run.count -= count;
      if (run.count === 0) this.freeRuns.splice(i, 1);
    } else {
      first = this.nextFrame;
      this.nextFrame += count;
    }
    this.allocatedFrames += count;
    return first;
  }

  /** Returns frames to the allocator; their contents are discarded (they read as zero again). */
  freeFrames(first: number, count: number): void {
    for (let f = first; f < first + count; f++) {
      const storage = this.frames.get(f);
      if (storage) {
        storage.fill(0);
        this.freeStorage.push(storage);
        this.frames.delete(f);
      }
    }
    this.allocatedFrames -= count;
    this.freeRuns.push({ first, count });
  }

  /** Frames handed out and not freed. */
  get allocatedFrameCount(): number {
    return this.allocatedFrames;
  }

  /** Frames that hold storage (were written at least once). */
  get residentFrameCount(): number {
    return this.frames.size;
  }

  /** The storage of one frame, created on first use when `create` is set. */
  frame(pfn: number, create: true): Uint8Array;
  frame(pfn: number, create?: boolean): Uint8Array | undefined;
  frame(pfn: number, create = false): Uint8Array | undefined {
    let storage = this.frames.get(pfn);
    if (!storage && create) {
      storage = this.freeStorage.pop() ?? this.newStorage();
      this.frames.set(pfn, storage);
    }
    return storage;
  }

  /** Where a frame's bytes live, for sharing with a worker thread. Materialises the frame. */
  frameLocation(pfn: number): FrameLocation {
    const storage = this.frame(pfn, true);
    return { slab: storage.buffer as SharedArrayBuffer, offset: storage.byteOffset };
  }

  read(pa: number, into: Uint8Array): Uint8Array {
    let done = 0;
    while (done < into.length) {
      const addr = pa + done;
      const off = addr % FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - off, into.length - done);
      const storage = this.frames.get(Math.floor(addr / FRAME_SIZE)) ?? this.zeroFrame;
      into.set(storage.subarray(off, off + n), done);
      done += n;
    }
    return into;
  }

  write(pa: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const addr = pa + done;
      const off = addr % FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - off, bytes.length - done);
      this.frame(Math.floor(addr / FRAME_SIZE), true).set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  readU32(pa: number): number {
    const off = pa % FRAME_SIZE;
    if (off > FRAME_SIZE - 4) return this.readSlow(pa, 4);
    const s = this.frames.get(Math.floor(pa / FRAME_SIZE));
    if (!s) return 0;
    return (s[off]! | (s[off + 1]! << 8) | (s[off + 2]! << 16) | (s[off + 3]! << 24)) >>> 0;
  }

  writeU32(pa: number, value: number): void {
    const off = pa % FRAME_SIZE;
    if (off > FRAME_SIZE - 4) return this.writeSlow(pa, 4, value);
    const s = this.frame(Math.floor(pa / FRAME_SIZE), true);
    s[off] = value;
    s[off + 1] = value >>> 8;
    s[off + 2] = value >>> 16;
    s[off + 3] = value >>> 24;
  }

  /** A 64-bit little-endian word as its low and high 32-bit halves (hot paths avoid bigint). */
  readU64Lo(pa: number): number {
    return this.readU32(pa);
  }

  readU64Hi(pa: number): number {
    return this.readU32(pa + 4);
  }

  readU64(pa: number): bigint {
    return (BigInt(this.readU32(pa + 4)) << 32n) | BigInt(this.readU32(pa));
  }

  writeU64(pa: number, value: bigint): void {
    this.writeU32(pa, Number(value & 0xffff_ffffn));
    this.writeU32(pa + 4, Number((value >> 32n) & 0xffff_ffffn));
  }

  private newStorage(): Uint8Array {
    const index = this.frames.size + this.freeStorage.length;
    const slabIndex = Math.floor(index / FRAMES_PER_SLAB);
    while (this.slabs.length <= slabIndex) this.slabs.push(new SharedArrayBuffer(FRAMES_PER_SLAB * FRAME_SIZE));
    return new Uint8Array(this.slabs[slabIndex]!, (index % FRAMES_PER_SLAB) * FRAME_SIZE, FRAME_SIZE);
  }

  private readSlow(pa: number, n: number): number {
    const b = this.read(pa, new Uint8Array(n));
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i]!;
    return v;
  }

  private writeSlow(pa: number, n: number, value: number): void {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (value >>> (8 * i)) & 0xff;
    this.write(pa, b);
  }
}
