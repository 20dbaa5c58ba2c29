// Waiting for fd readiness on the event loop: one libuv watcher per fd (libuv allows no more),
// shared by every pending poll() on that fd. No busy loop and no blocked loop: the process sleeps
// in epoll until the kernel says the fd changed, then the exact revents are re-read with poll(2).
import { POLLIN, POLLNVAL, POLLOUT, POLLPRI } from '@viommu/uapi';
import type { NativeAddon, NativeWatcher } from './addon.js';
import { check, systemError } from './errors.js';

const POLLRDNORM = 0x040;
const POLLWRNORM = 0x100;
const POLLRDHUP = 0x2000;

/** Rejection of a poll() cancelled through its AbortSignal, shaped like Node's own. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(cause?: unknown) {
    super('The operation was aborted', cause === undefined ? undefined : { cause });
    this.name = 'AbortError';
  }
}

interface Waiter {
  readonly events: number;
  readonly resolve: (revents: number) => void;
  readonly reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface FdWatch {
  readonly watcher: NativeWatcher;
  readonly waiters: Set<Waiter>;
  mask: number;
}

export class Poller {
  private readonly watches = new Map<number, FdWatch>();

  constructor(private readonly addon: NativeAddon) {}

  /**
   * poll(2) for one fd: resolves with revents, or 0 after `timeoutMs` (negative: no timeout).
   * An aborted `signal` rejects with AbortError and stops watching.
   */
  wait(fd: number, events: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    let now: number;
    try {
      now = check(this.addon.pollNow(fd, events), 'poll');
    } catch (e) {
      return Promise.reject(e);
    }
    if (now !== 0 || timeoutMs === 0) return Promise.resolve(now);
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = { events, resolve, reject, timer: undefined, signal, onAbort: undefined };
      const watch = this.watchFor(fd);
      watch.waiters.add(waiter);
      const status = this.restart(fd, watch);
      if (status < 0) {
        this.settle(fd, watch, waiter);
        reject(systemError(status, 'poll'));
        return;
      }
      if (timeoutMs > 0) waiter.timer = setTimeout(() => this.finish(fd, waiter, 0), timeoutMs);
      if (signal) {
        waiter.onAbort = () => {
          const w = this.watches.get(fd);
          if (w?.waiters.has(waiter)) {
            this.settle(fd, w, waiter);
            reject(new AbortError(signal.reason));
          }
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  /** The fd is being closed: pending polls resolve with POLLNVAL, as poll(2) reports a closed fd. */
  forget(fd: number): void {
    const watch = this.watches.get(fd);
    if (!watch) return;
    for (const waiter of [...watch.waiters]) this.finish(fd, waiter, POLLNVAL);
    watch.watcher.close();
    this.watches.delete(fd);
  }

  /** Cancels everything (process disposal). */
  close(): void {
    for (const fd of [...this.watches.keys()]) this.forget(fd);
  }

  /** Number of fds with a libuv watcher (for tests: watchers do not leak). */
  get watchedFds(): number {
    return this.watches.size;
  }

  private watchFor(fd: number): FdWatch {
    let watch = this.watches.get(fd);
    if (!watch) {
      const watcher = new this.addon.Watcher(fd, (status, _uvEvents) => this.onReady(fd, status));
      watch = { watcher, waiters: new Set(), mask: 0 };
      this.watches.set(fd, watch);
    }
    return watch;
  }

  private onReady(fd: number, status: number): void {
    const watch = this.watches.get(fd);
    if (!watch) return;
    for (const waiter of [...watch.waiters]) {
      if (status < 0) {
        this.settle(fd, watch, waiter);
        waiter.reject(systemError(status, 'poll'));
        continue;
      }
      const revents = this.addon.pollNow(fd, waiter.events);
      if (revents !== 0) this.finish(fd, waiter, revents < 0 ? POLLNVAL : revents);
    }
  }

  private finish(fd: number, waiter: Waiter, revents: number): void {
    const watch = this.watches.get(fd);
    if (!watch?.waiters.has(waiter)) return;
    this.settle(fd, watch, waiter);
    waiter.resolve(revents);
  }

  /** Removes a waiter and narrows (or stops) the watch to what the remaining waiters want. */
  private settle(fd: number, watch: FdWatch, waiter: Waiter): void {
    watch.waiters.delete(waiter);
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.restart(fd, watch);
  }

  private restart(_fd: number, watch: FdWatch): number {
    let mask = 0;
    for (const w of watch.waiters) mask |= this.uvMask(w.events);
    if (mask === watch.mask) return 0;
    watch.mask = mask;
    if (mask === 0) {
      watch.watcher.stop();
      return 0;
    }
    const status = watch.watcher.start(mask);
    if (status < 0) watch.mask = 0;
    return status;
  }

  /** poll(2) bits -> libuv's. POLLERR/POLLHUP need no bit: epoll always reports them. */
  private uvMask(events: number): number {
    const uv = this.addon.uv;
    let mask = 0;
    if (events & (POLLIN | POLLRDNORM)) mask |= uv.READABLE;
    if (events & (POLLOUT | POLLWRNORM)) mask |= uv.WRITABLE;
    if (events & POLLPRI) mask |= uv.PRIORITIZED;
    if (events & POLLRDHUP) mask |= uv.DISCONNECT;
    // Only errors wanted: libuv needs some bit; DISCONNECT never fires spuriously on ready data.
    return mask === 0 ? uv.DISCONNECT : mask;
  }
}
