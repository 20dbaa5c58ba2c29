// vEVENTQ and FAULT queues as async iterables over their fds. The readers of @viommu/fault do the
// decoding (sequence gaps and LOST_EVENTS become `lost` items); this adds the ownership: closing the
// queue (or destroying it, or tearing down the iommufd) ends every iteration promptly and cleanly.

import { fdSource, readFaultGroups, readVevents, type DeliveredFaultGroup, type RecordSource, type VeventItem } from '@viommu/fault';
import type { Iommufd } from './iommufd.js';
import { ClientObject } from './object.js';

export type { DeliveredFaultGroup, VeventItem };

export interface ReadOptions {
  /** Stops the iteration (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** An fd that may be closed by its owner while a reader waits on it. */
abstract class FdQueue extends ClientObject {
  private fdOpen = true;
  private onClose: (() => void)[] = [];

  constructor(
    iommufd: Iommufd,
    id: number,
    kind: string,
    readonly fd: number,
  ) {
    super(iommufd, id, kind);
  }

  get isOpen(): boolean {
    return this.fdOpen;
  }

  /** Closes the fd: readers end after delivering what was already read. The object stays until destroy(). */
  close(): void {
    if (!this.fdOpen) return;
    this.fdOpen = false;
    this.iommufd.process.close(this.fd);
    for (const f of this.onClose.splice(0)) f();
  }

  protected override release(): void {
    this.close();
  }

  /** fdSource, but waiting also ends the moment close() runs (not at the next poll timeout). */
  protected source(): RecordSource {
    const inner = fdSource(this.iommufd.process, this.fd);
    const closed = new Promise<boolean>((resolve) => {
      if (!this.fdOpen) resolve(false);
      else this.onClose.push(() => resolve(false));
    });
    return {
      read: (buf) => (this.fdOpen ? inner.read(buf) : 0),
      write: (buf) => inner.write(buf),
      wait: (signal) => (this.fdOpen ? Promise.race([inner.wait(signal), closed]) : Promise.resolve(false)),
    };
  }
}

export class Veventq extends FdQueue implements AsyncIterable<VeventItem> {
  constructor(
    iommufd: Iommufd,
    id: number,
    fd: number,
    /** IOMMU_VEVENTQ_TYPE_*. */
    readonly type: number,
    readonly depth: number,
    /** Payload bytes per event, when the type is not one @viommu/fault knows. */
    readonly payloadSize?: number,
  ) {
    super(iommufd, id, 'VEVENTQ', fd);
  }

  /**
   * The events in sequence order, with a `lost` item wherever the kernel dropped events (queue
   * full: a LOST_EVENTS header; or a gap in sequence numbers). Ends when the queue is closed.
   */
  events(opts: ReadOptions = {}): AsyncGenerator<VeventItem, void, undefined> {
    return readVevents(this.source(), {
      type: this.type,
      ...(this.payloadSize !== undefined ? { payloadSize: this.payloadSize } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<VeventItem> {
    return this.events();
  }
}

export class FaultQueue extends FdQueue implements AsyncIterable<DeliveredFaultGroup> {
  constructor(iommufd: Iommufd, id: number, fd: number) {
    super(iommufd, id, 'FAULT', fd);
  }

  /**
   * Page-request groups, oldest first; answer each with `group.respond(IOMMUFD_PAGE_RESP_*)`.
   * Ends when the queue is closed (the kernel answers what is left INVALID on destroy).
   */
  groups(opts: ReadOptions = {}): AsyncGenerator<DeliveredFaultGroup, void, undefined> {
    return readFaultGroups(this.source(), opts.signal ? { signal: opts.signal } : {});
  }

  [Symbol.asyncIterator](): AsyncIterator<DeliveredFaultGroup> {
    return this.groups();
  }
}
