// A memfd-like file (shmem): pages of the host's physical memory behind a byte size that
// ftruncate changes. The process's memfd helper creates one; mmap of it maps its pages shared;
// IOMMU_IOAS_MAP_FILE maps its pages into an IOAS, pinning them as memfd_pin_folios would.

import { SystemError } from '@viommu/uapi';
import { FRAME_SIZE, type FrameRun, type PhysicalMemory } from './physical-memory.js';

/** One run of the file's pages: file pages [firstPage, firstPage + run.frames). */
interface FileRun {
  readonly firstPage: number;
  readonly run: FrameRun;
}

let nextInode = 1;

/** A MemFile over pages someone else owns (MemFile.adopt). */
export interface AdoptedFileOptions {
  /** The file's size in bytes (its pages are `bytes`, the size rounded up to whole pages). */
  readonly size: number;
  readonly name?: string;
  /** F_SEAL_GROW on the file the pages come from: ftruncate may not grow this one either (EPERM). */
  readonly sealGrow?: boolean;
  /** Gives the pages back when the file and every pin on them are gone. */
  readonly release?: () => void;
}

export class MemFile {
  /** Identity of the file (an inode number), for debugging and for telling files apart. */
  readonly ino = nextInode++;
  private sizeBytes = 0;
  /** Runs in file order; together they back every page below `size`. */
  private runs: FileRun[] = [];
  /** Pages that back the file now (whole runs, possibly more than size / PAGE_SIZE). */
  private backedPages = 0;
  /**
   * Runs cut off by a shrinking truncate while something (an IOAS) still had them pinned: they
   * are freed when the file is released, as the page cache would free them on the last put.
   */
  private detached: FrameRun[] = [];
  private released = false;
  /** References: the memfd's open file, each mmap of it, and each io page table pages object over it. */
  private refs = 1;
  /** F_SEAL_SHRINK / F_SEAL_GROW: ftruncate that would shrink / grow the file fails with EPERM. */
  private sealShrink = false;
  private sealGrow = false;

  /**
   * @param name the memfd name, as memfd_create(name) gives it.
   * @param isShmem false models a file that is not shmem/hugetlbfs (a regular file): MAP_FILE
   *   accepts it, pinning fails with EINVAL.
   */
  constructor(
    readonly physical: PhysicalMemory,
    readonly name = 'memfd',
    readonly isShmem = true,
  ) {}

  /**
   * A memfd whose pages are `bytes` (an adopted run, ADR 0193): viommud's stand-in for a client's
   * memfd passed over SCM_RIGHTS, so IOAS_MAP_FILE pins and devices DMA the client's own pages.
   * That file is sealed against shrinking (the daemon maps only such files), and so is this one;
   * growing it, where the client's file allows, adds pages of the simulator's own past the shared ones.
   */
  static adopt(physical: PhysicalMemory, bytes: Uint8Array, opts: AdoptedFileOptions): MemFile {
    const { size } = opts;
    if (!Number.isSafeInteger(size) || size <= 0 || Math.ceil(size / FRAME_SIZE) * FRAME_SIZE !== bytes.length) {
      throw new RangeError(`MemFile.adopt: ${bytes.length} bytes cannot back a file of ${size} bytes`);
    }
    const file = new MemFile(physical, opts.name ?? 'memfd');
    const run = physical.adoptRun(bytes, opts.release);
    file.runs.push({ firstPage: 0, run });
    file.backedPages = run.frames;
    file.sizeBytes = size;
    file.sealShrink = true;
    file.sealGrow = opts.sealGrow ?? false;
    return file;
  }

  get size(): number {
    return this.sizeBytes;
  }

  /** ftruncate: grows with zeroed pages, or shrinks (pages past the end leave the file). */
  truncate(size: number): void {
    if (this.released) throw new SystemError('EBADF', 'ftruncate');
    if (!Number.isSafeInteger(size) || size < 0) throw new SystemError('EINVAL', 'ftruncate', `bad size ${size}`);
    // shmem_setattr's seal checks.
    if ((size < this.sizeBytes && this.sealShrink) || (size > this.sizeBytes && this.sealGrow)) {
      throw new SystemError('EPERM', 'ftruncate', `the memfd is sealed against ${size < this.sizeBytes ? 'shrinking' : 'growing'}`);
    }
    const pages = Math.ceil(size / FRAME_SIZE);
    if (pages > this.backedPages) {
      const run = this.physical.allocRun(pages - this.backedPages);
      this.runs.push({ firstPage: this.backedPages, run });
      this.backedPages = pages;
    } else {
      // Zero the tail of the last kept page, as shmem does, and drop whole runs past the end.
      const keep: FileRun[] = [];
      for (const r of this.runs) {
        if (r.firstPage < pages) keep.push(r);
        else this.detached.push(r.run);
      }
      this.runs = keep;
      const last = keep[keep.length - 1];
      this.backedPages = last ? last.firstPage + last.run.frames : 0;
    }
    if (size < this.sizeBytes) this.zero(size, this.sizeBytes);
    this.sizeBytes = size;
  }

