// The vEVENTQ object (eventq.c, driver.c iommufd_viommu_report_event): a FIFO of driver-reported
// events bounded by `depth`, each stamped with a 31-bit sequence number, and one "lost events"
// header that stands in for events dropped while the queue was full.
//
// The kernel keeps the lost-events header as a list node that is always the tail when present:
// every append first unlinks it if it is last, and a drop re-appends it with a new sequence. So
// the deliver list is always "normal events, then maybe the lost header", which is what this
// models: a ring of normal events plus a `lostQueued` flag and the sequence the header carries.

import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, SystemError } from '@viommu/uapi';
import { VEVENT_HEADER_SIZE, VEVENT_SEQUENCE_MASK, VEVENTQ_MAX_DEPTH } from './constants.js';
import { EventQueue } from './eventq.js';

export interface VeventQueueOptions {
  /** veventq_depth: how many normal events may be queued, 1..VEVENTQ_MAX_DEPTH. */
  depth: number;
  /** enum iommu_veventq_type this queue receives (informational; the vIOMMU routes by it). */
  type?: number;
  /** First sequence number; Linux always starts at 0. Only for tests of the 2^31 wrap. */
  initialSequence?: number;
}

/** Running totals, for accounting checks: produced = read + lost + freed. */
export interface VeventStats {
  /** Events a driver reported to this queue (including those that could not be queued). */
  produced: number;
  /** Normal events returned by read. */
  read: number;
  /** Events dropped (queue full or allocation failure); each consumed a sequence number. */
  lost: number;
  /** Normal events still queued when the queue was destroyed. */
  freed: number;
}

const INITIAL_SLOTS = 16;

export class VeventQueue extends EventQueue {
  readonly depth: number;
  readonly type: number;
  readonly stats: VeventStats = { produced: 0, read: 0, lost: 0, freed: 0 };

  /** Next sequence number to hand out (veventq->sequence). */
  private sequence = 0;
  private lostQueued = false;
  private lostSequence = 0;

  // Ring of queued normal events: slot i holds sequence seqs[i], lens[i] payload bytes at
  // data[i * stride]. Capacity is a power of two that grows on demand up to the depth, so a
  // 2^19-deep queue costs nothing until it fills, and steady state allocates nothing.
  private capacity = 0;
  private stride = 0;
  private head = 0;
  private count = 0;
  private seqs = new Uint32Array(0);
  private lens = new Uint32Array(0);
  private data = new Uint8Array(0);

  constructor(options: VeventQueueOptions) {
    super();
    const { depth, type = 0, initialSequence = 0 } = options;
    if (!Number.isInteger(depth) || depth < 1 || depth > VEVENTQ_MAX_DEPTH) {
      // VEVENTQ_ALLOC answers EINVAL before the queue exists; reaching here is a caller bug.
      throw new RangeError(`veventq depth ${depth} is outside 1..${VEVENTQ_MAX_DEPTH}`);
    }
    this.depth = depth;
    this.type = type;
    this.sequence = initialSequence & VEVENT_SEQUENCE_MASK;
  }

  /** Normal events queued (veventq->num_events). */
  get numEvents(): number {
    return this.count;
  }

  /** Whether a LOST_EVENTS header is queued (always behind every normal event). */
  get lostEventsQueued(): boolean {
    return this.lostQueued;
  }

  /** The sequence number the next reported event will get. */
  get nextSequence(): number {
    return this.sequence;
  }

  get pending(): boolean {
    return this.count > 0 || this.lostQueued;
  }

  /**
   * A driver reports one event (iommufd_viommu_report_event for this queue's type): the payload
   * bytes [start, end) are copied. Returns true when queued, false when the queue was full and the
   * event was replaced by the lost-events header (the kernel returns 0 in both cases).
   */
  report(payload: Uint8Array, start = 0, end = payload.length): boolean {
    const len = end - start;
    if (this.destroyed) throw new Error('vEVENT reported to a destroyed vEVENTQ');
    if (len <= 0) throw new RangeError('a vEVENT needs a payload'); // the kernel WARNs and returns EINVAL
    this.stats.produced++;
    if (this.count === this.depth) {
      this.queueLost();
      return false;
    }
    if (this.count === this.capacity) this.grow();
    if (len > this.stride) this.widen(len);
    const slot = (this.head + this.count) & (this.capacity - 1);
    copyBytes(payload, start, this.data, slot * this.stride, len);
    this.lens[slot] = len;
    this.seqs[slot] = this.sequence;
    this.count++;
    // Appending a normal event unlinks a trailing lost header: the loss shows only as a sequence gap.
    this.lostQueued = false;
    this.sequence = (this.sequence + 1) & VEVENT_SEQUENCE_MASK;
    this.wake();
    return true;
  }

