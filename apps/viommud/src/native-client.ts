// The native backend's client process (ADR 0052, 0125): kept out of backend.ts so a session
// process loads only what it runs (no simulator), which matters for its start-up under TCG.
import type { NativeProcess } from '@viommu/native';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DMABUF_GET,
  IOMMU_TEST_OP_DMABUF_REVOKE,
  IOMMU_VEVENTQ_ALLOC,
  POLLNVAL,
  SystemError,
  iommu_fault_alloc,
  iommu_ioas_map_file,
  iommu_test_cmd_create_access,
  iommu_test_cmd_dmabuf_revoke,
  iommu_veventq_alloc,
  type IoctlArg,
  type UserMemory,
} from '@viommu/uapi';
import type { Backend, BackendProcess } from './backend.js';

/**
 * Paths a client may open through the native backend. The daemon usually runs as root, so an open
 * of anything else (/etc/shadow, /proc/self/mem, another client's /proc/<pid>/fd) would hand the
 * client the daemon's privileges; EACCES, as for a file the process may not open.
 */
const NATIVE_OPENABLE = /^\/dev\/(iommu|vfio\/.+)$/;

/**
 * One client's process on the real kernel (ADR 0052), inside the client's own session process
 * (ADR 0125): other clients' memory and fds are not in it at all, but the session process's own
 * fds are (the IPC channel to the broker, the client's socket, the fd channel, libuv's). So this
 * keeps the set of fds the client opened or was given by the kernel and refuses every other number
 * with the errno the kernel gives an fd that is not open (EBADF, POLLNVAL). fds the kernel returns
 * inside ioctl structs (fault queue, vEVENTQ, selftest access and dma-buf) join the set and are
 * closed at exit with the rest, so the iommufd context goes even before the process does.
 */
export class NativeClientProcess implements BackendProcess {
  readonly memory: UserMemory;
  private readonly fds = new Set<number>();
  /** The fds of /dev/iommu among them: one iommufd context each. */
  private readonly contexts = new Set<number>();
  /** The client's mappings of regular files (memfds): address -> what was mapped. */
  private readonly fileMaps = new Map<bigint, { fd: number; length: number; offset: number }>();
  /** Mappings withdrawn because the file shrank under them: address -> length. */
  private readonly revoked = new Map<bigint, number>();
  private readonly page: number;
  private exited = false;

  constructor(readonly native: NativeProcess) {
    this.page = native.addon.pageSize();
    const mem = native.memory;
    this.memory = {
      alloc: (length) => mem.alloc(length),
      // After exit every allocation is already unmapped (the session frees its own list again).
      free: (addr) => {
        if (!this.exited) mem.free(addr);
      },
    };
  }

  /** How many fds the client holds in the daemon (a gauge for tests and logs). */
  get openFds(): number {
    return this.fds.size;
  }

  /** iommufd contexts the client holds open. */
  get contextCount(): number {
    return this.contexts.size;
  }

  /** Whether `fd` is one of this client's (opened by it or handed to it by the kernel). */
  owns(fd: number): boolean {
    return this.fds.has(fd);
  }

  private mine(fd: number, syscall: string): void {
    if (!this.fds.has(fd)) throw new SystemError('EBADF', syscall, `fd ${fd} is not open in this client`);
  }

  /** Makes `fd` the client's (one the kernel returned, or one it passed over SCM_RIGHTS). */
  adopt(fd: number): number {
    if (fd < 0) return fd;
    this.native.adopt(fd);
    this.fds.add(fd);
    return fd;
  }

  open(path: string, flags?: number): number {
    if (!NATIVE_OPENABLE.test(path) || path.split('/').includes('..')) throw new SystemError('EACCES', 'open', `${path} is not served by viommud`);
    const fd = this.native.open(path, flags);
    this.fds.add(fd);
    if (path === '/dev/iommu') this.contexts.add(fd);
    return fd;
  }

  close(fd: number): void {
    this.mine(fd, 'close');
    this.native.close(fd);
    this.fds.delete(fd);
    this.contexts.delete(fd);
  }

  ioctl(fd: number, request: number, arg: IoctlArg): number {
    this.mine(fd, 'ioctl');
    if (!(arg instanceof Uint8Array)) return this.native.ioctl(fd, request, arg);
    const field = fdFieldOf(request, arg);
    const passed = field ? field.get(arg) : -1;
    // Another client's fd inside the struct goes to the kernel as -1, an fd that is never open: the
    // kernel then makes every check it makes before looking the fd up, in its own order (size,
    // flags, object IDs...), and fails the lookup with its own errno (EBADF).
    if (field && !this.fds.has(passed)) field.set(arg, -1);
    try {
      const ret = this.native.ioctl(fd, request, arg);
      this.adoptFdResults(request, arg, ret);
      return ret;
    } finally {
      if (field) field.set(arg, passed);
    }
  }

  /** fds the kernel created for the client in a successful ioctl. */
  private adoptFdResults(request: number, arg: Uint8Array, ret: number): void {
    if (request === IOMMU_FAULT_QUEUE_ALLOC && arg.length >= iommu_fault_alloc.size) {
      this.adopt(iommu_fault_alloc.get(arg, 'out_fault_fd'));
    } else if (request === IOMMU_VEVENTQ_ALLOC && arg.length >= iommu_veventq_alloc.size) {
      this.adopt(iommu_veventq_alloc.get(arg, 'out_veventq_fd'));
    } else if (request === IOMMU_TEST_CMD && arg.length >= 24) {
      const op = testOp(arg);
      if (op === IOMMU_TEST_OP_CREATE_ACCESS) this.adopt(iommu_test_cmd_create_access.get(arg, 'out_access_fd'));
      else if (op === IOMMU_TEST_OP_DMABUF_GET) this.adopt(ret);
    }
  }

