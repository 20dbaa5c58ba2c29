// A simulated process (the Process contract of @viommu/uapi): an fd table over OpenFiles, user
// memory (an AddressSpace over the host's physical memory), and mmaps of files.

import { PAGE_SIZE, POLLIN, POLLNVAL, POLLOUT, SystemError, type IoctlArg, type Process, type ProcStatus } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import { MemFile, type AdoptedFileOptions } from '../host/mem-file.js';
import { mmCounters, mmExited, type MemlockUser, type PinOwner } from '../ioas/index.js';
import type { FileMapping, OpenFile } from './file.js';
import { EventFdFile, newPipe } from './pipe.js';

export type { AdoptedFileOptions } from '../host/mem-file.js';

/** What the host resolves paths with. */
export interface PathResolver {
  openPath(proc: SimProcess, path: string, flags: number): OpenFile;
  /**
   * fork: the file a child's copy of an fd refers to, for files bound to the process that calls
   * them (the iommufd pins the caller's memory), or undefined to share `file` itself.
   */
  forkFile?(file: OpenFile, child: SimProcess): OpenFile | undefined;
}

/**
 * How many fds beyond the first refer to a file (fork shares files between processes): close
 * releases the file only when this is 0. Files never shared have no entry.
 */
const extraRefs = new WeakMap<OpenFile, number>();

/** Who a process runs as and what it may do (root with no limits by default, as the kernel selftest runs). */
export interface ProcessCredentials {
  readonly user: MemlockUser;
  /** RLIMIT_MEMLOCK in bytes (Infinity = unlimited). */
  readonly memlockLimit: number;
  readonly capIpcLock: boolean;
  readonly capSysResource: boolean;
}

/** A memfd open in a process. */
export class MemFdFile implements OpenFile {
  readonly kind = 'memfd';
  constructor(readonly file: MemFile) {}

  mmap(length: number, offset: bigint): FileMapping {
    const s = this.file.slice(Number(offset), length);
    if (!s) throw new SystemError('EINVAL', 'mmap', 'range not inside one run of the memfd (or past its end)');
    // The mapping holds the file until munmap (or exit).
    const file = this.file;
    file.get();
    return { run: s.run, runOffset: s.runOffset, writable: true, unmap: () => file.put() };
  }

  release(): void {
    // Mappings and io page tables holding the file keep its pages until they let go.
    this.file.put();
  }
}

/** The first fd handed out (0-2 are stdio in a real process). */
const FIRST_FD = 3;

export class SimProcess implements Process {
  readonly memory: AddressSpace;
  private readonly fds: (OpenFile | undefined)[] = [];
  private readonly fileMaps = new Map<number, { length: number; unmap(): void }>();
  private exited = false;
  /** CAP_IPC_LOCK in the effective set (dropCapIpcLock clears it). */
  private capIpcLock: boolean;

  constructor(
    private readonly resolver: PathResolver,
    memory: AddressSpace,
    readonly credentials: ProcessCredentials,
  ) {
    this.memory = memory;
    this.capIpcLock = credentials.capIpcLock;
  }

  /** The task as the io page table charges pins to it. */
  get task(): PinOwner {
    const c = this.credentials;
    return { mm: this.memory, user: c.user, memlockLimit: c.memlockLimit, capIpcLock: this.capIpcLock };
  }

  /** capset clearing CAP_IPC_LOCK from the effective set: pins are charged from now on. */
  dropCapIpcLock(): void {
    this.capIpcLock = false;
  }

  /**
   * fork(2): a child with the same credentials, every fd of this process referring to the same
   * open file, and this process's memory at the same addresses onto the same pages (the selftest
   * maps its buffers MAP_SHARED; a private COW copy is not modelled). File mappings are not
   * inherited as mappings of the child's own (its munmap/exit leaves them to this process).
   */
  fork(): SimProcess {
    this.alive('fork');
    const child = new SimProcess(this.resolver, this.memory.fork(), this.credentials);
    child.capIpcLock = this.capIpcLock;
    for (let fd = 0; fd < this.fds.length; fd++) {
      const f = this.fds[fd];
      if (!f) continue;
      const own = this.resolver.forkFile?.(f, child);
      if (own) child.fds[fd] = own;
      else {
        extraRefs.set(f, (extraRefs.get(f) ?? 0) + 1);
        child.fds[fd] = f;
      }
    }
    return child;
  }

  /** pipe2(2): [readFd, writeFd]; flags (O_CLOEXEC, O_NONBLOCK) change nothing here, nothing blocks. */
  pipe(flags = 0): [number, number] {
    void flags;
    this.alive('pipe2');
    const [r, w] = newPipe();
    return [this.installFd(r), this.installFd(w)];
  }

  /** eventfd(2). */
  eventfd(initval = 0, flags = 0): number {
    this.alive('eventfd2');
    return this.installFd(new EventFdFile(initval, flags));
  }

  /** VmPin and VmLck of /proc/<pid>/status: what the io page table charged to this mm, in kB. */
  procStatus(): ProcStatus {
    const c = mmCounters(this.memory);
    return { VmPin: (c.pinnedVm * PAGE_SIZE) / 1024, VmLck: (c.lockedVm * PAGE_SIZE) / 1024 };
  }

  get capSysResource(): boolean {
    return this.credentials.capSysResource;
  }

  /** memfd_create: a new empty shmem file, returned as an fd (size it with ftruncate). */
  memfdCreate(name = 'memfd'): number {
    this.alive('memfd_create');
    return this.installFd(new MemFdFile(new MemFile(this.memory.physical, name)));
  }

