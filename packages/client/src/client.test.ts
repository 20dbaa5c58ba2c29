// The client over the simulator with the selftest mock driver: the nested flow, errors in words,
// typed outcomes, event queues as iterables (lost events, clean end on close), fault groups and
// their responses, and teardown in dependency order with everything alive.

import { describe, expect, it } from '@jest/globals';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { ClientError, Iommufd, type Device, type VeventItem } from './index.js';

const GUEST_RAM_IPA = 0x4000_0000n;

function boot() {
  const host = createSimHost({ devices: [{ name: 'dev0', iommu: 'mock', rid: 0x10, pri: true }] });
  const proc = host.spawn();
  const iommufd = Iommufd.open(proc);
  const dev = iommufd.bindDevice(host.device('dev0').path);
  const ram = proc.memory.alloc(64 * 1024);
  const ioas = iommufd.allocIoas();
  ioas.map(ram.addr, ram.bytes.length, { iova: GUEST_RAM_IPA });
  dev.attach(ioas);
  const s2 = ioas.allocNestParent(dev);
  return { host, proc, iommufd, dev, ram, ioas, s2 };
}

function triggerVevent(iommufd: Iommufd, dev: Device): void {
  iommufd.call('triggerVevent', dev.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_vevent, { op: U.IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: dev.id });
}

function triggerIopf(iommufd: Iommufd, dev: Device, grpid: number, addr: bigint): void {
  iommufd.call('triggerIopf', dev.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_iopf, {
    op: U.IOMMU_TEST_OP_TRIGGER_IOPF, dev_id: dev.id, pasid: 0, grpid, perm: U.IOMMU_PGFAULT_PERM_READ, addr,
  });
}

const nestedData = () => ({ type: U.IOMMU_HWPT_DATA_SELFTEST, bytes: U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT }) });

