// pipe2(2) and eventfd(2) files, for processes that synchronise with a forked child (the
// selftest's fork_present). The simulator is single-threaded, so nothing ever blocks: a read that
// would wait fails EAGAIN instead, and poll reports the state as it is.

import { POLLERR, POLLHUP, POLLIN, POLLOUT, SystemError } from '@viommu/uapi';
import type { OpenFile } from './file.js';

/** Bytes a pipe holds before a write would block (the kernel's default, 16 pages). */
const PIPE_CAPACITY = 65536;

/** The buffer both ends of one pipe share, and how many of each end are still open. */
class PipeBuffer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  readers = 1;
  writers = 1;

  read(buf: Uint8Array): number {
    if (buf.length === 0) return 0;
    if (this.size === 0) {
      if (this.writers === 0) return 0; // end of file
      throw new SystemError('EAGAIN', 'read', 'pipe empty (a blocking read would wait for the writer)');
    }
    let n = 0;
    while (n < buf.length && this.chunks.length) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, buf.length - n);
      buf.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.size -= n;
    return n;
  }

  write(buf: Uint8Array): number {
    if (this.readers === 0) throw new SystemError('EPIPE', 'write', 'no reader');
    const n = Math.min(buf.length, PIPE_CAPACITY - this.size);
    if (n === 0 && buf.length) throw new SystemError('EAGAIN', 'write', 'pipe full');
    this.chunks.push(buf.slice(0, n));
    this.size += n;
    return n;
  }

  get readable(): boolean {
    return this.size > 0;
  }

  get writable(): boolean {
    return this.size < PIPE_CAPACITY;
  }
}

export class PipeReadEnd implements OpenFile {
  readonly kind = 'pipe';
  constructor(private readonly pipe: PipeBuffer) {}

  read(buf: Uint8Array): number {
    return this.pipe.read(buf);
  }

  poll(events: number): Promise<number> {
    let r = this.pipe.readable ? POLLIN : 0;
    if (this.pipe.writers === 0) r |= POLLHUP;
    return Promise.resolve(r & (events | POLLHUP));
  }

  release(): void {
    this.pipe.readers--;
  }
}

export class PipeWriteEnd implements OpenFile {
  readonly kind = 'pipe';
  constructor(private readonly pipe: PipeBuffer) {}

  write(buf: Uint8Array): number {
    return this.pipe.write(buf);
  }

  poll(events: number): Promise<number> {
    if (this.pipe.readers === 0) return Promise.resolve(POLLERR);
    return Promise.resolve(this.pipe.writable ? events & POLLOUT : 0);
  }

  release(): void {
    this.pipe.writers--;
  }
}

/** A new pipe: [read end, write end]. */
export function newPipe(): [PipeReadEnd, PipeWriteEnd] {
  const b = new PipeBuffer();
  return [new PipeReadEnd(b), new PipeWriteEnd(b)];
}

const EFD_SEMAPHORE = 1;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** An eventfd: a 64-bit counter; write adds, read takes it all (or one, in semaphore mode). */
export class EventFdFile implements OpenFile {
  readonly kind = 'eventfd';
  private count: bigint;

  constructor(initval: number, private readonly flags: number) {
    this.count = BigInt(initval >>> 0);
  }

  read(buf: Uint8Array): number {
    if (buf.length < 8) throw new SystemError('EINVAL', 'read', 'eventfd reads 8 bytes');
    if (this.count === 0n) throw new SystemError('EAGAIN', 'read', 'eventfd counter is 0 (a blocking read would wait)');
    const v = this.flags & EFD_SEMAPHORE ? 1n : this.count;
    this.count -= v;
    new DataView(buf.buffer, buf.byteOffset, 8).setBigUint64(0, v, true);
    return 8;
  }

  write(buf: Uint8Array): number {
    if (buf.length < 8) throw new SystemError('EINVAL', 'write', 'eventfd writes 8 bytes');
    const v = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
    if (v === U64_MAX) throw new SystemError('EINVAL', 'write', 'eventfd add of 0xffffffffffffffff');
    if (this.count + v >= U64_MAX) throw new SystemError('EAGAIN', 'write', 'eventfd counter would overflow');
    this.count += v;
    return 8;
  }

  poll(events: number): Promise<number> {
    let r = POLLOUT;
    if (this.count > 0n) r |= POLLIN;
    return Promise.resolve(r & events);
  }

  release(): void {}
}
