// A simulated process's user address space (its "mm"): page-aligned anonymous mappings backed by
// frames of the host's physical memory, so that what the process writes is what a device DMAs.

import { SystemError, type UserMemory } from '@viommu/uapi';
import { FRAME_SIZE, MAX_RUN_BYTES, type FrameRun, type PhysicalMemory } from './physical-memory.js';

/** Where user mappings start; below it nothing is mapped, so small integers are never valid pointers. */
const USER_BASE = 0x7f00_0000_0000;
const HUGE_PAGE = 2 * 1024 * 1024;
/** Gap left unmapped after each mapping, so running off its end faults as it would in a real process. */
const GUARD = FRAME_SIZE;

export interface UserMapping {
  readonly addr: number;
  readonly length: number;
  /** The physical run behind the mapping (user memory is physically contiguous here, which nothing may rely on). */
  readonly run: FrameRun;
  /** Where in the run the mapping starts, in bytes (non-zero for a window onto a file's pages). */
  readonly runOffset: number;
  readonly bytes: Uint8Array;
  readonly writable: boolean;
  /** Memory that belongs to someone else (a memfd, a device page) and is not freed with the mapping. */
  readonly shared: boolean;
}

let nextMmId = 1;

export class AddressSpace implements UserMemory {
  /** Identity of this mm, for per-process (RLIMIT_MODE 1) accounting and CHANGE_PROCESS. */
  readonly id = nextMmId++;
  private readonly mappings: UserMapping[] = []; // sorted by addr
  private nextAddr = USER_BASE;

  constructor(readonly physical: PhysicalMemory) {}

  alloc(length: number): { addr: bigint; bytes: Uint8Array } {
    if (!Number.isSafeInteger(length) || length <= 0) throw new SystemError('EINVAL', 'mmap', `bad length ${length}`);
    const frames = Math.ceil(length / FRAME_SIZE);
    if (frames * FRAME_SIZE > MAX_RUN_BYTES) throw new SystemError('ENOMEM', 'mmap', `one mapping is at most ${MAX_RUN_BYTES} bytes here`);
    const run = this.physical.allocRun(frames, this.placeFor(length));
    const m = this.insert(run, 0, frames * FRAME_SIZE, true, false);
    return { addr: BigInt(m.addr), bytes: m.bytes };
  }

  /**
   * Like alloc, but the mapping's pages are `bytes` (a whole number of pages, e.g. the daemon's
   * mapping of a client's memfd; ADR 0193): an adopted run placed as alloc places its memory. free
   * (or, if something still pins them then, the last unpin) gives the bytes back through `release`.
   */
  adopt(bytes: Uint8Array, release?: () => void): { addr: bigint; bytes: Uint8Array } {
    const length = bytes.length;
    if (length === 0 || length % FRAME_SIZE !== 0) throw new SystemError('EINVAL', 'mmap', `bad length ${length}`);
    const run = this.physical.adoptRun(bytes, release, this.placeFor(length));
    const m = this.insert(run, 0, length, true, false);
    return { addr: BigInt(m.addr), bytes: m.bytes };
  }

  /** Maps part of a run owned by someone else (a memfd's pages, a device page) into this address space. */
  mapShared(run: FrameRun, offset: number, length: number, writable: boolean): { addr: bigint; bytes: Uint8Array } {
    const m = this.insert(run, offset, length, writable, true);
    return { addr: BigInt(m.addr), bytes: m.bytes };
  }

  free(addr: bigint): void {
    const i = this.mappings.findIndex((m) => BigInt(m.addr) === addr);
    if (i < 0) throw new SystemError('EINVAL', 'munmap', `0x${addr.toString(16)} is not the start of a mapping`);
    const [m] = this.mappings.splice(i, 1);
    if (!m!.shared) this.physical.freeRun(m!.run.firstFrame);
  }

  /** The mapping holding `va`, or undefined (an access there would fault). */
  find(va: bigint | number): UserMapping | undefined {
    const a = Number(va);
    if (!Number.isSafeInteger(a)) return undefined;
    let lo = 0;
    let hi = this.mappings.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = this.mappings[mid]!;
      if (a < m.addr) hi = mid - 1;
      else if (a >= m.addr + m.length) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  /**
   * The physical frame behind the user page holding `va` (what pin_user_pages finds), or
   * undefined when the page is not mapped, or not writable and `write` is asked.
   */
  frameOf(va: bigint | number, write = false): number | undefined {
    const m = this.find(va);
    if (!m || (write && !m.writable)) return undefined;
    return m.run.firstFrame + Math.floor((m.runOffset + Number(va) - m.addr) / FRAME_SIZE);
  }

  /** Copies user memory out, as copy_from_user: EFAULT if any byte is unmapped. */
  read(va: bigint | number, length: number, syscall = 'ioctl'): Uint8Array {
    const out = new Uint8Array(length);
    this.walk(va, length, syscall, false, (m, off, pos, n) => out.set(m.bytes.subarray(off, off + n), pos));
    return out;
  }

  /** Copies into user memory, as copy_to_user: EFAULT if any byte is unmapped. */
  write(va: bigint | number, bytes: Uint8Array, syscall = 'ioctl'): void {
    this.walk(va, bytes.length, syscall, true, (m, off, pos, n) => m.bytes.set(bytes.subarray(pos, pos + n), off));
  }

  /**
   * fork(): a new address space with every mapping of this one at the same address, onto the same
   * pages (as MAP_SHARED memory is after fork). The child never frees them; they stay this one's.
   */
  fork(): AddressSpace {
    const child = new AddressSpace(this.physical);
    for (const m of this.mappings) child.mappings.push({ ...m, shared: true });
    child.nextAddr = this.nextAddr;
    return child;
  }

  /** Every live mapping, in address order. */
  list(): readonly UserMapping[] {
    return this.mappings;
  }

  private walk(
    va: bigint | number,
    length: number,
    syscall: string,
    write: boolean,
    each: (m: UserMapping, offset: number, pos: number, n: number) => void,
  ): void {
    let pos = 0;
    const start = Number(va);
    while (pos < length) {
      const m = this.find(start + pos);
      if (!m || (write && !m.writable)) throw new SystemError('EFAULT', syscall, `user address 0x${(start + pos).toString(16)} is not mapped`);
      const off = start + pos - m.addr;
      const n = Math.min(m.length - off, length - pos);
      each(m, off, pos, n);
      pos += n;
    }
  }

  /**
   * Like Linux's THP placement of anonymous memory: a mapping of a huge page or more starts on a
   * huge-page boundary, virtually and physically, so the io page table can map it with huge pages
   * whatever this host allocated before (the selftest's MAP_HUGETLB buffers rely on it). Moves the
   * next user address; returns the frame alignment to ask physical memory for.
   */
  private placeFor(length: number): number {
    if (length < HUGE_PAGE) return 1;
    this.nextAddr = Math.ceil(this.nextAddr / HUGE_PAGE) * HUGE_PAGE;
    return HUGE_PAGE / FRAME_SIZE;
  }

  private insert(run: FrameRun, runOffset: number, length: number, writable: boolean, shared: boolean): UserMapping {
    const addr = this.nextAddr;
    this.nextAddr += length + GUARD;
    const bytes = run.bytes.subarray(runOffset, runOffset + length);
    const m: UserMapping = { addr, length, run, runOffset, bytes, writable, shared };
    this.mappings.push(m); // addresses only grow, so the list stays sorted
    return m;
  }
}
