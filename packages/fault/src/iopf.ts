// I/O page-fault groups (drivers/iommu/io-pgfault.c): a PRI-capable device's page requests are
// held back until the request flagged LAST_PAGE arrives, then the whole group (earlier requests
// with the same group index, in arrival order, then the last one) goes to the handler of the
// domain the request targets. For iommufd that handler is a FAULT queue; whoever ends up owning
// the group answers it exactly once, and the answer reaches the device as one page response.

import { ERRNO } from '@viommu/uapi';
import type { FaultQueue } from './fault-queue.js';
import { IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_PAGE_RESP_FAILURE, IOMMU_PAGE_RESP_INVALID } from './constants.js';

/** struct iommu_fault_page_request, the part a FAULT record shows. */
export interface PageRequest {
  /** IOMMU_FAULT_PAGE_REQUEST_* bits; copied verbatim into the record's flags. */
  readonly flags: number;
  readonly pasid: number;
  /** PRI page request group index (SMMUv3 stall: the STAG). */
  readonly grpid: number;
  /** IOMMU_PGFAULT_PERM_* bits. */
  readonly perm: number;
  readonly addr: bigint;
}

/**
 * One attachment of a device to a fault-capable domain (the kernel's iommufd_attach_handle):
 * where its groups are queued and which DEVICE object ID the records carry. Core creates one per
 * attach (device or PASID); its identity is what detach-time auto-responses match on.
 */
export interface IopfHandle {
  readonly devId: number;
  readonly queue: FaultQueue;
}

/** Where a group is in its life; it only moves forward. */
export const GroupState = {
  /** Built, not yet handed to a queue. */
  New: 0,
  /** On the FAULT queue's deliver list, not read yet. */
  Queued: 1,
  /** Read by userspace, waiting under `cookie` for a response. */
  Awaiting: 2,
  /** Answered; the device has its response. */
  Answered: 3,
} as const;

export class FaultGroup<R extends PageRequest = PageRequest> {
  /** The FAULT table's index while awaiting a response (0 before it is read). */
  cookie = 0;
  state: number = GroupState.New;
  /** The response code the device received, or -1. */
  response = -1;
  /** Clock time by which the group must be answered (response-timeout policy), or Infinity. */
  deadline = Infinity;

  constructor(
    /** The requests in arrival order; the last one carries LAST_PAGE. */
    readonly faults: readonly R[],
    readonly handle: IopfHandle,
    readonly device: IopfDevice<R>,
  ) {}

  /** The request the response is addressed by (its PASID and group index). */
  get last(): R {
    return this.faults[this.faults.length - 1]!;
  }
}

/**
 * ops->page_response: the response for `request` (a group's last request, or a lone request that
 * had no fault handler) with an IOMMU_PAGE_RESP_* code; `group` is undefined for the lone case.
 */
export type PageResponder<R extends PageRequest> = (request: R, code: number, group: FaultGroup<R> | undefined) => void;

/**
 * A device's page-request state (the kernel's iommu_fault_param): partial requests waiting for
 * their group's last page, and the response path back to the device model.
 */
export class IopfDevice<R extends PageRequest = PageRequest> {
  private partial: R[] = [];
  private removed = false;
  /** Groups answered through this device, by code (index = IOMMU_PAGE_RESP_*). */
  readonly responses = [0, 0, 0];

  // Held as a method so that an IopfDevice<R> is usable where an IopfDevice<PageRequest> is expected.
  private readonly sink: { pageResponse(request: R, code: number, group: FaultGroup<R> | undefined): void };

  constructor(pageResponse: PageResponder<R>) {
    this.sink = { pageResponse };
  }

  /** Requests held back until their group's last page arrives. */
  get partialCount(): number {
    return this.partial.length;
  }

  /**
   * iommu_report_device_fault: `handle` is the fault-capable attachment the request targets (found
   * by PASID, or the RID's attachment), or undefined when there is none. Without one the request is
   * answered INVALID at once and the result is -EINVAL (the kernel's bad-iopf path); otherwise 0.
   * Partial requests are matched to their last page by group index only, as in the kernel.
   */
  report(request: R, handle: IopfHandle | undefined): number {
    if (!handle || this.removed) {
      this.sink.pageResponse(request, IOMMU_PAGE_RESP_INVALID, undefined);
      return -ERRNO.EINVAL;
    }
    if (!(request.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)) {
      // Not the last page: no response is due for it on its own.
      this.partial.push(request);
      return 0;
    }
    const group = new FaultGroup<R>(this.collect(request), handle, this);
    // A handler that cannot take the group makes the kernel abort it with FAILURE.
    if (!handle.queue.enqueue(group)) this.respond(group, IOMMU_PAGE_RESP_FAILURE);
    return 0;
  }

  /** iopf_group_response: the one response a group gets. Answering twice is a bug and throws. */
  respond(group: FaultGroup<R>, code: number): void {
    if (group.device !== this) throw new Error('page response through the wrong device');
    if (group.state === GroupState.Answered) throw new Error(`fault group ${group.last.grpid} answered twice`);
    group.state = GroupState.Answered;
    group.response = code;
    this.responses[code] = (this.responses[code] ?? 0) + 1;
    this.sink.pageResponse(group.last, code, group);
  }

  /** iopf_queue_discard_partial: the hardware queue overflowed, so held-back requests may never complete. */
  discardPartial(): number {
    const n = this.partial.length;
    this.partial = [];
    return n;
  }

  /**
   * iopf_queue_remove_device: partial requests are discarded without a response and later
   * requests are refused. Groups already owned by a FAULT queue stay there; core answers them
   * with FaultQueue.autoRespond when it detaches the device.
   */
  remove(): void {
    this.removed = true;
    this.partial = [];
  }

  /** The group for a last-page request: earlier partials with its group index, oldest first, then it. */
  private collect(last: R): R[] {
    if (this.partial.length === 0) return [last];
    const faults: R[] = [];
    let kept = 0;
    for (const p of this.partial) {
      if (p.grpid === last.grpid) faults.push(p);
      else this.partial[kept++] = p;
    }
    this.partial.length = kept;
    faults.push(last);
    return faults;
  }
}
