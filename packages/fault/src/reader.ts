// Readers: decoders for the bytes read(2) returns on a vEVENTQ or FAULT fd, and async iterators
// built on exactly those reads — over an in-process queue, or over an fd of any Process target —
// so an in-process consumer sees what a VMM reading the fd would see. Iterators end when the
// queue is destroyed or the fd closed.

import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  type Process,
  SystemError,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  isErrnoError,
  type StructValue,
} from '@viommu/uapi';
import { VEVENT_HEADER_SIZE, VEVENT_PAYLOAD_SIZE, VEVENT_SEQUENCE_MASK } from './constants.js';
import { FaultQueue } from './fault-queue.js';
import { VeventQueue } from './veventq.js';

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
  /** The vEVENTQ type, to find the payload size when reading from an fd. */
  type?: number;
}

/**
 * What the readers read from: an in-process queue, or an fd of any Process target (simulator,
 * native bridge, daemon client) through `fdSource`.
 */
export interface RecordSource {
  /** read(2); 0 when nothing is queued. */
  read(buf: Uint8Array): number;
  /** write(2) (page responses on a FAULT source). */
  write(buf: Uint8Array): number;
  /** Resolves true once something may be readable, false once nothing ever will be (destroyed, closed). */
  wait(signal?: AbortSignal): Promise<boolean>;
}

function queueSource(queue: VeventQueue | FaultQueue): RecordSource {
  return {
    read: (buf) => (queue.destroyed ? 0 : queue.read(buf)),
    write: (buf) => {
      if (!('write' in queue)) throw new SystemError('EINVAL', 'write', 'a vEVENTQ is not writable');
      return queue.write(buf);
    },
    wait: async (signal) => {
      await queue.waitReadable(signal);
      return !queue.destroyed;
    },
  };
}

/** How long one poll waits before checking again that the fd is still open. */
const FD_POLL_MS = 1000;

/**
 * A FAULT or vEVENTQ fd of a Process as a record source: waits with poll(POLLIN) and reads with
 * read(2). The source ends when the fd is closed (EBADF, POLLNVAL) or reports an error or hangup.
 */
export function fdSource(process: Process, fd: number): RecordSource {
  let ended = false;
  const endOnBadFd = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (e) {
      if (isErrnoError(e) && e.code === 'EBADF') {
        ended = true;
        return fallback;
      }
      throw e;
    }
  };
  return {
    read: (buf) => (ended ? 0 : endOnBadFd(() => process.read(fd, buf), 0)),
    write: (buf) => process.write(fd, buf),
    wait: async (signal) => {
      while (!ended) {
        signal?.throwIfAborted();
        const polled = process.poll(fd, POLLIN, FD_POLL_MS);
        const revents = await (signal ? raceAbort(polled, signal) : polled);
        if (revents & (POLLNVAL | POLLERR | POLLHUP)) ended = true;
        else if (revents & POLLIN) return true;
      }
      return false;
    },
  };
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Async iterator over a vEVENTQ: events in sequence order, with a `lost` item wherever events were
 * dropped (a LOST_EVENTS header, or a gap in sequence numbers). Ends when the queue is destroyed
 * (or the fd closed).
 */
export async function* readVevents(from: VeventQueue | RecordSource, options: VeventReaderOptions = {}): AsyncGenerator<VeventItem, void, undefined> {
  const type = options.type ?? (from instanceof VeventQueue ? from.type : undefined);
  const payloadSize = options.payloadSize ?? (type === undefined ? undefined : VEVENT_PAYLOAD_SIZE.get(type));
  if (payloadSize === undefined) throw new RangeError(`no known payload size for vEVENTQ type ${type}; pass payloadSize`);
  const source = from instanceof VeventQueue ? queueSource(from) : from;
  const decoder = new VeventDecoder(payloadSize);
  const buf = new Uint8Array((options.batch ?? 64) * (VEVENT_HEADER_SIZE + payloadSize));
  for (;;) {
    options.signal?.throwIfAborted();
    const n = source.read(buf);
    if (n > 0) {
      yield* decoder.decode(buf, n);
      continue;
    }
    if (!(await source.wait(options.signal))) return;
  }
}

/** A fault group handed to a consumer, with the way to answer it. */
export interface DeliveredFaultGroup extends FaultGroupRecords {
  /**
   * Writes the page response for this group (IOMMUFD_PAGE_RESP_SUCCESS or _INVALID). Throws the
   * kernel's EINVAL when the group is no longer waiting (already answered, detached, timed out).
   */
  respond(code: number): void;
}

/**
 * Async iterator over a FAULT queue (or fd): whole groups, oldest first, each already given its
 * cookie. Ends when the queue is destroyed, whose teardown answers anything unanswered INVALID
 * (or when the fd is closed).
 */
export async function* readFaultGroups(from: FaultQueue | RecordSource, options: ReaderOptions = {}): AsyncGenerator<DeliveredFaultGroup, void, undefined> {
  const source = from instanceof FaultQueue ? queueSource(from) : from;
  let buf = new Uint8Array((options.batch ?? 16) * iommu_hwpt_pgfault.size);
  const respond = (cookie: number, code: number) => {
    source.write(iommu_hwpt_page_response.encode({ cookie, code }));
  };
  for (;;) {
    options.signal?.throwIfAborted();
    let n: number;
    try {
      n = source.read(buf);
    } catch (e) {
      // The oldest group is larger than the buffer: grow and read again.
      if (isErrnoError(e) && e.code === 'EINVAL') {
        buf = new Uint8Array(buf.length * 2);
        continue;
      }
      throw e;
    }
    if (n > 0) {
      for (const g of decodeFaultGroups(buf, n)) yield { ...g, respond: (code: number) => respond(g.cookie, code) };
      continue;
    }
    if (!(await source.wait(options.signal))) return;
  }
}
