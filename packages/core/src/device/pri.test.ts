// Page requests end to end (spec 9.5): a PRI-capable device DMAs to an unmapped IOVA of a
// fault-capable HWPT; the request arrives on the FAULT fd; userspace maps the page and answers
// SUCCESS; the DMA is retried and completes. INVALID fails it with EFAULT, and detaching answers
// what is still pending.
import { describe, expect, it } from '@jest/globals';
import { ManualClock } from '@viommu/fault';
import * as U from '@viommu/uapi';
import type { DriverHost } from '../driver/driver.js';
import { createSimHost, type SimHostOptions } from '../host/sim-host.js';
import { checkAllReleased, checkInvariants } from '../invariants.js';
import { call } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';

function setup(hostOptions: Pick<SimHostOptions, 'faultResponseTimeoutMs' | 'faultClock'> = {}) {
  const host = createSimHost({ iommus: [simpleDriver({ name: 'iommu0' })], devices: [{ name: 'gpu0', iommu: 'iommu0', rid: 7, pri: true }], ...hostOptions });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
  const dfd = proc.open(host.device('gpu0').path);
  const dev = call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }).out_devid;
  const fault = call(proc, fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc);
  const hwpt = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fault.out_fault_id }).out_hwpt_id;
  call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: hwpt });
  return { host, proc, fd, ioas, dfd, dev, faultFd: fault.out_fault_fd, hwpt };
}

/** The host as its drivers see it: how a driver model raises page requests. */
const driverHost = (s: { host: unknown }) => s.host as DriverHost;

const tick = () => new Promise((r) => setImmediate(r));

describe('PRI page requests', () => {
  it('a page request reaches the FAULT fd; SUCCESS after mapping completes the DMA', async () => {
    const s = setup();
    const buf = s.proc.memory.alloc(4096);
    buf.bytes.set([9, 8, 7], 0);
    const dma = s.host.device('gpu0').dma.read(0x200000n, 3);
    await tick();
    const rec = new Uint8Array(40);
    expect(s.proc.read(s.faultFd, rec)).toBe(40);
    const f = U.iommu_hwpt_pgfault.decode(rec);
    expect(f).toMatchObject({ dev_id: s.dev, pasid: 0, addr: 0x200000n, perm: U.IOMMU_PGFAULT_PERM_READ, flags: U.IOMMU_PGFAULT_FLAGS_LAST_PAGE });
    call(s.proc, s.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE, ioas_id: s.ioas, user_va: buf.addr, length: 4096n, iova: 0x200000n });
    s.proc.write(s.faultFd, U.iommu_hwpt_page_response.encode({ cookie: f.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }));
    expect([...(await dma)]).toEqual([9, 8, 7]);
    checkInvariants(s.host);
  });

  it('INVALID fails the DMA with EFAULT', async () => {
    const s = setup();
    const dma = s.host.device('gpu0').dma.write(0x300000n, new Uint8Array([1]));
    await tick();
    const rec = new Uint8Array(40);
    s.proc.read(s.faultFd, rec);
    s.proc.write(s.faultFd, U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.get(rec, 'cookie'), code: U.IOMMUFD_PAGE_RESP_INVALID }));
    await expect(dma).rejects.toMatchObject({ code: 'EFAULT' });
  });

  it('detaching answers pending requests INVALID; closing everything releases the context', async () => {
    const s = setup();
    const dma = s.host.device('gpu0').dma.read(0x400000n, 1);
    await tick();
    call(s.proc, s.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
    await expect(dma).rejects.toMatchObject({ code: 'EFAULT' });
    // Without a fault-capable attachment the device gets no PRI route: EFAULT at once.
    await expect(s.host.device('gpu0').dma.read(0x400000n, 1)).rejects.toMatchObject({ code: 'EFAULT' });
    s.proc.exit();
    checkAllReleased(s.host);
  });

  it('a page request that is not the last of its group settles with its group\'s answer', async () => {
    const s = setup();
    const sim = s.host.device('gpu0');
    const settled: number[] = [];
    const first = driverHost(s).reportPageRequest(sim.ddev, { pasid: 0, addr: 0x500000n, perm: 1, grpid: 5, last: false });
    void first.then((c: number) => settled.push(c));
    await tick();
    // Held back until its group's last page: nothing to read, no answer yet.
    expect(s.proc.read(s.faultFd, new Uint8Array(40))).toBe(0);
    expect(settled).toEqual([]);
    const last = driverHost(s).reportPageRequest(sim.ddev, { pasid: 0, addr: 0x501000n, perm: 1, grpid: 5, last: true });
    const recs = new Uint8Array(80);
    expect(s.proc.read(s.faultFd, recs)).toBe(80);
    expect(U.iommu_hwpt_pgfault.decode(recs, 0)).toMatchObject({ addr: 0x500000n, grpid: 5, flags: 0 });
    const tail = U.iommu_hwpt_pgfault.decode(recs, 40);
    expect(tail).toMatchObject({ addr: 0x501000n, grpid: 5, flags: U.IOMMU_PGFAULT_FLAGS_LAST_PAGE });
    await tick();
    expect(settled).toEqual([]);
    s.proc.write(s.faultFd, U.iommu_hwpt_page_response.encode({ cookie: tail.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }));
    expect(await first).toBe(U.IOMMUFD_PAGE_RESP_SUCCESS);
    expect(await last).toBe(U.IOMMUFD_PAGE_RESP_SUCCESS);
  });

  it('a partial request without a fault-capable attachment is INVALID at once; one left partial fails on unbind', async () => {
    const s = setup();
    const sim = s.host.device('gpu0');
    const partial = driverHost(s).reportPageRequest(sim.ddev, { pasid: 0, addr: 0x600000n, perm: 1, grpid: 6, last: false });
    call(s.proc, s.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
    expect(await driverHost(s).reportPageRequest(sim.ddev, { pasid: 0, addr: 0x700000n, perm: 1, grpid: 7, last: false })).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    // Its last page never came: the group is discarded when the device goes away.
    s.proc.close(s.dfd);
    expect(await partial).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    s.proc.exit();
    checkAllReleased(s.host);
  });

  it('with faultResponseTimeoutMs, a DMA waiting on an unanswered page request fails after the deadline', async () => {
    const clock = new ManualClock();
    const s = setup({ faultResponseTimeoutMs: 50, faultClock: clock });
    let failed = false;
    const unread = s.host.device('gpu0').dma.read(0x800000n, 1).catch((e: unknown) => {
      failed = true;
      throw e;
    });
    await tick();
    clock.advance(49);
    await tick();
    expect(failed).toBe(false);
    clock.advance(1);
    await expect(unread).rejects.toMatchObject({ code: 'EFAULT' });
    // Taken back from the queue: nothing left to read.
    expect(s.proc.read(s.faultFd, new Uint8Array(40))).toBe(0);
    // A group read but not answered expires the same way; a late response finds no cookie.
    const read = s.host.device('gpu0').dma.read(0x900000n, 1);
    await tick();
    const rec = new Uint8Array(40);
    expect(s.proc.read(s.faultFd, rec)).toBe(40);
    clock.advance(50);
    await expect(read).rejects.toMatchObject({ code: 'EFAULT' });
    const late = U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.get(rec, 'cookie'), code: U.IOMMUFD_PAGE_RESP_SUCCESS });
    expect(() => s.proc.write(s.faultFd, late)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    s.proc.exit();
    checkAllReleased(s.host);
  });
});
