// The process contract (blueprint section 3) over real Linux syscalls.
import { ERRNO, O_RDWR, SystemError, type IoctlArg, type Process, type UserMemory } from '@viommu/uapi';
import { NativeUnavailableError, loadAddon, type NativeAddon } from './addon.js';
import { check, checked, systemError } from './errors.js';
import { Poller } from './poller.js';

// mmap(2) numbers (x86-64 and arm64 alike).
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;

// memfd_create(2) and eventfd(2) flags.
export const MFD_ALLOW_SEALING = 0x0002;
export const MFD_HUGETLB = 0x0004;
export const EFD_SEMAPHORE = 0x1;
export const EFD_NONBLOCK = 0o4000;

/**
 * Anonymous, page-aligned memory whose real addresses go into iommufd pointer fields. Each
 * allocation is followed by an inaccessible guard as long as itself, so a range that runs past the
 * end of an allocation faults (EFAULT) as the contract says, instead of silently reaching whatever
 * the kernel happened to map next to it.
 */
class NativeMemory implements UserMemory {
  /** Live allocations: address -> length asked for (the mapping is rounded up to pages). */
  readonly live = new Map<bigint, number>();

  constructor(private readonly addon: NativeAddon) {}

  alloc(length: number): { addr: bigint; bytes: Uint8Array } {
    if (!Number.isSafeInteger(length) || length <= 0) throw new SystemError('EINVAL', 'mmap', `length ${length}`);
    const page = this.addon.pageSize();
    const mapped = Math.ceil(length / page) * page;
    const [addr, buffer] = checked(this.addon.allocGuarded(mapped, mapped), 'mmap');
    this.live.set(addr, length);
    return { addr, bytes: new Uint8Array(buffer, 0, length) };
  }

  free(addr: bigint): void {
    if (!this.live.delete(addr)) throw new SystemError('EINVAL', 'munmap', `no allocation at 0x${addr.toString(16)}`);
    check(this.addon.munmap(addr, -1), 'munmap');
  }
}

export interface NativeProcessOptions {
  /**
   * The device to open once up front so a missing or forbidden /dev/iommu is reported clearly
   * (default '/dev/iommu'); `false` skips it (e.g. to use only the fd and socket helpers).
   */
  readonly checkDevice?: string | false;
}

export class NativeProcess implements Process {
  readonly memory: NativeMemory;
  private readonly poller: Poller;
  private readonly fds = new Set<number>();
  private readonly mappings = new Map<bigint, number>();

  constructor(readonly addon: NativeAddon) {
    this.memory = new NativeMemory(addon);
    this.poller = new Poller(addon);
  }

  open(path: string, flags: number = O_RDWR): number {
    const fd = check(this.addon.open(path, flags), 'open');
    this.fds.add(fd);
    return fd;
  }

  close(fd: number): void {
    // Stop watching before the number can be reused by another file.
    this.poller.forget(fd);
    check(this.addon.close(fd), 'close');
    this.fds.delete(fd);
  }

  ioctl(fd: number, request: number, arg: IoctlArg): number {
    const ret = this.addon.ioctl(fd, request, arg);
    if (ret < 0) throw systemError(ret, 'ioctl');
    return ret;
  }

  read(fd: number, buf: Uint8Array): number {
    return check(this.addon.read(fd, buf), 'read');
  }

  write(fd: number, buf: Uint8Array): number {
    return check(this.addon.write(fd, buf), 'write');
  }

  /** pread(2): reads at `offset` without moving the file position. */
  pread(fd: number, buf: Uint8Array, offset: number | bigint): number {
    return check(this.addon.pread(fd, buf, offset), 'pread');
  }

  /** Resolves with revents (0 on timeout; negative timeout waits forever); `signal` cancels. */
  poll(fd: number, events: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    return this.poller.wait(fd, events, timeoutMs, signal);
  }

  /** A shared mapping of `fd`; the bytes stay valid until munmap (then they read as empty). */
  mmap(fd: number, length: number, offset: bigint, prot: number = PROT_READ | PROT_WRITE): { addr: bigint; bytes: Uint8Array } {
    const [addr, buffer] = checked(this.addon.mmap(fd, length, offset, prot, MAP_SHARED), 'mmap');
    this.mappings.set(addr, length);
    return { addr, bytes: new Uint8Array(buffer) };
  }

  munmap(addr: bigint, length: number): void {
    if (this.mappings.get(addr) !== length) throw new SystemError('EINVAL', 'munmap', 'not a whole mapping made by mmap()');
    check(this.addon.munmap(addr, length), 'munmap');
    this.mappings.delete(addr);
  }

  /** How many fds have a libuv watcher (tests check that none leak). */
  pollerWatchedFds(): number {
    return this.poller.watchedFds;
  }

  // Beyond the contract: what IOAS_MAP_FILE, fault/event tests and the daemon need.

  /** memfd_create(2), always close-on-exec; size it with ftruncate(). */
  memfdCreate(name: string, flags = 0): number {
    const fd = check(this.addon.memfdCreate(name, flags), 'memfd_create');
    this.fds.add(fd);
    return fd;
  }

  ftruncate(fd: number, length: number | bigint): void {
    check(this.addon.ftruncate(fd, length), 'ftruncate');
  }

  /** pipe2(2): [readFd, writeFd]. */
  pipe(flags = 0): [number, number] {
    const pair = checked(this.addon.pipe(flags), 'pipe2');
    pair.forEach((fd) => this.fds.add(fd));
    return pair;
  }

  eventfd(initval = 0, flags = 0): number {
    const fd = check(this.addon.eventfd(initval, flags), 'eventfd2');
    this.fds.add(fd);
    return fd;
  }

  /** Takes ownership of an fd made elsewhere (received over a socket, returned by an ioctl). */
  adopt(fd: number): number {
    this.fds.add(fd);
    return fd;
  }

  /** Closes every fd this process opened and unmaps every mapping and allocation left. */
  dispose(): void {
    this.poller.close();
    for (const fd of this.fds) this.addon.close(fd);
    this.fds.clear();
    for (const addr of this.mappings.keys()) this.addon.munmap(addr, -1);
    this.mappings.clear();
    for (const addr of this.memory.live.keys()) this.addon.munmap(addr, -1);
    this.memory.live.clear();
  }
}

/**
 * The process contract over the real kernel. Throws NativeUnavailableError (reason: not-built,
 * load-failed, unsupported-platform, no-iommu, permission-denied, open-failed) when it cannot work.
 */
export function openNativeProcess(options: NativeProcessOptions = {}): NativeProcess {
  const addon = loadAddon();
  const device = options.checkDevice ?? '/dev/iommu';
  if (device !== false) {
    const fd = addon.open(device, O_RDWR);
    if (fd < 0) throw openFailure(device, fd);
    addon.close(fd);
  }
  return new NativeProcess(addon);
}

/** Why `device` could not be opened (`ret` is the negative errno), in the caller's terms. */
export function openFailure(device: string, ret: number): NativeUnavailableError {
  const e = systemError(ret, 'open');
  switch (-ret) {
    case ERRNO.ENOENT:
    case ERRNO.ENODEV:
    case ERRNO.ENXIO:
      return new NativeUnavailableError('no-iommu', `${device} does not exist: this kernel has no iommufd (CONFIG_IOMMUFD) or it is not loaded`, e);
    case ERRNO.EACCES:
    case ERRNO.EPERM:
      return new NativeUnavailableError('permission-denied', `no permission to open ${device}: run as root or grant access to the device`, e);
    default:
      return new NativeUnavailableError('open-failed', `cannot open ${device}: ${e.message}`, e);
  }
}