  /** The physical frame behind file page `index`, or undefined past the end of the file. */
  frameOf(index: number): number | undefined {
    if (index < 0 || index * FRAME_SIZE >= this.sizeBytes) return undefined;
    const r = this.runFor(index);
    return r ? r.run.firstFrame + (index - r.firstPage) : undefined;
  }

  /**
   * How many pages from `index` on are physically contiguous and inside the file (at least 1 when
   * frameOf(index) is defined), so pinning walks runs, not pages.
   */
  contiguousFrom(index: number): number {
    const r = this.runFor(index);
    if (!r) return 0;
    const inFile = Math.ceil(this.sizeBytes / FRAME_SIZE) - index;
    return Math.min(r.firstPage + r.run.frames - index, inFile);
  }

  /**
   * The run and offset behind [offset, offset + length) of the file, for mmap; undefined when the
   * range is not inside one run (a file grown in steps), which the caller reports as it sees fit.
   */
  slice(offset: number, length: number): { run: FrameRun; runOffset: number } | undefined {
    const first = Math.floor(offset / FRAME_SIZE);
    const r = this.runFor(first);
    if (!r) return undefined;
    const runOffset = offset - r.firstPage * FRAME_SIZE;
    if (runOffset + length > r.run.bytes.length) return undefined;
    return { run: r.run, runOffset };
  }

  /** Reads file bytes (pread); bytes past the end read as nothing. */
  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.sizeBytes - offset));
    const out = new Uint8Array(n);
    this.each(offset, n, (run, off, pos, len) => out.set(run.bytes.subarray(off, off + len), pos));
    return out;
  }

  /** Writes file bytes (pwrite) inside the current size. */
  write(offset: number, bytes: Uint8Array): void {
    if (offset + bytes.length > this.sizeBytes) throw new SystemError('EFBIG', 'pwrite', 'write past the end of the memfd');
    this.each(offset, bytes.length, (run, off, pos, len) => run.bytes.set(bytes.subarray(pos, pos + len), off));
  }

  /** Takes a reference (an mmap, or pages of an io page table: the kernel's get_file). */
  get(): void {
    this.refs++;
  }

  /** Drops a reference (fput); the last one releases the file. */
  put(): void {
    if (--this.refs === 0) this.release();
  }

  /**
   * The last reference went away (every fd closed, every mapping and pin gone): the pages go back
   * to physical memory. `stillPinned` tells which runs something still pins, which stay allocated.
   */
  release(stillPinned: (run: FrameRun) => boolean = () => false): void {
    if (this.released) return;
    this.released = true;
    for (const run of [...this.runs.map((r) => r.run), ...this.detached]) {
      // An adopted run's pins hold it by themselves (it goes back to its owner after the last unpin).
      if (run.adopted || !stillPinned(run)) this.physical.freeRun(run.firstFrame);
    }
    this.runs = [];
    this.detached = [];
    this.backedPages = 0;
    this.sizeBytes = 0;
  }

  private runFor(index: number): FileRun | undefined {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.runs[mid]!;
      if (index < r.firstPage) hi = mid - 1;
      else if (index >= r.firstPage + r.run.frames) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  private zero(from: number, to: number): void {
    this.each(from, Math.min(to, this.backedPages * FRAME_SIZE) - from, (run, off, _pos, len) => run.bytes.fill(0, off, off + len));
  }

  private each(offset: number, length: number, fn: (run: FrameRun, off: number, pos: number, len: number) => void): void {
    let pos = 0;
    while (pos < length) {
      const page = Math.floor((offset + pos) / FRAME_SIZE);
      const r = this.runFor(page);
      if (!r) break;
      const off = offset + pos - r.firstPage * FRAME_SIZE;
      const len = Math.min(r.run.bytes.length - off, length - pos);
      fn(r.run, off, pos, len);
      pos += len;
    }
  }
}
