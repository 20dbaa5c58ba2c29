// The FAULT object (eventq.c, IOMMUFD_OBJ_FAULT): fault groups arrive on a deliver list; read(2)
// hands out whole groups as iommu_hwpt_pgfault records and parks each under a cookie; write(2)
// takes iommu_hwpt_page_response records and answers the parked groups. Detach and destroy answer
// what is left with INVALID. Every group is answered exactly once, by exactly one of: a userspace
// response, an auto-response, or (simulator policy, off by default) the response timeout.

import { POLLOUT, SystemError, iommu_hwpt_page_response, iommu_hwpt_pgfault } from '@viommu/uapi';
import { type Clock, systemClock } from './clock.js';
import { IOMMU_PAGE_RESP_FAILURE, IOMMU_PAGE_RESP_INVALID } from './constants.js';
import { CookieTable } from './cookies.js';
import { Deque } from './deque.js';
import { EventQueue } from './eventq.js';
import { type FaultGroup, GroupState, type IopfHandle } from './iopf.js';

const RECORD = iommu_hwpt_pgfault.size; // 40
const RESPONSE = iommu_hwpt_page_response.size; // 8
const F = iommu_hwpt_pgfault.fields;
const R = iommu_hwpt_page_response.fields;

// Records are written byte by byte: a DataView per caller buffer costs more than the record.
// The 64-bit address goes through a scratch u64 in host byte order, reversed on a big-endian host.
const addr64 = new BigUint64Array(1);
const addr8 = new Uint8Array(addr64.buffer);
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function putU32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v & 0xff;
  buf[at + 1] = (v >>> 8) & 0xff;
  buf[at + 2] = (v >>> 16) & 0xff;
  buf[at + 3] = v >>> 24;
}

function getU32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

export interface FaultQueueOptions {
  /**
   * Simulator policy, not kernel ABI: a group not answered within this many milliseconds of its
   * arrival is taken back (from the deliver list or the cookie table) and answered with
   * `timeoutCode`. Linux has no such deadline; the default (undefined) is no timeout, as in Linux.
   */
  responseTimeoutMs?: number;
  /** The code a timed-out group gets: IOMMU_PAGE_RESP_FAILURE unless set. */
  timeoutCode?: number;
  clock?: Clock;
}

/** Running totals, for accounting checks: queued = answered + autoAnswered + timedOut + (still pending). */
export interface FaultStats {
  /** Groups handed to this queue. */
  queued: number;
  /** Groups read by userspace (given a cookie). */
  read: number;
  /** Groups answered by a userspace page response. */
  answered: number;
  /** Groups answered INVALID by detach or destroy. */
  autoAnswered: number;
  /** Groups answered by the response-timeout policy. */
  timedOut: number;
}

export class FaultQueue extends EventQueue {
  readonly stats: FaultStats = { queued: 0, read: 0, answered: 0, autoAnswered: 0, timedOut: 0 };

  private readonly deliver = new Deque<FaultGroup>();
  private readonly awaiting = new CookieTable<FaultGroup>();

  private readonly timeoutMs: number;
  private readonly timeoutCode: number;
  private readonly clock: Clock;
  /** Groups in arrival order, for deadlines; answered ones are skipped when they reach the head. */
  private readonly byAge = new Deque<FaultGroup>();
  private timer: unknown = undefined;
  private expiring = false;

  constructor(options: FaultQueueOptions = {}) {
    super();
    const { responseTimeoutMs, timeoutCode = IOMMU_PAGE_RESP_FAILURE, clock = systemClock } = options;
    if (responseTimeoutMs !== undefined && !(responseTimeoutMs >= 0)) {
      throw new RangeError(`responseTimeoutMs must be >= 0, got ${responseTimeoutMs}`);
    }
    this.timeoutMs = responseTimeoutMs ?? Infinity;
    this.timeoutCode = timeoutCode;
    this.clock = clock;
  }

  get pending(): boolean {
    return this.deliver.length > 0;
  }

  /** Groups on the deliver list (not read yet). */
  get queuedGroups(): number {
    return this.deliver.length;
  }

  /** Groups read and waiting for a response. */
  get awaitingGroups(): number {
    return this.awaiting.size;
  }

  /** The group waiting under `cookie`, if any. */
  awaitingGroup(cookie: number): FaultGroup | undefined {
    return this.awaiting.get(cookie);
  }

  /** The FAULT fd is always writable: EPOLLOUT, plus EPOLLIN | EPOLLRDNORM while groups are queued. */
  override poll(): number {
    return POLLOUT | super.poll();
  }

  /**
   * The domain's iopf handler (iommufd_fault_iopf_handler): the group joins the tail of the
   * deliver list. Returns false only once the queue is destroyed, which Linux rules out by
   * reference counting; the device then aborts the group with FAILURE.
   */
  enqueue(group: FaultGroup): boolean {
    if (this.destroyed) return false;
    group.state = GroupState.Queued;
    this.deliver.push(group);
    this.stats.queued++;
    if (this.timeoutMs !== Infinity) {
      group.deadline = this.clock.now() + this.timeoutMs;
      this.byAge.push(group);
      this.armTimer();
    }
    this.wake();
    return true;
  }

