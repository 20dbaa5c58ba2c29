// What the FAULT and VEVENTQ objects share (the kernel's struct iommufd_eventq): a deliver list
// whose non-emptiness is poll readiness, and a wait queue woken on every arrival and at teardown.

import { POLLIN } from '@viommu/uapi';
import { POLLRDNORM } from './constants.js';

export type ReadyListener = () => void;

export abstract class EventQueue {
  private listeners: ReadyListener[] = [];
  private isDestroyed = false;

  /** True while the deliver list holds something a read would return. */
  abstract get pending(): boolean;

  /** True once the object was destroyed: nothing arrives any more and nothing is left to read. */
  get destroyed(): boolean {
    return this.isDestroyed;
  }

  /** The revents the fd's poll reports right now (EPOLLIN | EPOLLRDNORM while something is queued). */
  poll(): number {
    return this.pending ? POLLIN | POLLRDNORM : 0;
  }

  /**
   * Calls `listener` after every arrival and once at teardown (the kernel's wake_up on the
   * eventq's wait queue); returns the unsubscribe function. Listeners run synchronously inside
   * the producer's call, so they should only schedule work.
   */
  subscribe(listener: ReadyListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Resolves once something is pending or the queue is destroyed; rejects with the signal's reason on abort. */
  waitReadable(signal?: AbortSignal): Promise<void> {
    if (this.pending || this.isDestroyed) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(signal!.reason);
      };
      const unsubscribe = this.subscribe(() => {
        if (!this.pending && !this.isDestroyed) return;
        done();
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes every waiter; producers call it after queueing. Cheap when nobody listens. */
  protected wake(): void {
    const n = this.listeners.length;
    if (n === 0) return;
    if (n === 1) return this.listeners[0]!();
    for (const l of this.listeners.slice()) l();
  }

  /** Marks the queue destroyed and wakes waiters so that readers can end. */
  protected markDestroyed(): void {
    this.isDestroyed = true;
    this.wake();
    this.listeners = [];
  }
}
