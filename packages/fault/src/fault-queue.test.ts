import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  POLLIN,
  POLLOUT,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
} from '@viommu/uapi';
import { ManualClock } from './clock.js';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE as LAST,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID as PASID_VALID,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID as NEEDS_PASID,
  IOMMU_PAGE_RESP_FAILURE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  POLLRDNORM,
} from './constants.js';
import { FaultQueue, type FaultQueueOptions } from './fault-queue.js';
import { type FaultGroup, IopfDevice, type IopfHandle, type PageRequest } from './iopf.js';

const REC = iommu_hwpt_pgfault.size;

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

interface Answer {
  grpid: number;
  pasid: number;
  code: number;
  group: FaultGroup | undefined;
}

function setup(options: FaultQueueOptions = {}) {
  const queue = new FaultQueue(options);
  const answers: Answer[] = [];
  const dev = new IopfDevice((r, code, group) => answers.push({ grpid: r.grpid, pasid: r.pasid, code, group }));
  const handle: IopfHandle = { devId: 3, queue };
  /** Raises a group of `n` requests (the last flagged LAST_PAGE) with group index `grpid`. */
  const raise = (grpid: number, n = 1, extra: Partial<PageRequest> = {}, h: IopfHandle = handle) => {
    for (let i = 0; i < n; i++) {
      const flags = (extra.flags ?? 0) | (i === n - 1 ? LAST : 0);
      dev.report({ flags, pasid: extra.pasid ?? 0, grpid, perm: extra.perm ?? IOMMU_PGFAULT_PERM_READ, addr: (extra.addr ?? 0x1000n) + BigInt(i * 0x1000) }, h);
    }
  };
  const respond = (...pairs: [cookie: number, code: number][]) => {
    const buf = new Uint8Array(pairs.length * 8);
    pairs.forEach(([cookie, code], i) => iommu_hwpt_page_response.encode({ cookie, code }, buf, i * 8));
    return queue.write(buf);
  };
  const cookiesIn = (buf: Uint8Array, n: number) =>
    Array.from({ length: n / REC }, (_, i) => iommu_hwpt_pgfault.get(buf, 'cookie', i * REC));
  return { queue, dev, answers, handle, raise, respond, cookiesIn };
}

