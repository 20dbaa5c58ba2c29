// The simulated host's one physical memory. User memory, guest RAM, page tables, queues and device
// DMA all meet here, as bytes in the hardware's own formats.
//
// Memory is handed out in runs of physically contiguous 4 KiB frames, each run backed by one
// SharedArrayBuffer: the OS commits its pages only when touched (so a large, sparse guest RAM costs
// what is used), a run is one plain Uint8Array for whoever owns it, and a hardware model in a
// worker thread can share the very same bytes.
//
// A run can also be *adopted* (ADR 0193): its storage is bytes someone else owns (viommud's mapping
// of a client's memfd), so devices, io page tables and user mappings use those very pages. Such a
// run is counted like any other, but freed only when its last holder lets go (the adopter, and the
// pins on it), and its bytes then go back to their owner.

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 1 << FRAME_SHIFT;
/** The largest run one allocation may be (a single SharedArrayBuffer). */
export const MAX_RUN_BYTES = 2 ** 31;

export interface FrameRun {
  readonly firstFrame: number;
  readonly frames: number;
  /** The run's bytes: index 0 is physical address firstFrame * FRAME_SIZE. */
  readonly bytes: Uint8Array;
  /**
   * Storage given by adoptRun, not allocated here: maybe an ArrayBuffer rather than a
   * SharedArrayBuffer (so not for Atomics or for sharing with a worker thread).
   */
  readonly adopted: boolean;
}

/** What PhysicalMemory keeps for an adopted run: who still holds it, and whom to give the bytes back to. */
interface Adoption {
  holds: number;
  readonly release: (() => void) | undefined;
}

export class PhysicalMemory {
  /** Live runs, sorted by first frame. */
  private readonly runs: FrameRun[] = [];
  /** Frame numbers are never reused, so a stale physical address can never alias new memory. Frame 0 stays unused. */
  private nextFrame = 1;
  private allocated = 0;
  private lastHit: FrameRun | undefined;
  /** Adopted runs by first frame. */
  private readonly adoptions = new Map<number, Adoption>();

  /**
   * Allocates `frames` contiguous zeroed frames, the first one a multiple of `alignFrames` (a huge
   * page's worth for memory that should be mappable with huge pages; the frames skipped stay unbacked).
   */
  allocRun(frames: number, alignFrames = 1): FrameRun {
    if (!Number.isInteger(frames) || frames <= 0 || frames * FRAME_SIZE > MAX_RUN_BYTES) {
      throw new RangeError(`allocRun: cannot allocate ${frames} frames`);
    }
    if (!Number.isInteger(alignFrames) || alignFrames <= 0) throw new RangeError(`allocRun: bad alignment ${alignFrames}`);
    const run: FrameRun = {
      firstFrame: this.claim(frames, alignFrames),
      frames,
      bytes: new Uint8Array(new SharedArrayBuffer(frames * FRAME_SIZE)),
      adopted: false,
    };
    return this.add(run);
  }

  /**
   * A run whose storage is `bytes` (a whole number of frames; its contents are kept): fresh frame
   * numbers, the first a multiple of `alignFrames`, read and written in place by everyone. The
   * caller holds it; freeRun drops that hold, holdRun adds one (a pin). When the last hold goes the
   * run leaves physical memory and `release` runs, after which nothing here touches `bytes` again.
   */
  adoptRun(bytes: Uint8Array, release?: () => void, alignFrames = 1): FrameRun {
    const length = bytes.length;
    if (length === 0 || length % FRAME_SIZE !== 0) throw new RangeError(`adoptRun: ${length} bytes is not a whole number of frames`);
    // 8-byte alignment lets whoever owns the memory lay any typed array over it (mmap gives page alignment).
    if (bytes.byteOffset % 8 !== 0) throw new RangeError(`adoptRun: bytes at offset ${bytes.byteOffset} are not 8-byte aligned`);
    if (!Number.isInteger(alignFrames) || alignFrames <= 0) throw new RangeError(`adoptRun: bad alignment ${alignFrames}`);
    const frames = length / FRAME_SIZE;
    const run = this.add({ firstFrame: this.claim(frames, alignFrames), frames, bytes, adopted: true });
    this.adoptions.set(run.firstFrame, { holds: 1, release });
    return run;
  }

  /** One more holder of an adopted run (a pin: the kernel's page reference); nothing for other runs. */
  holdRun(run: FrameRun): void {
    const a = this.adoptions.get(run.firstFrame);
    if (a) a.holds++;
  }

  /**
   * Releases a run. Its frames read as zero afterwards and are never handed out again. An adopted
   * run only loses one holder here; the last one takes it out and gives the bytes back.
   */
  freeRun(firstFrame: number): void {
    const i = this.indexOf(firstFrame);
    const run = i >= 0 ? this.runs[i] : undefined;
    if (!run || run.firstFrame !== firstFrame) throw new RangeError(`freeRun: no run starts at frame ${firstFrame}`);
    const adoption = run.adopted ? this.adoptions.get(firstFrame) : undefined;
    if (adoption && --adoption.holds > 0) return;
    this.runs.splice(i, 1);
    this.allocated -= run.frames;
    if (this.lastHit === run) this.lastHit = undefined;
    if (adoption) {
      this.adoptions.delete(firstFrame);
      adoption.release?.();
    }
  }

