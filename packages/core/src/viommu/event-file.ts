// What the FAULT and VEVENTQ fds share (eventq.c's iommufd_eventq fops): an anonymous, non-seekable
// file over a queue of @viommu/fault, whose poll reports readiness and whose release drops the
// fd's reference on its object and on the iommufd file.

import { POLLERR, POLLHUP, POLLOUT, SystemError } from '@viommu/uapi';
import type { EventQueue } from '@viommu/fault';
import type { IommufdContext } from '../context.js';
import { ref, unref, type IommufdObject } from '../object/object.js';
import type { OpenFile } from '../process/file.js';

export abstract class EventFile implements OpenFile {
  abstract readonly kind: string;
  private open = true;

  constructor(
    readonly ctx: IommufdContext,
    readonly owner: IommufdObject,
    readonly queue: EventQueue,
    /** Bits poll always reports (the FAULT fd is always writable: EPOLLOUT). */
    private readonly alwaysReady: number,
  ) {
    // iommufd_eventq_init: the file holds its object and the iommufd file.
    ref(owner);
    ctx.holdFile();
  }

  get isOpen(): boolean {
    return this.open;
  }

  write(_buf: Uint8Array): number {
    void _buf;
    // No write op: the VFS answers EINVAL.
    throw new SystemError('EINVAL', 'write', `${this.kind} fd is not writable`);
  }

  /** poll(2): revents among `events` (ERR/HUP are never set for these fds). */
  poll(events: number, timeoutMs: number): Promise<number> {
    const mask = events | POLLERR | POLLHUP;
    const now = (this.queue.poll() | this.alwaysReady) & mask;
    if (now !== 0 || timeoutMs === 0) return Promise.resolve(now);
    return new Promise<number>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const unsubscribe = this.queue.subscribe(() => {
        const r = (this.queue.poll() | this.alwaysReady) & mask;
        if (r === 0 && !this.queue.destroyed) return;
        finish(r);
      });
      const finish = (r: number) => {
        unsubscribe();
        if (timer !== undefined) clearTimeout(timer);
        resolve(r);
      };
      if (timeoutMs > 0) timer = setTimeout(() => finish(0), timeoutMs);
    });
  }

  /** The last fd closed (iommufd_eventq_fops_release). */
  release(): void {
    if (!this.open) return;
    this.open = false;
    unref(this.owner);
    this.ctx.putFile();
  }
}

/** The POLLOUT bit the FAULT fd always reports. */
export const FAULT_ALWAYS_READY = POLLOUT;