describe('FaultQueue read', () => {
  it('writes one iommu_hwpt_pgfault per request, bytes as the uAPI codec defines them', () => {
    const { queue, dev, handle } = setup();
    dev.report({ flags: PASID_VALID | NEEDS_PASID, pasid: 0x800, grpid: 0x1ff, perm: IOMMU_PGFAULT_PERM_WRITE, addr: 0xffff_8000_dead_b000n }, handle);
    dev.report({ flags: PASID_VALID | NEEDS_PASID | LAST, pasid: 0x800, grpid: 0x1ff, perm: 0xf, addr: 0x2000n }, handle);
    const buf = new Uint8Array(3 * REC).fill(0xee); // stale bytes must not leak into reserved/length
    expect(queue.read(buf)).toBe(2 * REC);
    expect(iommu_hwpt_pgfault.decode(buf, 0)).toEqual({
      flags: PASID_VALID | NEEDS_PASID, // copied verbatim, internal bit 2 included
      dev_id: 3,
      pasid: 0x800,
      grpid: 0x1ff,
      perm: IOMMU_PGFAULT_PERM_WRITE,
      __reserved: 0,
      addr: 0xffff_8000_dead_b000n,
      length: 0,
      cookie: 1,
    });
    expect(iommu_hwpt_pgfault.decode(buf, REC)).toMatchObject({ flags: PASID_VALID | NEEDS_PASID | IOMMU_PGFAULT_FLAGS_LAST_PAGE, perm: 0xf, addr: 0x2000n, cookie: 1 });
    expect(buf[2 * REC]).toBe(0xee);
  });

  it('is ESPIPE unless the length is a multiple of 40, before anything else', () => {
    const { queue, raise } = setup();
    for (const n of [1, 39, 41, 79]) expect(errnoOf(() => queue.read(new Uint8Array(n)))).toBe('ESPIPE');
    raise(1);
    expect(errnoOf(() => queue.read(new Uint8Array(39)))).toBe('ESPIPE');
    expect(queue.queuedGroups).toBe(1);
  });

  it('returns 0 on an empty queue (never blocks), even for a zero-length read', () => {
    const { queue } = setup();
    expect(queue.read(new Uint8Array(0))).toBe(0);
    expect(queue.read(new Uint8Array(REC))).toBe(0);
  });

  it('is EINVAL when the oldest group does not fit, including a zero-length read', () => {
    const { queue, raise } = setup();
    raise(1, 3);
    expect(errnoOf(() => queue.read(new Uint8Array(0)))).toBe('EINVAL');
    expect(errnoOf(() => queue.read(new Uint8Array(2 * REC)))).toBe('EINVAL');
    expect(queue.queuedGroups).toBe(1);
    expect(queue.awaitingGroups).toBe(0);
    expect(queue.read(new Uint8Array(3 * REC))).toBe(3 * REC);
  });

  it('hands out whole groups only, oldest first, stopping at the first that does not fit', () => {
    const { queue, raise, cookiesIn } = setup();
    raise(1, 1);
    raise(2, 3);
    raise(3, 1);
    const buf = new Uint8Array(3 * REC);
    expect(queue.read(buf)).toBe(REC); // group 2 (3 records) would not fit after group 1
    expect(iommu_hwpt_pgfault.get(buf, 'grpid')).toBe(1);
    expect(queue.read(buf)).toBe(3 * REC);
    expect(cookiesIn(buf, 3 * REC)).toEqual([2, 2, 2]);
    expect(queue.read(buf)).toBe(REC);
    expect(cookiesIn(buf, REC)).toEqual([3]);
  });

  it('gives each group the lowest free cookie >= 1, reusing answered ones', () => {
    const { queue, raise, respond, cookiesIn } = setup();
    for (let g = 0; g < 4; g++) raise(g);
    const buf = new Uint8Array(8 * REC);
    expect(cookiesIn(buf, queue.read(buf))).toEqual([1, 2, 3, 4]);
    expect(respond([3, 0], [1, 0])).toBe(16);
    raise(10);
    raise(11);
    raise(12);
    expect(cookiesIn(buf, queue.read(buf))).toEqual([1, 3, 5]);
  });

  it('reports POLLOUT always and POLLIN | POLLRDNORM only while a group waits to be read', () => {
    const { queue, raise } = setup();
    expect(queue.poll()).toBe(POLLOUT);
    raise(1);
    expect(queue.poll()).toBe(POLLOUT | POLLIN | POLLRDNORM);
    queue.read(new Uint8Array(REC));
    expect(queue.poll()).toBe(POLLOUT); // awaiting a response is not readable
  });
});

