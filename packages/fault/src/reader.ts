// Readers for in-process consumers: decoders for the bytes read(2) returns on a vEVENTQ or FAULT
// fd, and async iterators over the queues built on exactly those reads, so a consumer sees what a
// VMM reading the fd would see. Iterators end when the queue is destroyed.

import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  SystemError,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  isErrnoError,
  type StructValue,
} from '@viommu/uapi';
import { VEVENT_HEADER_SIZE, VEVENT_PAYLOAD_SIZE, VEVENT_SEQUENCE_MASK } from './constants.js';
import type { FaultQueue } from './fault-queue.js';
import type { VeventQueue } from './veventq.js';

/** One record of a vEVENTQ read, or the news that events were lost before the next one. */
export type VeventItem =
  | { readonly kind: 'event'; readonly sequence: number; readonly data: Uint8Array }
  | {
      readonly kind: 'lost';
      /** How many events were dropped (sequence numbers never delivered). */
      readonly count: number;
      /** The sequence number of the last dropped event. */
      readonly sequence: number;
      /** True when the kernel said so with a LOST_EVENTS header; false when only a sequence gap shows it. */
      readonly flagged: boolean;
    };

/**
 * Splits vEVENTQ read bytes into records. A normal event's payload length is not in its header:
 * it is fixed by the queue type, hence `payloadSize`. Tracks the last sequence seen so that gaps
 * (drops whose LOST_EVENTS header was superseded by a later event) are reported as lost too.
 */
export class VeventDecoder {
  /** Last sequence number seen; starts one before the first expected, modulo 2^31. */
  private prev: number;

  /** `firstSequence` is where the queue starts numbering: 0 for every Linux vEVENTQ. */
  constructor(
    readonly payloadSize: number,
    firstSequence = 0,
  ) {
    this.prev = (firstSequence - 1) & VEVENT_SEQUENCE_MASK;
  }

  decode(buf: Uint8Array, length: number): VeventItem[] {
    const out: VeventItem[] = [];
    const dv = new DataView(buf.buffer, buf.byteOffset, length);
    let at = 0;
    while (at + VEVENT_HEADER_SIZE <= length) {
      const flags = dv.getUint32(at, true);
      const sequence = dv.getUint32(at + 4, true);
      at += VEVENT_HEADER_SIZE;
      if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
        // Everything after the last record up to and including `sequence` was dropped.
        out.push({ kind: 'lost', count: (sequence - this.prev) & VEVENT_SEQUENCE_MASK, sequence, flagged: true });
      } else {
        const gap = (sequence - this.prev - 1) & VEVENT_SEQUENCE_MASK;
        if (gap > 0) out.push({ kind: 'lost', count: gap, sequence: (sequence - 1) & VEVENT_SEQUENCE_MASK, flagged: false });
        if (at + this.payloadSize > length) throw new RangeError(`vEVENT ${sequence} is cut short: payloadSize ${this.payloadSize} is wrong for this queue`);
        out.push({ kind: 'event', sequence, data: buf.slice(at, at + this.payloadSize) });
        at += this.payloadSize;
      }
      this.prev = sequence;
    }
    if (at !== length) throw new RangeError(`${length - at} stray bytes after the last vEVENT record`);
    return out;
  }
}

export type PageFaultRecord = StructValue<typeof iommu_hwpt_pgfault.fields>;

/** The records of one group as read from a FAULT fd. */
export interface FaultGroupRecords {
  readonly cookie: number;
  readonly devId: number;
  readonly faults: readonly PageFaultRecord[];
}

/** Splits FAULT read bytes into groups: consecutive records sharing a cookie. */
export function decodeFaultGroups(buf: Uint8Array, length: number): FaultGroupRecords[] {
  const groups: { cookie: number; devId: number; faults: PageFaultRecord[] }[] = [];
  for (let at = 0; at + iommu_hwpt_pgfault.size <= length; at += iommu_hwpt_pgfault.size) {
    const rec = iommu_hwpt_pgfault.decode(buf, at);
    const last = groups[groups.length - 1];
    if (last && last.cookie === rec.cookie) last.faults.push(rec);
    else groups.push({ cookie: rec.cookie, devId: rec.dev_id, faults: [rec] });
  }
  return groups;
}

export interface ReaderOptions {
  /** Stops the iterator: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Records per read (a hint; the fault reader grows its buffer for larger groups). */
  batch?: number;
}

export interface VeventReaderOptions extends ReaderOptions {
  /** Payload bytes per event; defaults to the size of the queue type's event struct. */
  payloadSize?: number;
}

/**
 * Async iterator over a vEVENTQ: events in sequence order, with a `lost` item wherever events were
 * dropped (a LOST_EVENTS header, or a gap in sequence numbers). Ends when the queue is destroyed.
 */
export async function* readVevents(queue: VeventQueue, options: VeventReaderOptions = {}): AsyncGenerator<VeventItem, void, undefined> {
  const payloadSize = options.payloadSize ?? VEVENT_PAYLOAD_SIZE.get(queue.type);
  if (payloadSize === undefined) throw new RangeError(`no known payload size for vEVENTQ type ${queue.type}; pass payloadSize`);
  const decoder = new VeventDecoder(payloadSize);
  const buf = new Uint8Array((options.batch ?? 64) * (VEVENT_HEADER_SIZE + payloadSize));
  for (;;) {
    options.signal?.throwIfAborted();
    if (queue.destroyed) return;
    const n = queue.read(buf);
    if (n > 0) {
      yield* decoder.decode(buf, n);
      continue;
    }
    await queue.waitReadable(options.signal);
  }
}

/** A fault group handed to an in-process consumer, with the way to answer it. */
export interface DeliveredFaultGroup extends FaultGroupRecords {
  /**
   * Writes the page response for this group (IOMMUFD_PAGE_RESP_SUCCESS or _INVALID). Throws the
   * kernel's EINVAL when the group is no longer waiting (already answered, detached, timed out).
   */
  respond(code: number): void;
}

/**
 * Async iterator over a FAULT queue: whole groups, oldest first, each already given its cookie.
 * Ends when the queue is destroyed (whose teardown answers anything unanswered with INVALID).
 */
export async function* readFaultGroups(queue: FaultQueue, options: ReaderOptions = {}): AsyncGenerator<DeliveredFaultGroup, void, undefined> {
  let buf = new Uint8Array((options.batch ?? 16) * iommu_hwpt_pgfault.size);
  const respond = (cookie: number, code: number) => {
    queue.write(iommu_hwpt_page_response.encode({ cookie, code }));
  };
  for (;;) {
    options.signal?.throwIfAborted();
    if (queue.destroyed) return;
    let n: number;
    try {
      n = queue.read(buf);
    } catch (e) {
      // The oldest group is larger than the buffer: grow and read again.
      if (isErrnoError(e) && e.code === 'EINVAL' && e instanceof SystemError) {
        buf = new Uint8Array(buf.length * 2);
        continue;
      }
      throw e;
    }
    if (n > 0) {
      for (const g of decodeFaultGroups(buf, n)) yield { ...g, respond: (code: number) => respond(g.cookie, code) };
      continue;
    }
    await queue.waitReadable(options.signal);
  }
}