  /**
   * read(2) on the FAULT fd. `buf.length` must be a multiple of 40 (else ESPIPE, as the kernel
   * answers). Whole groups only, oldest first; each gets the lowest free cookie and one record per
   * request. EINVAL when the first queued group does not fit (so a zero-length read with a group
   * queued is EINVAL); otherwise the bytes produced, 0 when nothing is queued.
   */
  read(buf: Uint8Array): number {
    const count = buf.length;
    if (count % RECORD !== 0) throw new SystemError('ESPIPE', 'read', `length ${count} is not a multiple of ${RECORD}`);
    let done = 0;
    for (;;) {
      const group = this.deliver.peek();
      if (!group) break;
      const size = group.faults.length * RECORD;
      if (done >= count || size > count - done) {
        if (done === 0) throw new SystemError('EINVAL', 'read', `buffer cannot hold a ${size}-byte fault group`);
        break;
      }
      const cookie = this.awaiting.alloc(group);
      if (cookie === 0) {
        if (done === 0) throw new SystemError('EBUSY', 'read', 'no free response cookie');
        break;
      }
      this.deliver.shift();
      group.cookie = cookie;
      group.state = GroupState.Awaiting;
      this.stats.read++;
      const devId = group.handle.devId;
      for (const f of group.faults) {
        putU32(buf, done + F.flags.offset, f.flags);
        putU32(buf, done + F.dev_id.offset, devId);
        putU32(buf, done + F.pasid.offset, f.pasid);
        putU32(buf, done + F.grpid.offset, f.grpid);
        putU32(buf, done + F.perm.offset, f.perm);
        putU32(buf, done + F.__reserved.offset, 0);
        addr64[0] = f.addr;
        if (!HOST_LE) addr8.reverse();
        buf.set(addr8, done + F.addr.offset);
        putU32(buf, done + F.length.offset, 0); // the kernel never fills in a length
        putU32(buf, done + F.cookie.offset, cookie);
        done += RECORD;
      }
    }
    return done;
  }

  /**
   * write(2) on the FAULT fd: `buf.length` must be a multiple of 8 (else ESPIPE). Responses are
   * applied in order; the first bad one stops the batch: a code other than SUCCESS/INVALID, or a
   * cookie with no group waiting under it, is EINVAL. Returns the bytes consumed; the error is
   * thrown only when the very first response fails.
   */
  write(buf: Uint8Array): number {
    const count = buf.length;
    if (count % RESPONSE !== 0) throw new SystemError('ESPIPE', 'write', `length ${count} is not a multiple of ${RESPONSE}`);
    let done = 0;
    let error: SystemError | undefined;
    while (done < count) {
      const cookie = getU32(buf, done + R.cookie.offset);
      const code = getU32(buf, done + R.code.offset);
      if (code !== 0 && code !== 1) {
        error = new SystemError('EINVAL', 'write', `page response code ${code}`);
        break;
      }
      const group = this.awaiting.take(cookie);
      if (!group) {
        error = new SystemError('EINVAL', 'write', `no fault group awaits cookie ${cookie}`);
        break;
      }
      this.stats.answered++;
      group.device.respond(group, code);
      done += RESPONSE;
    }
    this.trimAnswered();
    if (done === 0 && error) throw error;
    return done;
  }

  /**
   * iommufd_auto_response_faults: the attachment `handle` is going away (detach or replace), so
   * its groups, queued or awaiting, are answered INVALID (queued ones first, then by cookie);
   * their cookies become invalid. Returns how many groups were answered.
   */
  autoRespond(handle: IopfHandle): number {
    const groups = this.deliver.removeWhere((g) => g.handle === handle);
    for (const g of this.awaiting.takeWhere((x) => x.handle === handle)) groups.push(g);
    this.answerAll(groups);
    this.trimAnswered();
    return groups.length;
  }

  /** iommufd_fault_destroy: every group left is answered INVALID; readers are woken and end. */
  destroy(): void {
    if (this.destroyed) return;
    const groups = this.deliver.removeWhere(() => true);
    for (const g of this.awaiting.takeWhere(() => true)) groups.push(g);
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.byAge.removeWhere(() => true);
    this.markDestroyed();
    this.answerAll(groups);
  }

  private answerAll(groups: FaultGroup[]): void {
    for (const g of groups) {
      this.stats.autoAnswered++;
      g.device.respond(g, IOMMU_PAGE_RESP_INVALID);
    }
  }

  // --- response-timeout policy -------------------------------------------------------------

  /**
   * Drops answered groups from the head of the age list. Responses mostly come oldest first, so
   * this keeps the list as short as the number of groups in flight.
   */
  private trimAnswered(): void {
    let head = this.byAge.peek();
    while (head && head.state === GroupState.Answered) {
      this.byAge.shift();
      head = this.byAge.peek();
    }
  }

  /** Arms one timer for the oldest unanswered group, unless one is armed or expiry is running. */
  private armTimer(): void {
    if (this.timer !== undefined || this.expiring) return;
    this.trimAnswered();
    const head = this.byAge.peek();
    if (!head) return;
    this.timer = this.clock.setTimer(this.onTimer, Math.max(0, head.deadline - this.clock.now()));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.expiring = true;
    try {
      const now = this.clock.now();
      for (;;) {
        const g = this.byAge.peek();
        if (!g || (g.state !== GroupState.Answered && g.deadline > now)) break;
        this.byAge.shift();
        if (g.state !== GroupState.Answered) this.expire(g);
      }
    } finally {
      this.expiring = false;
    }
    this.armTimer();
  };

  private expire(group: FaultGroup): void {
    if (group.state === GroupState.Queued) {
      // Arrival order is deadline order and reads take the oldest first, so it is normally the head.
      if (this.deliver.peek() === group) this.deliver.shift();
      else this.deliver.removeWhere((g) => g === group);
    } else {
      this.awaiting.take(group.cookie);
    }
    this.stats.timedOut++;
    group.device.respond(group, this.timeoutCode);
  }
}