  /**
   * The event could not be allocated (GFP_NOWAIT failure): the kernel queues the lost-events
   * header in its place and the driver gets ENOMEM. Fault injection uses this.
   */
  reportAllocFailure(): void {
    if (this.destroyed) throw new Error('vEVENT reported to a destroyed vEVENTQ');
    this.stats.produced++;
    this.queueLost();
  }

  /**
   * read(2) on the vEVENTQ fd: whole records only (8-byte header, then the payload), FIFO.
   * EINVAL when `buf` is shorter than a header, or when the first queued normal event does not fit;
   * otherwise returns the bytes written into `buf` (0 when nothing is queued).
   */
  read(buf: Uint8Array): number {
    const count = buf.length;
    if (count < VEVENT_HEADER_SIZE) throw new SystemError('EINVAL', 'read', 'buffer shorter than a vEVENT header');
    let done = 0;
    while (count - done >= VEVENT_HEADER_SIZE) {
      if (this.count > 0) {
        const slot = this.head;
        const len = this.lens[slot]!;
        if (VEVENT_HEADER_SIZE + len > count - done) {
          if (done === 0) throw new SystemError('EINVAL', 'read', `buffer cannot hold a ${VEVENT_HEADER_SIZE + len}-byte vEVENT`);
          break;
        }
        putHeader(buf, done, 0, this.seqs[slot]!);
        copyBytes(this.data, slot * this.stride, buf, done + VEVENT_HEADER_SIZE, len);
        done += VEVENT_HEADER_SIZE + len;
        this.head = (slot + 1) & (this.capacity - 1);
        this.count--;
        this.stats.read++;
      } else if (this.lostQueued) {
        // Header only; it does not count against num_events.
        putHeader(buf, done, IOMMU_VEVENTQ_FLAG_LOST_EVENTS, this.lostSequence);
        done += VEVENT_HEADER_SIZE;
        this.lostQueued = false;
      } else {
        break;
      }
    }
    return done;
  }

  /** Teardown (iommufd_veventq_abort/destroy): queued events are freed, readers are woken and end. */
  destroy(): void {
    if (this.destroyed) return;
    this.stats.freed += this.count;
    this.count = 0;
    this.lostQueued = false;
    this.capacity = 0;
    this.seqs = new Uint32Array(0);
    this.lens = new Uint32Array(0);
    this.data = new Uint8Array(0);
    this.markDestroyed();
  }

  /** The lost header is (re)appended at the tail and takes the next sequence number. */
  private queueLost(): void {
    this.lostQueued = true;
    this.lostSequence = this.sequence;
    this.sequence = (this.sequence + 1) & VEVENT_SEQUENCE_MASK;
    this.stats.lost++;
    this.wake();
  }

  private grow(): void {
    const next = this.capacity === 0 ? Math.min(INITIAL_SLOTS, ceilPow2(this.depth)) : this.capacity * 2;
    this.relayout(next, this.stride);
  }

  private widen(len: number): void {
    this.relayout(this.capacity, Math.max(len, this.stride * 2));
  }

  /** Copies the queued events, oldest first, into fresh arrays of the given shape. */
  private relayout(capacity: number, stride: number): void {
    const seqs = new Uint32Array(capacity);
    const lens = new Uint32Array(capacity);
    const data = new Uint8Array(capacity * stride);
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) & (this.capacity - 1);
      seqs[i] = this.seqs[slot]!;
      lens[i] = this.lens[slot]!;
      data.set(this.data.subarray(slot * this.stride, slot * this.stride + this.lens[slot]!), i * stride);
    }
    this.seqs = seqs;
    this.lens = lens;
    this.data = data;
    this.capacity = capacity;
    this.stride = stride;
    this.head = 0;
  }
}

/** Small payloads (the selftest's 4 bytes, Tegra241's 16) copy faster by hand than through a subarray view. */
function copyBytes(from: Uint8Array, at: number, to: Uint8Array, dest: number, len: number): void {
  if (len > 16) {
    to.set(from.subarray(at, at + len), dest);
    return;
  }
  for (let i = 0; i < len; i++) to[dest + i] = from[at + i]!;
}

function ceilPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

// struct iommufd_vevent_header: flags @0, sequence @4, little-endian.
function putHeader(buf: Uint8Array, at: number, flags: number, sequence: number): void {
  buf[at] = flags & 0xff;
  buf[at + 1] = (flags >>> 8) & 0xff;
  buf[at + 2] = (flags >>> 16) & 0xff;
  buf[at + 3] = flags >>> 24;
  buf[at + 4] = sequence & 0xff;
  buf[at + 5] = (sequence >>> 8) & 0xff;
  buf[at + 6] = (sequence >>> 16) & 0xff;
  buf[at + 7] = sequence >>> 24;
}