  read(fd: number, buf: Uint8Array): number {
    this.mine(fd, 'read');
    return this.native.read(fd, buf);
  }

  write(fd: number, buf: Uint8Array): number {
    this.mine(fd, 'write');
    return this.native.write(fd, buf);
  }

  poll(fd: number, events: number, timeoutMs: number): Promise<number> {
    // poll(2) reports an fd that is not open in revents, it does not fail.
    if (!this.fds.has(fd)) return Promise.resolve(POLLNVAL);
    return this.native.poll(fd, events, timeoutMs);
  }

  mmap(fd: number, length: number, offset: bigint): { addr: bigint; bytes: Uint8Array } {
    this.mine(fd, 'mmap');
    const file = this.regularFileSize(fd);
    // The session mirrors every byte of a mapping (ADR 0120): a page past the end of the file
    // would raise SIGBUS in the daemon, not in the client. Refused here instead (ADR 0052).
    if (file !== undefined && Number(offset) + length > roundUp(file, this.page)) {
      throw new SystemError('EINVAL', 'mmap', `pages past the end of the file (${file} bytes) cannot be served through the daemon`);
    }
    const m = this.native.mmap(fd, length, offset);
    if (file !== undefined) this.fileMaps.set(m.addr, { fd, length, offset: Number(offset) });
    return m;
  }

  munmap(addr: bigint, length: number): void {
    // A mapping the client cut short by truncating its file is already gone from the daemon.
    if (this.revoked.get(addr) === length) {
      this.revoked.delete(addr);
      return;
    }
    // NativeProcess takes only whole mappings it made for this client (EINVAL otherwise).
    this.native.munmap(addr, length);
    this.fileMaps.delete(addr);
  }

  /** st_size of `fd` if it is a regular file (a memfd), else undefined (iommufd, vEVENTQ...). */
  private regularFileSize(fd: number): number | undefined {
    const st = this.native.addon.fstat(fd);
    if (typeof st === 'number' || (st[0] & S_IFMT) !== S_IFREG) return undefined;
    return st[1];
  }

  memfdCreate(name = 'memfd'): number {
    const fd = this.native.memfdCreate(name);
    this.fds.add(fd);
    return fd;
  }

  ftruncate(fd: number, size: number): void {
    this.mine(fd, 'ftruncate');
    this.native.ftruncate(fd, size);
    // The client's mappings of the file that now reach past its end would SIGBUS the daemon when
    // the session mirrors them: they go (the buffer detaches, the mirror then skips it). In a
    // process of its own the client would get SIGBUS touching those pages; here it reads nothing.
    const end = roundUp(size, this.page);
    for (const [addr, m] of this.fileMaps) {
      if (m.fd !== fd || m.offset + m.length <= end) continue;
      this.native.munmap(addr, m.length);
      this.fileMaps.delete(addr);
      this.revoked.set(addr, m.length);
    }
  }

  /** Process exit: every fd closed (the kernel then releases the context), every mapping gone. */
  exit(): void {
    if (this.exited) return;
    this.exited = true;
    this.fds.clear();
    this.contexts.clear();
    this.fileMaps.clear();
    this.revoked.clear();
    this.native.dispose();
  }
}

/** The fd a client passes inside an ioctl struct, if the call has one and the struct reaches it. */
function fdFieldOf(request: number, arg: Uint8Array): { get(a: Uint8Array): number; set(a: Uint8Array, fd: number): void } | undefined {
  if (request === IOMMU_IOAS_MAP_FILE && arg.length >= 16) return MAP_FILE_FD;
  if (request === IOMMU_TEST_CMD && arg.length >= 20 && testOp(arg) === IOMMU_TEST_OP_DMABUF_REVOKE) return DMABUF_REVOKE_FD;
  return undefined;
}

const s32Field = (offset: number) => ({
  get: (a: Uint8Array) => new DataView(a.buffer, a.byteOffset, a.byteLength).getInt32(offset, true),
  set: (a: Uint8Array, fd: number) => new DataView(a.buffer, a.byteOffset, a.byteLength).setInt32(offset, fd, true),
});
/** iommu_ioas_map_file.fd and iommu_test_cmd.dmabuf_revoke.dmabuf_fd (both __s32). */
const MAP_FILE_FD = s32Field(iommu_ioas_map_file.fields.fd.offset);
const DMABUF_REVOKE_FD = s32Field(iommu_test_cmd_dmabuf_revoke.fields.dmabuf_fd.offset);

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const roundUp = (n: number, page: number) => Math.ceil(n / page) * page;

function testOp(arg: Uint8Array): number {
  return arg.length >= 8 ? new DataView(arg.buffer, arg.byteOffset, arg.byteLength).getUint32(4, true) : -1;
}

export async function nativeBackend(): Promise<Backend> {
  // Loaded only when asked for, so the daemon runs where the addon cannot be built.
  const native = await import('@viommu/native');
  native.loadAddon();
  const live = new Set<NativeClientProcess>();
  return {
    name: 'native',
    spawn() {
      const p = new NativeClientProcess(native.openNativeProcess());
      live.add(p);
      return p;
    },
    exit(p) {
      (p as NativeClientProcess).exit();
      live.delete(p as NativeClientProcess);
    },
    // The kernel has no call that lists a context's objects; what it holds is not visible here.
    liveObjects: () => new Map(),
    leakCount: () => 0,
    // /dev/iommu fds the clients hold (a context outlives its fd while an event fd still holds it).
    contextCount: () => [...live].reduce((n, p) => n + p.contextCount, 0),
  };
}
