// The process contract (blueprint section 3): the syscall-level surface every target implements
// (simulator, native bridge, daemon client), so one scenario runs unchanged on any of them.

export interface UserMemory {
  /** Page-aligned, zero-filled memory, like an anonymous mmap; `bytes` is a live view of it. */
  alloc(length: number): { addr: bigint; bytes: Uint8Array };
  free(addr: bigint): void;
}

/** An ioctl argument: the C struct's bytes (out fields written back in place), NULL, or an integer by value. */
export type IoctlArg = Uint8Array | null | number;

export interface Process {
  open(path: string, flags?: number): number;
  close(fd: number): void;
  ioctl(fd: number, request: number, arg: IoctlArg): number;
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  poll(fd: number, events: number, timeoutMs: number): Promise<number>;
  mmap(fd: number, length: number, offset: bigint): { addr: bigint; bytes: Uint8Array };
  munmap(addr: bigint, length: number): void;
  readonly memory: UserMemory;

  // Optional members: what the selftest's fork cases need. A target without them makes those
  // scenarios skip with a reason.

  /**
   * fork(2): a child process sharing this one's open files (closing one in either leaves the other
   * open) and seeing its memory at the same addresses (the selftest's buffers are MAP_SHARED, so
   * the child sees the same pages). Optional because the native bridge cannot fork a Node process.
   */
  fork?(): Process;
  /** exit(2) of the process (a forked child): every fd closed, its mm gone, so pins of its memory fail. */
  exit?(): void;
  /** pipe2(2): [readFd, writeFd] (named as in the native bridge). */
  pipe?(flags?: number): [number, number];
  /** eventfd(2) (named as in the native bridge). */
  eventfd?(initval?: number, flags?: number): number;
  /** The memory lines of /proc/<pid>/status this process would show, in kB. */
  procStatus?(): ProcStatus;
  /** Clears CAP_IPC_LOCK from the effective set (the selftest's drop_cap_ipc_lock()). */
  dropCapIpcLock?(): void;
}

/** /proc/<pid>/status memory counters, in kB as the file prints them. */
export interface ProcStatus {
  /** mm->pinned_vm: pages pinned for DMA on behalf of this mm. */
  readonly VmPin: number;
  /** mm->locked_vm: pages charged against RLIMIT_MEMLOCK to this mm. */
  readonly VmLck: number;
}

// poll(2) event bits.
export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDNORM = 0x040;

// open(2) flags used with /dev/iommu and VFIO cdevs.
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

export const PAGE_SIZE = 4096;
