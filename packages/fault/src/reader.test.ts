import { describe, expect, it } from '@jest/globals';
import {
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  POLLNVAL,
  type Process,
  SystemError,
  iommu_viommu_event_selftest,
} from '@viommu/uapi';
import { IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE as LAST, IOMMU_PAGE_RESP_INVALID, IOMMU_PAGE_RESP_SUCCESS } from './constants.js';
import { FaultQueue } from './fault-queue.js';
import { IopfDevice, type IopfHandle } from './iopf.js';
import { type DeliveredFaultGroup, type VeventItem, VeventDecoder, fdSource, readFaultGroups, readVevents } from './reader.js';
import { VeventQueue } from './veventq.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const ev = (id: number) => iommu_viommu_event_selftest.encode({ virt_id: id });
const idOf = (item: VeventItem) => (item.kind === 'event' ? iommu_viommu_event_selftest.get(item.data, 'virt_id') : -1);

describe('VeventDecoder', () => {
  it('reports a LOST_EVENTS header as the count of sequences it covers, and gaps as unflagged losses', () => {
    const d = new VeventDecoder(4);
    const buf = new Uint8Array(64);
    const dv = new DataView(buf.buffer);
    const put = (at: number, flags: number, seq: number) => {
      dv.setUint32(at, flags, true);
      dv.setUint32(at + 4, seq, true);
    };
    put(0, 0, 0);
    put(12, 0, 1);
    put(24, 1, 4); // 2, 3, 4 dropped
    put(32, 0, 7); // 5, 6 dropped, only a gap shows it
    const items = d.decode(buf, 44);
    expect(items.map((i) => (i.kind === 'lost' ? ['lost', i.count, i.sequence, i.flagged] : ['event', i.sequence]))).toEqual([
      ['event', 0],
      ['event', 1],
      ['lost', 3, 4, true],
      ['lost', 2, 6, false],
      ['event', 7],
    ]);
  });

  it('counts across the 2^31 wrap', () => {
    const d = new VeventDecoder(4, 0x7fff_fffe);
    const buf = new Uint8Array(24);
    const dv = new DataView(buf.buffer);
    dv.setUint32(4, 0x7fff_fffe, true);
    dv.setUint32(16, 1, true); // 0x7fffffff and 0 lost
    const items = d.decode(buf, 24);
    expect(items).toHaveLength(3);
    expect(items[1]).toEqual({ kind: 'lost', count: 2, sequence: 0, flagged: false });
  });
});

describe('readVevents', () => {
  it('yields queued events, waits for more, surfaces losses, and ends when the queue is destroyed', async () => {
    const q = new VeventQueue({ depth: 2, type: IOMMU_VEVENTQ_TYPE_SELFTEST });
    q.report(ev(1));
    const seen: VeventItem[] = [];
    const done = (async () => {
      for await (const item of readVevents(q, { batch: 1 })) seen.push(item);
    })();
    await tick();
    expect(seen.map(idOf)).toEqual([1]);
    for (let i = 2; i <= 5; i++) q.report(ev(i)); // 2, 3 fit; 4, 5 are dropped
    await tick();
    expect(seen.slice(1).map((i) => (i.kind === 'lost' ? `lost ${i.count}` : idOf(i)))).toEqual([2, 3, 'lost 2']);
    q.report(ev(6));
    await tick();
    expect(idOf(seen[seen.length - 1]!)).toBe(6);
    q.destroy();
    await done;
  });

  it('rejects with the abort reason', async () => {
    const q = new VeventQueue({ depth: 2, type: IOMMU_VEVENTQ_TYPE_SELFTEST });
    const ac = new AbortController();
    const it = readVevents(q, { signal: ac.signal });
    const next = it.next();
    await tick();
    ac.abort(new Error('stop'));
    await expect(next).rejects.toThrow('stop');
  });

  it('needs a payload size for a type it does not know', async () => {
    const q = new VeventQueue({ depth: 2, type: 0x1234 });
    await expect(readVevents(q).next()).rejects.toThrow(RangeError);
    q.report(new Uint8Array([1, 2, 3]));
    const first = await readVevents(q, { payloadSize: 3 }).next();
    expect(first.value).toEqual({ kind: 'event', sequence: 0, data: new Uint8Array([1, 2, 3]) });
  });
});

