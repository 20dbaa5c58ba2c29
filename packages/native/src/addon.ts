// Loading the compiled addon, and the typed shape of what it exports. The addon returns numbers
// where negative means -errno (see src/addon/common.h); src/errors.ts turns them into SystemErrors.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A libuv poll watcher (src/addon/poll.cc). */
export interface NativeWatcher {
  /** Watch for libuv events (`uv.READABLE | ...`); 0 or a negative errno. */
  start(uvEvents: number): number;
  stop(): void;
  /** Stops and releases the libuv handle; the watcher cannot be started again. */
  close(): void;
  /** Whether the watcher, while started, keeps the event loop alive (it does until unref()). */
  ref(): void;
  unref(): void;
}

export interface NativeAddon {
  readonly abiVersion: number;
  open(path: string, flags: number): number;
  close(fd: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array | null | number): number;
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  pread(fd: number, buf: Uint8Array, offset: number | bigint): number;
  pipe(flags: number): [number, number] | number;
  eventfd(initval: number, flags: number): number;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: number | bigint): number;
  /** fcntl with an integer argument (F_ADD_SEALS, F_GET_SEALS, ...); the result or -errno. */
  fcntl(fd: number, cmd: number, arg?: number): number;
  /** [st_mode, st_size] of an open fd, or -errno. */
  fstat(fd: number): [number, number] | number;
  mmap(fd: number, length: number, offset: bigint, prot: number, flags: number): [bigint, ArrayBuffer] | number;
  /** Anonymous read-write memory followed by `guard` bytes of PROT_NONE (page multiples). */
  allocGuarded(length: number, guard: number): [bigint, ArrayBuffer] | number;
  /** `length` -1 unmaps the whole mapping that starts at `addr`. */
  munmap(addr: bigint, length: number): number;
  pageSize(): number;
  pollNow(fd: number, events: number): number;
  /**
   * poll(2) on one fd that blocks the calling thread: revents, 0 after `timeoutMs` (negative:
   * no limit), or -errno. EINTR resumes the wait with the time left.
   */
  pollWait(fd: number, events: number, timeoutMs: number): number;
  Watcher: new (fd: number, callback: (status: number, uvEvents: number) => void) => NativeWatcher;
  readonly uv: { READABLE: number; WRITABLE: number; DISCONNECT: number; PRIORITIZED: number };
  socketpair(type: number): [number, number] | number;
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  accept(fd: number): number;
  sendFds(fd: number, data: Uint8Array, fds: number[]): number;
  recvFds(fd: number, buf: Uint8Array): [number, number[], number] | number;
  peerCred(fd: number): [number, number, number] | number;
}

/** Why the native bridge cannot be used here. */
export type NativeUnavailableReason = 'unsupported-platform' | 'not-built' | 'load-failed' | 'no-iommu' | 'permission-denied' | 'open-failed';

/** Thrown by openNativeProcess() (never a crash) when the bridge cannot work on this machine. */
export class NativeUnavailableError extends Error {
  readonly reason: NativeUnavailableReason;
  constructor(reason: NativeUnavailableReason, message: string, cause?: unknown) {
    super(`@viommu/native: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'NativeUnavailableError';
    this.reason = reason;
  }
}

/** Where node-gyp puts the addon; VIOMMU_NATIVE_ADDON overrides it. */
export function addonPath(): string {
  const override = process.env.VIOMMU_NATIVE_ADDON;
  if (override) return override;
  // src/ and dist/ both sit one level below the package root.
  return fileURLToPath(new URL('../build/Release/viommu_native.node', import.meta.url));
}

/** Bumped with every change of the addon's exports (src/addon/addon.cc sets the same number). */
const ADDON_ABI = 5;

let loaded: NativeAddon | undefined;

/** The addon, loaded once; throws NativeUnavailableError saying why it cannot be. */
export function loadAddon(): NativeAddon {
  loaded ??= loadAddonFrom(addonPath());
  return loaded;
}

/** Loads the addon at `path` (uncached). */
export function loadAddonFrom(path: string): NativeAddon {
  if (process.platform !== 'linux') {
    throw new NativeUnavailableError('unsupported-platform', `iommufd exists only on Linux, not on ${process.platform}`);
  }
  if (!existsSync(path)) {
    throw new NativeUnavailableError('not-built', `the addon is not built (no ${path}); run \`pnpm --filter @viommu/native build\``);
  }
  let addon: NativeAddon;
  try {
    const load = createRequire(import.meta.url);
    addon = load(path) as NativeAddon;
  } catch (e) {
    throw new NativeUnavailableError('load-failed', `cannot load ${path}: ${(e as Error).message}; rebuild it for this Node.js`, e);
  }
  if (addon.abiVersion !== ADDON_ABI) {
    throw new NativeUnavailableError('load-failed', `${path} is a stale build (abi ${String(addon.abiVersion)}, want ${ADDON_ABI}); rebuild it`);
  }
  return addon;
}