describe('@viommu/client on the mock driver', () => {
  it('runs the nested flow: DMA through the nested HWPT reaches guest RAM, and teardown releases everything', async () => {
    const { host, iommufd, dev, ram, s2 } = boot();
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    const vdev = viommu.allocVdevice(dev, 0x99);
    expect(vdev.virtId).toBe(0x99n);
    const nested = viommu.allocNested(dev, nestedData());
    expect(nested.kind).toBe('HWPT_NESTED');
    expect(dev.attach(nested)).toBe(nested.id);
    ram.bytes.set([1, 2, 3, 4], 0x2000);
    expect([...(await host.device('dev0').dma.read(GUEST_RAM_IPA + 0x2000n, 4))]).toEqual([1, 2, 3, 4]);
    await host.device('dev0').dma.write(GUEST_RAM_IPA + 0x3000n, new Uint8Array([9, 8]));
    expect([...ram.bytes.subarray(0x3000, 0x3002)]).toEqual([9, 8]);
    expect(iommufd.objects.map((o) => o.kind)).toEqual(['IOAS', 'HWPT_PAGING', 'VIOMMU', 'VDEVICE', 'HWPT_NESTED']);
    iommufd.teardown();
    expect(iommufd.objects).toEqual([]);
    expect(host.contexts.size).toBe(0);
    expect(host.leaks).toEqual([]);
    expect(host.device('dev0').bound).toBeUndefined();
  });

  it('reports errors with the errno, the operation, the object and a hint', () => {
    const { iommufd, dev, s2 } = boot();
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    let err: unknown;
    try {
      s2.destroy();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ClientError);
    const ce = err as ClientError;
    expect([ce.code, ce.errno, ce.op, ce.object]).toEqual(['EBUSY', -U.ERRNO.EBUSY, 'destroy', `HWPT_PAGING ${s2.id}`]);
    expect(ce.message).toMatch(/still in use/);
    expect((ce.cause as U.SystemError).code).toBe('EBUSY');
    // The object survives a failed destroy and goes once its dependant is gone.
    expect(s2.destroyed).toBe(false);
    viommu.destroy();
    s2.destroy();
    expect(s2.destroyed).toBe(true);
    expect(() => iommufd.bindDevice('/dev/vfio/devices/vfio77')).toThrow(expect.objectContaining({ code: 'ENOENT', op: 'open' }));
    iommufd.teardown();
  });

  it('gives typed outcomes for an incompatible nest parent and an incompatible attach', () => {
    const { iommufd, dev, ioas, s2 } = boot();
    const plain = ioas.allocHwpt(dev);
    const r = iommufd.tryAllocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: plain });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe('incompatible-parent');
      expect(r.error.code).toBe('EINVAL');
    }
    // Other errnos are still thrown: an unknown vIOMMU type is EOPNOTSUPP.
    expect(() => iommufd.tryAllocViommu({ type: 0x1234, device: dev, parent: s2 })).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP' }));
    const ok = iommufd.tryAllocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    expect(ok.ok).toBe(true);
    iommufd.teardown();
  });

  it('returns the handled count of a partial invalidation', () => {
    const { iommufd, dev, s2 } = boot();
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    viommu.allocVdevice(dev, 0x99);
    const E = U.iommu_viommu_invalidate_selftest;
    const entry = (vdevId: number, cacheId: number) => E.encode({ flags: 0, vdev_id: vdevId, cache_id: cacheId });
    const batch = (entries: Uint8Array[]) => ({ type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen: E.size, entries });
    expect(viommu.invalidate(batch([entry(0x99, 0), entry(0x99, 1)]))).toEqual({ ok: true, handled: 2 });
    const partial = viommu.invalidate(batch([entry(0x99, 0), entry(0x99, 1), entry(0x55, 0)]));
    expect(partial.ok).toBe(false);
    expect(partial.handled).toBe(2);
    if (!partial.ok) expect([partial.error.code, partial.error.op]).toEqual(['EINVAL', 'invalidate']);
    // entry_len 0 with entries is the kernel's EINVAL; a packed buffer of partial entries never leaves the client.
    const zero = viommu.invalidate({ type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen: 0, entries: [entry(0x99, 0)] });
    expect(zero.ok ? 'ok' : zero.error.code).toBe('EINVAL');
    expect(() => viommu.invalidate({ type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen: E.size, entries: new Uint8Array(E.size + 1) })).toThrow(RangeError);
    // A paging HWPT has no invalidation of its own: EINVAL with nothing handled.
    const r = s2.invalidate(batch([entry(0x99, 0)]));
    expect(r.ok ? 'ok' : r.error.code).toBe('EINVAL');
    expect(r.handled).toBe(0);
    iommufd.teardown();
  });

  it('iterates vEVENTs, surfaces lost events, and ends cleanly when the queue is closed', async () => {
    const { iommufd, dev, s2 } = boot();
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    viommu.allocVdevice(dev, 0x42);
    dev.attach(viommu.allocNested(dev, nestedData()));
    const q = viommu.allocVeventq(U.IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
    for (let i = 0; i < 4; i++) triggerVevent(iommufd, dev); // two fit, two are lost
    const seen: VeventItem[] = [];
    const done = (async () => {
      for await (const item of q) seen.push(item);
    })();
    await new Promise((r) => setImmediate(r));
    triggerVevent(iommufd, dev);
    await new Promise((r) => setImmediate(r));
    q.close();
    await done;
    const virt = (i: VeventItem) => (i.kind === 'event' ? U.iommu_viommu_event_selftest.decode(i.data).virt_id : -1);
    expect(seen.map((i) => [i.kind, i.sequence])).toEqual([
      ['event', 0],
      ['event', 1],
      ['lost', 3],
      ['event', 4],
    ]);
    expect(seen.filter((i) => i.kind === 'event').map(virt)).toEqual([0x42, 0x42, 0x42]);
    expect(seen[2]).toMatchObject({ kind: 'lost', count: 2, flagged: true });
    // Closed but not destroyed: teardown destroys it without touching the fd again.
    iommufd.teardown();
  });

  it('reports a sequence gap when a later event superseded the lost-events header', async () => {
    const { iommufd, dev, s2 } = boot();
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    viommu.allocVdevice(dev, 0x42);
    dev.attach(viommu.allocNested(dev, nestedData()));
    const q = viommu.allocVeventq(U.IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
    for (let i = 0; i < 3; i++) triggerVevent(iommufd, dev); // 0 and 1 queued, 2 lost (header)
    // Read exactly one record by hand, making room: the next event replaces the header.
    const rec = new Uint8Array(8 + U.iommu_viommu_event_selftest.size);
    expect(iommufd.process.read(q.fd, rec)).toBe(rec.length);
    triggerVevent(iommufd, dev); // sequence 3
    const it = q.events()[Symbol.asyncIterator]();
    const items = [(await it.next()).value, (await it.next()).value, (await it.next()).value];
    // The reader starts at sequence 0, so sequence 0 read by hand shows as lost too: the gap is what it sees.
    expect(items.map((i) => [i?.kind, i?.sequence])).toEqual([
      ['lost', 0],
      ['event', 1],
      ['lost', 2],
    ]);
    expect(items[2]).toMatchObject({ count: 1, flagged: false });
    expect((await it.next()).value).toMatchObject({ kind: 'event', sequence: 3 });
    iommufd.teardown();
  });

  it('delivers page-request groups from the fault queue and takes their responses', async () => {
    const { host, iommufd, dev, ioas } = boot();
    const faults = iommufd.allocFaultQueue();
    const hwpt = ioas.allocHwpt(dev, { fault: faults });
    expect(hwpt.fault).toBe(faults);
    dev.attach(hwpt);
    const answer = (host as unknown as { reportPageRequest: (d: unknown, r: unknown) => Promise<number> }).reportPageRequest(host.device('dev0').ddev, {
      pasid: 0, addr: 0x5000n, perm: U.IOMMU_PGFAULT_PERM_READ, grpid: 7, last: true,
    });
    triggerIopf(iommufd, dev, 8, 0x6000n);
    const addrs: bigint[] = [];
    for await (const g of faults) {
      addrs.push(g.faults[0]!.addr);
      expect(g.devId).toBe(dev.id);
      g.respond(U.IOMMUFD_PAGE_RESP_SUCCESS);
      if (addrs.length === 2) break;
    }
    expect(addrs).toEqual([0x5000n, 0x6000n]);
    expect(await answer).toBe(U.IOMMUFD_PAGE_RESP_SUCCESS);
    iommufd.teardown();
    expect(host.contexts.size).toBe(0);
  });

  it('tears down a full set of live objects (HW queue, vEVENTQ, fault, mmap) in an order the kernel accepts', () => {
    const { host, proc, iommufd, dev, ioas, s2 } = boot();
    const data = U.iommu_viommu_selftest.encode({ in_data: 0xbeef });
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2, data });
    const back = U.iommu_viommu_selftest.decode(viommu.data!);
    expect(back.out_data).toBe(0xbeef);
    const page = viommu.mmap(back.out_mmap_offset, Number(back.out_mmap_length));
    expect(page.bytes.length).toBe(8192);
    viommu.allocVdevice(dev, 3);
    const faults = iommufd.allocFaultQueue();
    const nested = viommu.allocNested(dev, nestedData(), { fault: faults });
    dev.attach(nested);
    viommu.allocVeventq(U.IOMMU_VEVENTQ_TYPE_SELFTEST, 8);
    const q0 = viommu.allocHwQueue({ type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, index: 0, iova: GUEST_RAM_IPA, length: 4096 });
    viommu.allocHwQueue({ type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, index: 1, iova: GUEST_RAM_IPA + 0x1000n, length: 4096 });
    // The queue pins its memory: unmapping the guest RAM under it is refused.
    expect(() => ioas.unmap()).toThrow(expect.objectContaining({ code: 'EBUSY', op: 'unmap' }));
    expect(() => q0.destroy()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    iommufd.teardown();
    expect(host.contexts.size).toBe(0);
    expect(host.leaks).toEqual([]);
    expect(() => proc.ioctl(iommufd.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc.encode({}))).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('forgets a vDEVICE the kernel destroyed with its device, whose ID stays tombstoned', () => {
    const { host, iommufd, dev, s2 } = boot();
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    const vdev = viommu.allocVdevice(dev, 5);
    dev.close();
    expect(vdev.destroyed).toBe(true);
    expect(() => iommufd.call('destroy', vdev.label, U.IOMMU_DESTROY, U.iommu_destroy, { id: vdev.id })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    // The tombstone keeps the ID: the next object gets another one.
    expect(iommufd.allocIoas().id).not.toBe(vdev.id);
    iommufd.teardown();
    expect(host.contexts.size).toBe(0);
  });

  it('tracks dirty pages of a stage-2 for migration (set, read and clear, NO_CLEAR)', () => {
    const { iommufd, dev, ioas } = boot();
    const s2 = ioas.allocNestParent(dev, { dirtyTracking: true });
    // A HWPT without DIRTY_TRACKING has no dirty ops: EOPNOTSUPP.
    expect(() => ioas.allocNestParent(dev).setDirtyTracking(true)).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP', op: 'setDirtyTracking' }));
    s2.setDirtyTracking(true);
    // The mock marks pages dirty on IOMMU_TEST_OP_DIRTY, as hardware would on a DMA write.
    const bits = iommufd.process.memory.alloc(8);
    bits.bytes[0] = 0b1010;
    iommufd.call('markDirty', s2.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_dirty, {
      op: U.IOMMU_TEST_OP_DIRTY, id: s2.id, iova: GUEST_RAM_IPA, length: 0x4000n, page_size: 4096n, uptr: bits.addr,
    });
    const expected = [GUEST_RAM_IPA + 0x1000n, GUEST_RAM_IPA + 0x3000n];
    expect(s2.readDirty(GUEST_RAM_IPA, 0x4000, 4096, { noClear: true })).toEqual(expected);
    expect(s2.readDirty(GUEST_RAM_IPA, 0x4000, 4096)).toEqual(expected);
    expect(s2.readDirty(GUEST_RAM_IPA, 0x4000, 4096)).toEqual([]);
    s2.setDirtyTracking(false);
    iommufd.teardown();
  });

  it('is disposable', () => {
    const { host, iommufd, dev, s2 } = boot();
    iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, device: dev, parent: s2 });
    iommufd[Symbol.dispose]();
    expect(iommufd.isClosed).toBe(true);
    expect(host.contexts.size).toBe(0);
  });
});