describe('readFaultGroups', () => {
  function setup() {
    const queue = new FaultQueue();
    const codes: [number, number][] = [];
    const dev = new IopfDevice((r, code) => codes.push([r.grpid, code]));
    const handle: IopfHandle = { devId: 9, queue };
    const raise = (grpid: number, n: number) => {
      for (let i = 0; i < n; i++) dev.report({ flags: i === n - 1 ? LAST : 0, pasid: 0, grpid, perm: 1, addr: BigInt(i) << 12n }, handle);
    };
    return { queue, codes, raise, handle };
  }

  it('yields whole groups with their cookie and answers them through respond()', async () => {
    const { queue, codes, raise } = setup();
    raise(1, 2);
    raise(2, 1);
    const groups: DeliveredFaultGroup[] = [];
    const done = (async () => {
      for await (const g of readFaultGroups(queue)) {
        groups.push(g);
        g.respond(IOMMUFD_PAGE_RESP_SUCCESS);
      }
    })();
    await tick();
    expect(groups.map((g) => [g.cookie, g.devId, g.faults.length])).toEqual([[1, 9, 2], [2, 9, 1]]);
    expect(groups[0]!.faults.map((f) => f.addr)).toEqual([0n, 0x1000n]);
    expect(codes).toEqual([[1, IOMMU_PAGE_RESP_SUCCESS], [2, IOMMU_PAGE_RESP_SUCCESS]]);
    raise(3, 1);
    await tick();
    expect(groups[2]!.cookie).toBe(1); // cookie 1 was free again
    queue.destroy();
    await done;
  });

  it('grows its buffer for a group larger than the batch', async () => {
    const { queue, raise } = setup();
    raise(1, 5);
    const first = await readFaultGroups(queue, { batch: 1 }).next();
    expect((first.value as DeliveredFaultGroup).faults).toHaveLength(5);
  });

  it('surfaces EINVAL from respond() when the group was auto-answered meanwhile, and ends on destroy', async () => {
    const { queue, codes, raise, handle } = setup();
    raise(1, 1);
    const it = readFaultGroups(queue);
    const g = (await it.next()).value as DeliveredFaultGroup;
    queue.autoRespond(handle);
    expect(() => g.respond(IOMMUFD_PAGE_RESP_SUCCESS)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(codes).toEqual([[1, IOMMU_PAGE_RESP_INVALID]]);
    const next = it.next();
    queue.destroy();
    expect(await next).toEqual({ done: true, value: undefined });
  });
});

/** Just enough of a Process for fd-based reading: fds over in-process queues, like core's files. */
class FdProcess {
  private fds = new Map<number, VeventQueue | FaultQueue>();
  private next = 3;
  open(q: VeventQueue | FaultQueue): number {
    this.fds.set(this.next, q);
    return this.next++;
  }
  close(fd: number): void {
    this.fds.delete(fd);
  }
  private get(fd: number, syscall: string) {
    const q = this.fds.get(fd);
    if (!q) throw new SystemError('EBADF', syscall);
    return q;
  }
  read(fd: number, buf: Uint8Array): number {
    return this.get(fd, 'read').read(buf);
  }
  write(fd: number, buf: Uint8Array): number {
    const q = this.get(fd, 'write');
    if (!(q instanceof FaultQueue)) throw new SystemError('EINVAL', 'write');
    return q.write(buf);
  }
  poll(fd: number, events: number, timeoutMs: number): Promise<number> {
    const q = this.fds.get(fd);
    if (!q) return Promise.resolve(POLLNVAL);
    const ready = q.poll() & events;
    if (ready || timeoutMs === 0) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve(0);
      }, timeoutMs);
      const off = q.subscribe(() => {
        if (!(q.poll() & events)) return;
        clearTimeout(timer);
        off();
        resolve(q.poll() & events);
      });
    });
  }
}

describe('reading through a Process fd', () => {
  it('reads vEVENTs with poll + read and ends when the fd is closed', async () => {
    const q = new VeventQueue({ depth: 2, type: IOMMU_VEVENTQ_TYPE_SELFTEST });
    const p = new FdProcess();
    const fd = p.open(q);
    q.report(ev(5));
    const seen: number[] = [];
    const done = (async () => {
      for await (const item of readVevents(fdSource(p as unknown as Process, fd), { type: IOMMU_VEVENTQ_TYPE_SELFTEST })) seen.push(idOf(item));
    })();
    await tick();
    q.report(ev(6));
    await tick();
    expect(seen).toEqual([5, 6]);
    p.close(fd);
    q.report(ev(7)); // wakes the pending poll, which now finds the fd closed
    await done;
    expect(seen).toEqual([5, 6]);
  });

  it('reads fault groups and writes responses through the fd', async () => {
    const queue = new FaultQueue();
    const codes: number[] = [];
    const dev = new IopfDevice((_r, code) => codes.push(code));
    const p = new FdProcess();
    const fd = p.open(queue);
    dev.report({ flags: LAST, pasid: 0, grpid: 1, perm: 1, addr: 0n }, { devId: 2, queue });
    const it = readFaultGroups(fdSource(p as unknown as Process, fd));
    const g = (await it.next()).value as DeliveredFaultGroup;
    expect([g.cookie, g.devId]).toEqual([1, 2]);
    g.respond(IOMMUFD_PAGE_RESP_SUCCESS);
    expect(codes).toEqual([IOMMU_PAGE_RESP_SUCCESS]);
    p.close(fd);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('needs the payload size or the type for an fd', async () => {
    const p = new FdProcess();
    await expect(readVevents(fdSource(p as unknown as Process, 3)).next()).rejects.toThrow(RangeError);
  });
});