  /** Frames in live runs. */
  get allocatedFrameCount(): number {
    return this.allocated;
  }

  /** Adopted runs still in physical memory (held by their adopter or pinned). */
  get adoptedRunCount(): number {
    return this.adoptions.size;
  }

  /** Every live run, in frame order (for invariant checks; do not keep it). */
  liveRuns(): readonly FrameRun[] {
    return this.runs;
  }

  /** The run holding physical address `pa`, or undefined (unbacked: reads zero, writes are dropped). */
  runAt(pa: number): FrameRun | undefined {
    const frame = Math.floor(pa / FRAME_SIZE);
    const hit = this.lastHit;
    if (hit && frame >= hit.firstFrame && frame < hit.firstFrame + hit.frames) return hit;
    const i = this.indexOf(frame);
    const run = i >= 0 ? this.runs[i] : undefined;
    if (run && frame < run.firstFrame + run.frames) {
      this.lastHit = run;
      return run;
    }
    return undefined;
  }

  read(pa: number, into: Uint8Array): Uint8Array {
    this.copy(pa, into.length, (run, off, pos, n) => into.set(run.bytes.subarray(off, off + n), pos), (pos, n) => into.fill(0, pos, pos + n));
    return into;
  }

  /** Writes bytes; bytes that fall outside every run are dropped, like a write to unbacked space. */
  write(pa: number, bytes: Uint8Array): void {
    this.copy(pa, bytes.length, (run, off, pos, n) => run.bytes.set(bytes.subarray(pos, pos + n), off), () => {});
  }

  readU32(pa: number): number {
    const run = this.runAt(pa);
    const off = run ? pa - run.firstFrame * FRAME_SIZE : 0;
    if (!run || off + 4 > run.bytes.length) return this.readSlow(pa, 4);
    const b = run.bytes;
    return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
  }

  writeU32(pa: number, value: number): void {
    const run = this.runAt(pa);
    const off = run ? pa - run.firstFrame * FRAME_SIZE : 0;
    // Hot path (queue entries, table words): straight into the run's bytes, nothing allocated.
    if (run && off + 4 <= run.bytes.length) {
      storeU32(run.bytes, off, value);
      return;
    }
    this.writeSlow(pa, value, 0, 4);
  }

  readU64(pa: number): bigint {
    return (BigInt(this.readU32(pa + 4)) << 32n) | BigInt(this.readU32(pa));
  }

  writeU64(pa: number, value: bigint): void {
    const lo = Number(BigInt.asUintN(32, value));
    const hi = Number(BigInt.asUintN(32, value >> 32n));
    const run = this.runAt(pa);
    const off = run ? pa - run.firstFrame * FRAME_SIZE : 0;
    if (run && off + 8 <= run.bytes.length) {
      storeU32(run.bytes, off, lo);
      storeU32(run.bytes, off + 4, hi);
      return;
    }
    this.writeSlow(pa, lo, hi, 8);
  }

  /** The first of `frames` fresh frame numbers, a multiple of `alignFrames` (the frames skipped stay unbacked). */
  private claim(frames: number, alignFrames: number): number {
    const first = Math.ceil(this.nextFrame / alignFrames) * alignFrames;
    this.nextFrame = first + frames;
    return first;
  }

  private add(run: FrameRun): FrameRun {
    this.runs.push(run); // frame numbers only grow: stays sorted
    this.allocated += run.frames;
    return run;
  }

  private indexOf(frame: number): number {
    // Last run whose firstFrame <= frame.
    let lo = 0;
    let hi = this.runs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.runs[mid]!.firstFrame <= frame) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  private copy(
    pa: number,
    length: number,
    backed: (run: FrameRun, offset: number, pos: number, n: number) => void,
    unbacked: (pos: number, n: number) => void,
  ): void {
    let pos = 0;
    while (pos < length) {
      const addr = pa + pos;
      const run = this.runAt(addr);
      if (run) {
        const off = addr - run.firstFrame * FRAME_SIZE;
        const n = Math.min(run.bytes.length - off, length - pos);
        backed(run, off, pos, n);
        pos += n;
      } else {
        const n = Math.min(FRAME_SIZE - (addr % FRAME_SIZE), length - pos);
        unbacked(pos, n);
        pos += n;
      }
    }
  }

  /** A store that crosses out of a run or falls outside every run: bytes one by one through write(). */
  private writeSlow(pa: number, lo: number, hi: number, n: 4 | 8): void {
    const b = new Uint8Array(n);
    storeU32(b, 0, lo);
    if (n === 8) storeU32(b, 4, hi);
    this.write(pa, b);
  }

  private readSlow(pa: number, n: number): number {
    const b = this.read(pa, new Uint8Array(n));
    return new DataView(b.buffer).getUint32(0, true);
  }
}

/** Little-endian 32-bit store into `b` at `off` (in bounds). */
function storeU32(b: Uint8Array, off: number, value: number): void {
  b[off] = value & 0xff;
  b[off + 1] = (value >>> 8) & 0xff;
  b[off + 2] = (value >>> 16) & 0xff;
  b[off + 3] = (value >>> 24) & 0xff;
}