  /**
   * A memfd whose pages are `bytes`, someone else's memory (ADR 0193): viommud's stand-in for a
   * client's sealed memfd passed over SCM_RIGHTS, so IOAS_MAP_FILE of the fd maps the client's pages.
   */
  memfdAdopt(bytes: Uint8Array, opts: AdoptedFileOptions): number {
    this.alive('memfd_create');
    return this.installFd(new MemFdFile(MemFile.adopt(this.memory.physical, bytes, opts)));
  }

  /**
   * User memory whose pages are `bytes` (AddressSpace.adopt): viommud's MEM_SHARED regions. Freed
   * with memory.free like memory.alloc's; `release` gives the bytes back once nothing pins them.
   */
  adoptMemory(bytes: Uint8Array, release?: () => void): { addr: bigint; bytes: Uint8Array } {
    this.alive('mmap');
    return this.memory.adopt(bytes, release);
  }

  /** ftruncate on a memfd. */
  ftruncate(fd: number, size: number): void {
    const f = this.file(fd, 'ftruncate');
    if (!(f instanceof MemFdFile)) throw new SystemError('EINVAL', 'ftruncate');
    f.file.truncate(size);
  }

  /** The MemFile behind a memfd, or a non-shmem stand-in for any other open file; EBADF if `fd` is not open. */
  memFileOf(fd: number): MemFile {
    const f = this.file(fd, 'ioctl');
    if (f instanceof MemFdFile) return f.file;
    return new MemFile(this.memory.physical, f.kind, false);
  }

  open(path: string, flags = 2): number {
    this.alive('open');
    return this.installFd(this.resolver.openPath(this, path, flags));
  }

  close(fd: number): void {
    const file = this.file(fd, 'close');
    this.fds[fd] = undefined;
    const shared = extraRefs.get(file);
    if (shared) {
      // Another process still has it open (fork): only the last close releases the file.
      if (shared === 1) extraRefs.delete(file);
      else extraRefs.set(file, shared - 1);
      return;
    }
    file.release();
  }

  ioctl(fd: number, request: number, arg: IoctlArg): number {
    const file = this.file(fd, 'ioctl');
    if (!file.ioctl) throw new SystemError('ENOTTY', 'ioctl');
    return file.ioctl(request, arg);
  }

  read(fd: number, buf: Uint8Array): number {
    const file = this.file(fd, 'read');
    if (!file.read) throw new SystemError('EINVAL', 'read');
    return file.read(buf);
  }

  write(fd: number, buf: Uint8Array): number {
    const file = this.file(fd, 'write');
    if (!file.write) throw new SystemError('EINVAL', 'write');
    return file.write(buf);
  }

  poll(fd: number, events: number, timeoutMs: number): Promise<number> {
    const file = this.fds[fd];
    if (!file) return Promise.resolve(POLLNVAL);
    if (!file.poll) return Promise.resolve(events & (POLLIN | POLLOUT));
    return file.poll(events, timeoutMs);
  }

  mmap(fd: number, length: number, offset: bigint): { addr: bigint; bytes: Uint8Array } {
    const file = this.file(fd, 'mmap');
    if (!file.mmap) throw new SystemError('ENODEV', 'mmap');
    const m = file.mmap(length, offset);
    try {
      const out = this.memory.mapShared(m.run, m.runOffset, length, m.writable);
      this.fileMaps.set(Number(out.addr), { length, unmap: () => m.unmap() });
      return out;
    } catch (e) {
      m.unmap();
      throw e;
    }
  }

  munmap(addr: bigint, length: number): void {
    const key = Number(addr);
    const fm = this.fileMaps.get(key);
    if (fm) {
      // Partial munmap of a device mapping is not modelled: the whole mapping goes.
      this.fileMaps.delete(key);
      this.memory.free(addr);
      fm.unmap();
      return;
    }
    if (!this.memory.find(addr)) return; // munmap of an unmapped range succeeds
    void length;
    this.memory.free(addr);
  }

  /** Installs `file` at the lowest free fd. */
  installFd(file: OpenFile): number {
    let fd = FIRST_FD;
    while (this.fds[fd] !== undefined) fd++;
    this.fds[fd] = file;
    return fd;
  }

  /** Takes an fd back without releasing its file (undoing installFd in a failed ioctl). */
  uninstallFd(fd: number): void {
    this.fds[fd] = undefined;
  }

  /** The open file behind `fd`, or undefined. */
  fileOf(fd: number): OpenFile | undefined {
    return this.fds[fd];
  }

  /** Process exit: every fd closed, every file mapping unmapped (as the kernel does on exit). */
  exit(): void {
    if (this.exited) return;
    for (const [addr, fm] of [...this.fileMaps]) {
      this.fileMaps.delete(addr);
      this.memory.free(BigInt(addr));
      fm.unmap();
    }
    for (let fd = 0; fd < this.fds.length; fd++) if (this.fds[fd]) this.close(fd);
    // Pins of this process's memory fail from now on (mmget_not_zero), though pages already pinned stay.
    mmExited(this.memory);
    this.exited = true;
  }

  get openFdCount(): number {
    return this.fds.filter((f) => f !== undefined).length;
  }

  private file(fd: number, syscall: string): OpenFile {
    const f = Number.isInteger(fd) && fd >= 0 ? this.fds[fd] : undefined;
    if (!f) throw new SystemError('EBADF', syscall);
    return f;
  }

  private alive(syscall: string): void {
    if (this.exited) throw new SystemError('ESRCH', syscall, 'process exited');
  }
}