describe('FaultQueue write', () => {
  it('answers the group under the cookie; the device gets the code with the last request\'s PASID and group index', () => {
    const { queue, raise, respond, answers } = setup();
    raise(0x2, 2, { flags: PASID_VALID, pasid: 7 });
    queue.read(new Uint8Array(2 * REC));
    expect(respond([1, IOMMUFD_PAGE_RESP_SUCCESS])).toBe(8);
    expect(answers.map(({ grpid, pasid, code }) => ({ grpid, pasid, code }))).toEqual([{ grpid: 2, pasid: 7, code: IOMMU_PAGE_RESP_SUCCESS }]);
    expect(queue.awaitingGroups).toBe(0);
    expect(errnoOf(() => respond([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe('EINVAL'); // never answered twice
    expect(answers).toHaveLength(1);
  });

  it('is ESPIPE unless the length is a multiple of 8; a zero-length write returns 0', () => {
    const { queue } = setup();
    for (const n of [1, 7, 9, 12]) expect(errnoOf(() => queue.write(new Uint8Array(n)))).toBe('ESPIPE');
    expect(queue.write(new Uint8Array(0))).toBe(0);
  });

  it('is EINVAL for a code other than SUCCESS or INVALID, and for a cookie nobody waits under', () => {
    const { queue, raise, respond, answers } = setup();
    raise(1);
    queue.read(new Uint8Array(REC));
    expect(errnoOf(() => respond([1, 2]))).toBe('EINVAL');
    expect(errnoOf(() => respond([1, 0xffff_ffff]))).toBe('EINVAL');
    expect(errnoOf(() => respond([0, 0]))).toBe('EINVAL');
    expect(errnoOf(() => respond([2, 0]))).toBe('EINVAL');
    expect(answers).toHaveLength(0);
    expect(respond([1, IOMMUFD_PAGE_RESP_INVALID])).toBe(8);
    expect(answers[0]!.code).toBe(IOMMU_PAGE_RESP_INVALID);
  });

  it('applies a batch in order up to the first bad response and returns the bytes consumed', () => {
    const { queue, raise, respond, answers } = setup();
    for (let g = 0; g < 4; g++) raise(g);
    queue.read(new Uint8Array(4 * REC));
    expect(respond([2, 0], [1, 1], [9, 0], [3, 0])).toBe(16);
    expect(answers.map((a) => [a.grpid, a.code])).toEqual([[1, 0], [0, 1]]);
    expect(respond([3, 0], [3, 0])).toBe(8); // the same cookie twice: the second finds nothing
    expect(respond([4, 0], [4, 5])).toBe(8);
    expect(answers.map((a) => a.grpid)).toEqual([1, 0, 2, 3]);
  });

  it('throws only when the first response of a batch fails', () => {
    const { queue, raise, respond } = setup();
    raise(1);
    queue.read(new Uint8Array(REC));
    expect(errnoOf(() => respond([1, 7], [1, 0]))).toBe('EINVAL');
    expect(queue.awaitingGroups).toBe(1);
  });

  // tools/testing/selftests/iommu/iommufd_utils.h, _test_cmd_trigger_iopf.
  it('round-trips the kernel selftest\'s trigger_iopf', () => {
    const { queue, dev, handle, answers } = setup();
    dev.report({ flags: LAST | PASID_VALID, pasid: 0x1, grpid: 0x2, perm: IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE, addr: 0xdeadbeafn }, handle);
    const fault = new Uint8Array(REC);
    expect(queue.read(fault)).toBe(REC);
    expect(iommu_hwpt_pgfault.decode(fault)).toEqual({
      flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE | IOMMU_PGFAULT_FLAGS_PASID_VALID,
      dev_id: 3,
      pasid: 1,
      grpid: 2,
      perm: IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
      __reserved: 0,
      addr: 0xdeadbeafn,
      length: 0,
      cookie: 1,
    });
    const response = iommu_hwpt_page_response.encode({ cookie: iommu_hwpt_pgfault.get(fault, 'cookie'), code: IOMMUFD_PAGE_RESP_SUCCESS });
    expect(queue.write(response)).toBe(8);
    expect(answers.map((a) => a.code)).toEqual([IOMMU_PAGE_RESP_SUCCESS]);
  });
});

describe('FaultQueue auto-responses', () => {
  it('answers INVALID every group of a detached attachment, queued first, then by cookie', () => {
    const { queue, raise, respond, answers, handle } = setup();
    const other: IopfHandle = { devId: 4, queue };
    raise(1);
    raise(2, 1, {}, other);
    raise(3);
    queue.read(new Uint8Array(3 * REC)); // cookies 1 (g1), 2 (g2, other), 3 (g3)
    raise(4);
    raise(5, 1, {}, other);
    respond([3, 0]); // g3 answered by userspace
    expect(queue.autoRespond(handle)).toBe(2);
    expect(answers.map((a) => [a.grpid, a.code])).toEqual([[3, 0], [4, IOMMU_PAGE_RESP_INVALID], [1, IOMMU_PAGE_RESP_INVALID]]);
    expect(errnoOf(() => respond([1, 0]))).toBe('EINVAL'); // the cookie is dead
    // the other attachment's groups are untouched
    expect(queue.awaitingGroups).toBe(1);
    expect(queue.queuedGroups).toBe(1);
    expect(respond([2, 0])).toBe(8);
    expect(queue.autoRespond(handle)).toBe(0);
    expect(queue.stats).toMatchObject({ queued: 5, read: 3, answered: 2, autoAnswered: 2 });
  });

  it('answers everything INVALID on destroy, and groups raised afterwards are aborted', async () => {
    const { queue, raise, answers, dev } = setup();
    raise(1);
    raise(2);
    queue.read(new Uint8Array(REC));
    const waiter = queue.waitReadable();
    queue.read(new Uint8Array(REC));
    queue.destroy();
    await waiter;
    expect(answers.map((a) => [a.grpid, a.code])).toEqual([[1, 1], [2, 1]]);
    expect(queue.destroyed).toBe(true);
    raise(3);
    expect(answers[2]).toMatchObject({ grpid: 3, code: IOMMU_PAGE_RESP_FAILURE });
    queue.destroy();
    expect(dev.responses).toEqual([0, 2, 1]);
  });

  it('lets a device model raise a new fault from inside its response callback', () => {
    const queue = new FaultQueue();
    const handle: IopfHandle = { devId: 1, queue };
    let retries = 0;
    const dev: IopfDevice = new IopfDevice((r, code) => {
      if (code === IOMMU_PAGE_RESP_SUCCESS && retries++ < 3) dev.report({ ...r, grpid: r.grpid + 1 }, handle);
    });
    dev.report({ flags: LAST, pasid: 0, grpid: 0, perm: 1, addr: 0n }, handle);
    const buf = new Uint8Array(REC);
    for (let i = 0; i < 4; i++) {
      expect(queue.read(buf)).toBe(REC);
      expect(iommu_hwpt_pgfault.get(buf, 'grpid')).toBe(i);
      queue.write(iommu_hwpt_page_response.encode({ cookie: iommu_hwpt_pgfault.get(buf, 'cookie'), code: 0 }));
    }
    expect(queue.read(buf)).toBe(0);
  });
});

describe('FaultQueue response timeout (simulator policy)', () => {
  it('is off by default', () => {
    const clock = new ManualClock();
    const { raise } = setup({ clock });
    raise(1);
    expect(clock.armed).toBe(0);
  });

  it('answers FAILURE for a group nobody read, and for a group read but not answered', () => {
    const clock = new ManualClock();
    const { queue, raise, respond, answers } = setup({ clock, responseTimeoutMs: 100 });
    raise(1);
    clock.advance(50);
    raise(2);
    queue.read(new Uint8Array(REC)); // group 1 gets cookie 1
    clock.advance(49);
    expect(answers).toHaveLength(0);
    clock.advance(1); // t=100: group 1 (awaiting) is due
    expect(answers.map((a) => [a.grpid, a.code])).toEqual([[1, IOMMU_PAGE_RESP_FAILURE]]);
    expect(errnoOf(() => respond([1, 0]))).toBe('EINVAL');
    clock.advance(50); // t=150: group 2, never read, is due
    expect(answers.map((a) => [a.grpid, a.code])).toEqual([[1, 2], [2, 2]]);
    expect(queue.poll()).toBe(POLLOUT);
    expect(queue.stats.timedOut).toBe(2);
    expect(clock.armed).toBe(0);
  });

  it('never times out a group that was answered in time, and re-arms for the next deadline', () => {
    const clock = new ManualClock();
    const { queue, raise, respond, answers } = setup({ clock, responseTimeoutMs: 10, timeoutCode: IOMMU_PAGE_RESP_INVALID });
    raise(1);
    clock.advance(5);
    raise(2);
    queue.read(new Uint8Array(2 * REC));
    respond([1, 0]);
    clock.advance(5); // group 1's deadline: already answered
    expect(answers).toHaveLength(1);
    clock.advance(5);
    expect(answers.map((a) => [a.grpid, a.code])).toEqual([[1, 0], [2, IOMMU_PAGE_RESP_INVALID]]);
  });

  it('stops its timer on destroy', () => {
    const clock = new ManualClock();
    const { queue, raise, answers } = setup({ clock, responseTimeoutMs: 10 });
    raise(1);
    queue.destroy();
    expect(clock.armed).toBe(0);
    clock.advance(100);
    expect(answers.map((a) => a.code)).toEqual([IOMMU_PAGE_RESP_INVALID]);
  });
});

describe('FaultQueue accounting', () => {
  // Random raises on two attachments, reads of random sizes, responses with good and bad cookies
  // and codes, detaches and clock ticks, then destroy: every group the devices raised got exactly
  // one response, with the code its owner gave it.
  it('loses nothing and answers nothing twice', () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant('raise' as const), h: fc.integer({ min: 0, max: 1 }), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ op: fc.constant('read' as const), records: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ op: fc.constant('respond' as const), cookies: fc.array(fc.integer({ min: 0, max: 8 }), { maxLength: 4 }), code: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ op: fc.constant('detach' as const), h: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.boolean(), fc.array(op, { maxLength: 80 }), (timeouts, ops) => {
        const clock = new ManualClock();
        const queue = new FaultQueue({ clock, ...(timeouts ? { responseTimeoutMs: 50 } : {}) });
        const answered = new Map<FaultGroup, number>();
        const dev = new IopfDevice((_r, code, group) => {
          expect(answered.has(group!)).toBe(false);
          answered.set(group!, code);
        });
        let handles: IopfHandle[] = [{ devId: 1, queue }, { devId: 2, queue }];
        let grpid = 0;
        const expectCodes = new Map<FaultGroup, number>();
        for (const s of ops) {
          if (s.op === 'raise') {
            grpid++;
            for (let i = 0; i < s.n; i++) {
              dev.report({ flags: i === s.n - 1 ? LAST : 0, pasid: 0, grpid, perm: 1, addr: BigInt(grpid) << 12n }, handles[s.h]);
            }
          } else if (s.op === 'read') {
            const buf = new Uint8Array(s.records * REC);
            let n = 0;
            try {
              n = queue.read(buf);
            } catch (e) {
              expect((e as { code: string }).code).toBe('EINVAL');
            }
            for (let at = 0; at < n; ) {
              // a group's records are contiguous and all carry its cookie
              const g = queue.awaitingGroup(iommu_hwpt_pgfault.get(buf, 'cookie', at))!;
              for (let i = 0; i < g.faults.length; i++, at += REC) {
                expect(at).toBeLessThan(n);
                expect(iommu_hwpt_pgfault.get(buf, 'cookie', at)).toBe(g.cookie);
                expect(iommu_hwpt_pgfault.get(buf, 'addr', at)).toBe(g.faults[i]!.addr);
              }
            }
          } else if (s.op === 'respond') {
            const buf = new Uint8Array(s.cookies.length * 8);
            s.cookies.forEach((cookie, i) => iommu_hwpt_page_response.encode({ cookie, code: s.code }, buf, i * 8));
            // what the kernel would accept: responses up to the first bad code or unknown cookie
            let ok = 0;
            const taken = new Set<number>();
            for (const c of s.cookies) {
              if (s.code > 1 || !queue.awaitingGroup(c) || taken.has(c)) break;
              taken.add(c);
              expectCodes.set(queue.awaitingGroup(c)!, s.code);
              ok++;
            }
            let n: number;
            try {
              n = queue.write(buf);
            } catch (e) {
              expect((e as { code: string }).code).toBe('EINVAL');
              n = 0;
            }
            expect(n).toBe(ok * 8);
          } else if (s.op === 'detach') {
            queue.autoRespond(handles[s.h]!);
            handles = handles.map((h, i) => (i === s.h ? { devId: h.devId, queue } : h));
          } else {
            clock.advance(s.ms);
          }
        }
        queue.destroy();
        const st = queue.stats;
        expect(answered.size).toBe(st.queued);
        expect(st.answered + st.autoAnswered + st.timedOut).toBe(st.queued);
        expect(dev.partialCount).toBe(0); // every raise ended with its last page
        expect(answered.size).toBe(grpid); // one response per raised group
        for (const [g, code] of expectCodes) expect(answered.get(g)).toBe(code);
        for (const [, code] of answered) expect([0, 1, 2]).toContain(code);
        if (!timeouts) expect(st.timedOut).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
