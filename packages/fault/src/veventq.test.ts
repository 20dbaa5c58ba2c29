import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  POLLIN,
  iommu_vevent_arm_smmuv3,
  iommu_viommu_event_selftest,
  iommufd_vevent_header,
} from '@viommu/uapi';
import { POLLRDNORM, VEVENTQ_MAX_DEPTH } from './constants.js';
import { VeventDecoder } from './reader.js';
import { VeventQueue } from './veventq.js';

const HDR = iommufd_vevent_header.size;
const SELFTEST = iommu_viommu_event_selftest.size; // 4

function selftestEvent(virtId: number): Uint8Array {
  return iommu_viommu_event_selftest.encode({ virt_id: virtId });
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

function selftestQueue(depth: number): VeventQueue {
  return new VeventQueue({ depth, type: IOMMU_VEVENTQ_TYPE_SELFTEST });
}

describe('VeventQueue records', () => {
  it('writes header then payload, bytes as the uAPI codecs define them', () => {
    const q = new VeventQueue({ depth: 4, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 });
    const evt = [0x0000_0099_0000_0010n, 0x1234n, 0xdead_beef_0000_1000n, 0xffff_ffff_ffff_ffffn];
    expect(q.report(iommu_vevent_arm_smmuv3.encode({ evt }))).toBe(true);
    const buf = new Uint8Array(64).fill(0xaa);
    expect(q.read(buf)).toBe(HDR + 32);
    expect(iommufd_vevent_header.decode(buf)).toEqual({ flags: 0, sequence: 0 });
    expect(iommu_vevent_arm_smmuv3.decode(buf, HDR)).toEqual({ evt });
    expect(buf[HDR + 32]).toBe(0xaa); // nothing written past the record
  });

  it('numbers events from 0 and returns several whole records in one read', () => {
    const q = selftestQueue(8);
    for (const id of [0x11, 0x22, 0x33]) q.report(selftestEvent(id));
    const buf = new Uint8Array(3 * (HDR + SELFTEST));
    expect(q.read(buf)).toBe(buf.length);
    for (let i = 0; i < 3; i++) {
      const at = i * (HDR + SELFTEST);
      expect(iommufd_vevent_header.decode(buf, at)).toEqual({ flags: 0, sequence: i });
      expect(iommu_viommu_event_selftest.get(buf, 'virt_id', at + HDR)).toBe(0x11 * (i + 1));
    }
    expect(q.numEvents).toBe(0);
  });

  it('copies the payload at report time', () => {
    const q = selftestQueue(2);
    const payload = selftestEvent(7);
    q.report(payload);
    payload.fill(0xff);
    const buf = new Uint8Array(HDR + SELFTEST);
    q.read(buf);
    expect(iommu_viommu_event_selftest.get(buf, 'virt_id', HDR)).toBe(7);
  });

  it('reports only [start, end) of a larger buffer', () => {
    const q = selftestQueue(2);
    const big = new Uint8Array([9, 9, 1, 2, 3, 4, 9]);
    q.report(big, 2, 6);
    const buf = new Uint8Array(HDR + 4);
    expect(q.read(buf)).toBe(12);
    expect([...buf.subarray(HDR)]).toEqual([1, 2, 3, 4]);
  });

  it('refuses an empty payload and a depth outside 1..2^19', () => {
    expect(() => selftestQueue(2).report(new Uint8Array(0))).toThrow(RangeError);
    expect(() => selftestQueue(0)).toThrow(RangeError);
    expect(() => selftestQueue(VEVENTQ_MAX_DEPTH + 1)).toThrow(RangeError);
    expect(selftestQueue(VEVENTQ_MAX_DEPTH).depth).toBe(1 << 19);
  });

  it('keeps payloads of different sizes intact across ring growth and wrap-around', () => {
    const q = new VeventQueue({ depth: 100 });
    const made: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    const readBack: number[][] = [];
    const decode = (n: number) => {
      // headers say nothing about length, so walk with the known sizes
      let at = 0;
      while (at < n) {
        const seq = iommufd_vevent_header.get(buf, 'sequence', at);
        const len = made[seq]!.length;
        readBack.push([...buf.subarray(at + HDR, at + HDR + len)]);
        at += HDR + len;
      }
    };
    for (let i = 0; i < 60; i++) {
      const p = new Uint8Array(1 + (i % 7) * 5).map((_, j) => (i * 31 + j) & 0xff);
      made.push(p);
      q.report(p);
      if (i % 9 === 8) decode(q.read(buf.subarray(0, 40)));
    }
    decode(q.read(buf));
    expect(readBack).toEqual(made.map((p) => [...p]));
  });
});

describe('VeventQueue read buffer rules', () => {
  it('is EINVAL below a header size, even when empty; 0 when empty otherwise', () => {
    const q = selftestQueue(2);
    expect(errnoOf(() => q.read(new Uint8Array(0)))).toBe('EINVAL');
    expect(errnoOf(() => q.read(new Uint8Array(HDR - 1)))).toBe('EINVAL');
    expect(q.read(new Uint8Array(HDR))).toBe(0);
  });

  it('is EINVAL when the first event does not fit, and leaves it queued', () => {
    const q = selftestQueue(2);
    q.report(selftestEvent(0x99));
    expect(errnoOf(() => q.read(new Uint8Array(0)))).toBe('EINVAL');
    expect(errnoOf(() => q.read(new Uint8Array(HDR)))).toBe('EINVAL'); // header fits, payload does not
    expect(errnoOf(() => q.read(new Uint8Array(HDR + SELFTEST - 1)))).toBe('EINVAL');
    expect(q.numEvents).toBe(1);
    expect(q.read(new Uint8Array(HDR + SELFTEST))).toBe(12);
  });

  it('never splits a record: a partial read stops before the event that does not fit', () => {
    const q = selftestQueue(4);
    for (let i = 0; i < 3; i++) q.report(selftestEvent(i));
    const buf = new Uint8Array(2 * 12 + 11);
    expect(q.read(buf)).toBe(24);
    expect(q.numEvents).toBe(1);
    const rest = new Uint8Array(12);
    expect(q.read(rest)).toBe(12);
    expect(iommufd_vevent_header.get(rest, 'sequence')).toBe(2);
  });

  it('returns a lost-events header into a buffer too small for any event', () => {
    const q = selftestQueue(1);
    q.report(selftestEvent(1));
    q.report(selftestEvent(2)); // dropped
    const buf = new Uint8Array(12 + 8);
    expect(q.read(buf)).toBe(20);
    expect(iommufd_vevent_header.decode(buf, 12)).toEqual({ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 1 });
    q.report(selftestEvent(3));
    q.report(selftestEvent(4)); // dropped again
    const small = new Uint8Array(HDR);
    expect(errnoOf(() => q.read(small))).toBe('EINVAL'); // the normal event comes first and does not fit
    expect(q.read(new Uint8Array(12))).toBe(12);
    expect(q.read(small)).toBe(8); // now only the lost header is left, and a header fits
    expect(iommufd_vevent_header.decode(small)).toEqual({ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 3 });
    expect(q.read(small)).toBe(0);
  });

  it('stops when fewer than 8 bytes remain, with the lost header still queued', () => {
    const q = selftestQueue(1);
    q.report(selftestEvent(1));
    q.report(selftestEvent(2));
    expect(q.read(new Uint8Array(12 + 7))).toBe(12);
    expect(q.lostEventsQueued).toBe(true);
    expect(q.poll()).toBe(POLLIN | POLLRDNORM);
  });
});

describe('VeventQueue overflow and lost events', () => {
  it('drops at depth: the lost header takes the sequence of the drop and sits at the tail', () => {
    const q = selftestQueue(2);
    expect(q.report(selftestEvent(1))).toBe(true);
    expect(q.report(selftestEvent(2))).toBe(true);
    expect(q.report(selftestEvent(3))).toBe(false);
    expect(q.report(selftestEvent(4))).toBe(false);
    expect(q.numEvents).toBe(2);
    expect(q.nextSequence).toBe(4); // every drop consumed a sequence number
    const buf = new Uint8Array(64);
    expect(q.read(buf)).toBe(12 + 12 + 8);
    expect(iommufd_vevent_header.decode(buf, 0)).toEqual({ flags: 0, sequence: 0 });
    expect(iommufd_vevent_header.decode(buf, 12)).toEqual({ flags: 0, sequence: 1 });
    // one header for the whole run of drops, carrying the most recent one
    expect(iommufd_vevent_header.decode(buf, 24)).toEqual({ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 3 });
    expect(q.read(buf)).toBe(0);
    expect(q.stats).toEqual({ produced: 4, read: 2, lost: 2, freed: 0 });
  });

  it('forgets the lost header when a normal event is queued after it: only the gap remains', () => {
    const q = selftestQueue(2);
    for (let i = 0; i < 3; i++) q.report(selftestEvent(i)); // seq 0, 1 queued, 2 dropped
    const one = new Uint8Array(12);
    expect(q.read(one)).toBe(12); // seq 0; room for one more
    expect(q.report(selftestEvent(9))).toBe(true); // seq 3 unlinks the trailing lost header
    expect(q.lostEventsQueued).toBe(false);
    const buf = new Uint8Array(64);
    expect(q.read(buf)).toBe(24);
    expect(iommufd_vevent_header.decode(buf, 0)).toEqual({ flags: 0, sequence: 1 });
    expect(iommufd_vevent_header.decode(buf, 12)).toEqual({ flags: 0, sequence: 3 });
  });

  it('reading the lost header consumes it; the next drop queues it again with a new sequence', () => {
    const q = selftestQueue(1);
    q.report(selftestEvent(1));
    q.report(selftestEvent(2));
    const buf = new Uint8Array(64);
    expect(q.read(buf)).toBe(20);
    expect(q.poll()).toBe(0);
    q.report(selftestEvent(3)); // seq 2, fits again
    q.report(selftestEvent(4)); // seq 3, dropped
    expect(q.read(buf)).toBe(20);
    expect(iommufd_vevent_header.decode(buf, 12)).toEqual({ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 3 });
  });

  it('an allocation failure queues the lost header even when the queue has room', () => {
    const q = selftestQueue(4);
    q.report(selftestEvent(1));
    q.reportAllocFailure();
    expect(q.numEvents).toBe(1);
    const buf = new Uint8Array(64);
    expect(q.read(buf)).toBe(20);
    expect(iommufd_vevent_header.decode(buf, 12)).toEqual({ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 1 });
    expect(q.stats.lost).toBe(1);
  });

  it('wraps sequence numbers from 0x7fffffff to 0, for events and lost headers alike', () => {
    const q = new VeventQueue({ depth: 1, type: IOMMU_VEVENTQ_TYPE_SELFTEST, initialSequence: 0x7fff_fffe });
    q.report(selftestEvent(1)); // 0x7ffffffe
    q.report(selftestEvent(2)); // dropped: 0x7fffffff
    q.report(selftestEvent(3)); // dropped: 0
    const buf = new Uint8Array(64);
    expect(q.read(buf)).toBe(20);
    expect(iommufd_vevent_header.get(buf, 'sequence', 0)).toBe(0x7fff_fffe);
    expect(iommufd_vevent_header.decode(buf, 12)).toEqual({ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 0 });
    q.report(selftestEvent(4));
    expect(q.read(buf)).toBe(12);
    expect(iommufd_vevent_header.get(buf, 'sequence')).toBe(1);
  });

  // tools/testing/selftests/iommu/iommufd.c, TEST_F(iommufd_viommu, vdevice_alloc): the vEVENTQ part.
  it('follows the kernel selftest: depth 2, one event, then an overflow of three', () => {
    const q = selftestQueue(2);
    const vbuf = new Uint8Array(64);
    expect(errnoOf(() => q.read(vbuf.subarray(0, 0)))).toBe('EINVAL');
    expect(errnoOf(() => q.read(vbuf.subarray(0, HDR - 1)))).toBe('EINVAL');
    q.report(selftestEvent(0x99));
    expect(errnoOf(() => q.read(vbuf.subarray(0, 0)))).toBe('EINVAL');
    expect(errnoOf(() => q.read(vbuf.subarray(0, HDR)))).toBe('EINVAL');

    // test_cmd_read_vevents: read n records' worth, fail with EOVERFLOW on a lost flag or a gap
    let prevSeq = -1;
    const readVevents = (n: number, virtId: number): string => {
      const data = new Uint8Array(n * (HDR + SELFTEST));
      expect(q.read(data)).toBeGreaterThan(0);
      for (let i = 0; i < n; i++) {
        const at = i * (HDR + SELFTEST);
        const hdr = iommufd_vevent_header.decode(data, at);
        if (hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS || hdr.sequence - prevSeq > 1) {
          prevSeq = hdr.sequence;
          return 'EOVERFLOW';
        }
        prevSeq = hdr.sequence;
        if (iommu_viommu_event_selftest.get(data, 'virt_id', HDR) !== virtId) return 'EINVAL';
      }
      return 'ok';
    };
    expect(readVevents(1, 0x99)).toBe('ok');
    for (let i = 0; i < 3; i++) q.report(selftestEvent(0x88));
    expect(readVevents(3, 0x88)).toBe('EOVERFLOW');
    expect(prevSeq).toBe(3); // the lost header carried the third event's sequence
    q.report(selftestEvent(0x88));
    expect(readVevents(1, 0x88)).toBe('ok'); // overflow is gone after the previous reads
    expect(prevSeq).toBe(4);
  });
});

describe('VeventQueue readiness and teardown', () => {
  it('is readable exactly while something is queued', () => {
    const q = selftestQueue(1);
    expect(q.poll()).toBe(0);
    q.report(selftestEvent(1));
    expect(q.poll()).toBe(POLLIN | POLLRDNORM);
    q.read(new Uint8Array(12));
    expect(q.poll()).toBe(0);
    q.report(selftestEvent(2));
    q.report(selftestEvent(3));
    q.read(new Uint8Array(12));
    expect(q.poll()).toBe(POLLIN | POLLRDNORM); // the lost header alone makes it readable
  });

  it('wakes subscribers on every arrival, including drops', () => {
    const q = selftestQueue(1);
    let wakes = 0;
    const off = q.subscribe(() => wakes++);
    q.report(selftestEvent(1));
    q.report(selftestEvent(2));
    q.reportAllocFailure();
    expect(wakes).toBe(3);
    off();
    q.report(selftestEvent(3));
    expect(wakes).toBe(3);
  });

  it('frees queued events on destroy and wakes waiters', async () => {
    const q = selftestQueue(4);
    q.report(selftestEvent(1));
    q.report(selftestEvent(2));
    const empty = selftestQueue(1);
    const waiting = empty.waitReadable();
    empty.destroy();
    await waiting;
    q.destroy();
    expect(q.stats).toEqual({ produced: 2, read: 0, lost: 0, freed: 2 });
    expect(q.poll()).toBe(0);
    expect(q.read(new Uint8Array(64))).toBe(0);
    expect(() => q.report(selftestEvent(3))).toThrow();
  });
});

describe('VeventQueue accounting', () => {
  // Each produced event consumes one sequence number and ends up read, or reported lost (a
  // LOST_EVENTS header or a sequence gap), or freed at teardown: nothing vanishes, nothing is counted twice.
  it('produced = read + reported lost, under random loads', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('produce' as const), n: fc.integer({ min: 1, max: 12 }), nomem: fc.boolean() }),
      fc.record({ op: fc.constant('read' as const), bytes: fc.integer({ min: 8, max: 120 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 0x7fff_ffff }), fc.array(step, { maxLength: 60 }), fc.boolean(), (depth, start, steps, destroy) => {
        const q = new VeventQueue({ depth, type: IOMMU_VEVENTQ_TYPE_SELFTEST, initialSequence: start });
        // starting anywhere makes the property cover the 2^31 wrap too
        const decoder = new VeventDecoder(SELFTEST, start);
        let produced = 0;
        let read = 0;
        let lost = 0;
        let lastId = -1;
        const drain = (bytes: number) => {
          const buf = new Uint8Array(bytes);
          let n: number;
          try {
            n = q.read(buf);
          } catch (e) {
            expect((e as { code: string }).code).toBe('EINVAL');
            expect(bytes).toBeLessThan(HDR + SELFTEST);
            return 0;
          }
          for (const item of decoder.decode(buf, n)) {
            if (item.kind === 'lost') lost += item.count;
            else {
              read++;
              const id = iommu_viommu_event_selftest.get(item.data, 'virt_id');
              expect(id).toBeGreaterThan(lastId); // FIFO
              lastId = id;
            }
          }
          return n;
        };
        for (const s of steps) {
          if (s.op === 'produce') {
            for (let i = 0; i < s.n; i++) {
              produced++;
              if (s.nomem && i === 0) q.reportAllocFailure();
              else q.report(selftestEvent(produced));
            }
          } else drain(s.bytes);
          expect(q.numEvents).toBeLessThanOrEqual(depth);
        }
        if (destroy) {
          // teardown frees what is queued: the queue's own books still balance
          q.destroy();
          const st = q.stats;
          expect(st.produced).toBe(produced);
          expect(st.read + st.lost + st.freed).toBe(produced);
          expect(st.read).toBe(read);
          return;
        }
        while (drain(4096) > 0);
        expect(read + lost).toBe(produced);
        expect(q.stats.produced).toBe(produced);
        expect(q.stats.read).toBe(read);
        expect(q.stats.lost).toBe(lost);
      }),
      { numRuns: 300 },
    );
  });
});
