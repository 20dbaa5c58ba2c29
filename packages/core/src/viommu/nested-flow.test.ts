// The nested vIOMMU flow end to end on the simulated host with the selftest mock driver, through
// the Process contract only (spec 9.4/9.5): bind a device over its VFIO cdev, build the stage-2,
// the vIOMMU, a vDEVICE and nested HWPTs on the vIOMMU and on the parent, attach, invalidate,
// events and page faults, then tear down in the documented order.

import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import type { DriverHost, PageRequest } from '../driver/driver.js';
import { createSimHost } from '../host/sim-host.js';
import { mockIommu } from '../selftest/index.js';
import { Kit, errnoOf } from './scenario-kit.js';

function boot() {
  const host = createSimHost({ iommus: [mockIommu({ name: 'mock0' })], devices: [{ name: 'dev0', iommu: 'mock0', rid: 0x10, pri: true }] });
  const p = host.spawn();
  const fd = p.open('/dev/iommu');
  const k = new Kit(p, fd);
  const dfd = p.open(host.device('dev0').path);
  const bind = U.vfio_device_bind_iommufd.encode({ argsz: U.vfio_device_bind_iommufd.size, iommufd: fd });
  p.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bind);
  const devId = U.vfio_device_bind_iommufd.get(bind, 'out_devid');
  const attach = (ptId: number) => {
    const a = U.vfio_device_attach_iommufd_pt.encode({ argsz: U.vfio_device_attach_iommufd_pt.size, pt_id: ptId });
    p.ioctl(dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, a);
    return U.vfio_device_attach_iommufd_pt.get(a, 'pt_id');
  };
  const ioas = k.ioasAlloc();
  attach(ioas);
  const s2 = k.hwptAlloc(devId, ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
  return { host, p, fd, k, dfd, devId, attach, ioas, s2 };
}

describe('nested vIOMMU flow on the mock driver', () => {
  it('builds the S2, vIOMMU, vDEVICE and nested HWPTs with the kernel references', () => {
    const { k, devId, attach, ioas, s2 } = boot();
    const viommu = k.viommuAlloc(devId, s2);
    expect(errnoOf(() => k.destroy(s2))).toBe('EBUSY');
    const nested = k.hwptAllocNested(devId, viommu);
    const nestedOnParent = k.hwptAllocNested(devId, s2);
    // A nested HWPT on a nested HWPT is refused (EINVAL); vendor data of another type is the mock's EOPNOTSUPP.
    expect(errnoOf(() => k.hwptAllocNested(devId, nested))).toBe('EINVAL');
    expect(errnoOf(() => k.hwptAlloc(devId, viommu, 0, { dataType: U.IOMMU_HWPT_DATA_SELFTEST + 1, data: new Uint8Array(8) }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => k.hwptAlloc(devId, viommu, U.IOMMU_HWPT_ALLOC_NEST_PARENT, { dataType: U.IOMMU_HWPT_DATA_SELFTEST, data: new Uint8Array(8) }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => k.hwptAllocNested(devId, viommu, U.IOMMU_HWPT_FAULT_ID_VALID, 0xffffffff))).toBe('ENOENT');
    // The selftest: a vDEVICE must exist before attaching to a nested HWPT of the vIOMMU.
    expect(errnoOf(() => attach(nested))).toBe('ENOENT');
    const vdev = k.vdeviceAlloc(viommu, devId, 0x99);
    attach(nested);
    expect(errnoOf(() => k.destroy(nested))).toBe('EBUSY');
    expect(errnoOf(() => k.destroy(viommu))).toBe('EBUSY');
    attach(ioas);
    k.destroy(nested);
    k.destroy(nestedOnParent);
    k.destroy(vdev);
    k.destroy(viommu);
    k.destroy(s2);
  });

  it('maps the vIOMMU vendor pages through the iommufd only at the exact offset (viommu_alloc_with_data)', () => {
    const { p, fd, k, devId, s2 } = boot();
    const data = p.memory.alloc(4096);
    U.iommu_viommu_selftest.encode({ in_data: 0xbeef }, data.bytes);
    const viommu = k.viommuAlloc(devId, s2, U.IOMMU_VIOMMU_TYPE_SELFTEST, { uptr: data.addr, len: U.iommu_viommu_selftest.size });
    const out = U.iommu_viommu_selftest.decode(data.bytes);
    expect(out.out_data).toBe(0xbeef);
    const len = Number(out.out_mmap_length);
    const off = out.out_mmap_offset;
    expect(errnoOf(() => p.mmap(fd, len, off + 4096n))).toBe('ENXIO');
    expect(errnoOf(() => p.mmap(fd, len, off + 8192n))).toBe('ENXIO');
    expect(errnoOf(() => p.mmap(fd, len / 2, off))).toBe('ENXIO');
    expect(errnoOf(() => p.mmap(fd, len * 2, off))).toBe('ENXIO');
    const m = p.mmap(fd, len, off);
    expect(new DataView(m.bytes.buffer, m.bytes.byteOffset).getUint32(0, true)).toBe(0xbeef);
    // The mapping holds the vIOMMU.
    expect(errnoOf(() => k.destroy(viommu))).toBe('EBUSY');
    p.munmap(m.addr, len);
    k.destroy(viommu);
  });

  it('invalidates nested IOTLBs with entry_num written back (alloc_hwpt_nested)', () => {
    const { k, devId, s2 } = boot();
    const nested = k.hwptAllocNested(devId, s2);
    const E = U.iommu_hwpt_invalidate_selftest;
    const entries = (list: [number, number][]) => {
      const b = new Uint8Array(list.length * E.size);
      list.forEach(([flags, id], i) => E.encode({ flags, iotlb_id: id }, b, i * E.size));
      return b;
    };
    const T = U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
    expect(k.invalidate(nested, T, E.size, 0, entries([[0, 0]]))).toEqual({ done: 0, error: undefined });
    expect(k.invalidate(s2, T, E.size, 1, entries([[0, 0]])).done).toBe(0);
    expect(errnoOf(() => { throw k.invalidate(s2, T, E.size, 1, entries([[0, 0]])).error; })).toBe('EINVAL');
    const partial = k.invalidate(nested, T, E.size, 2, entries([[0, 0], [0xffffffff, 1]]));
    expect(partial.done).toBe(1);
    expect((partial.error as { code: string }).code).toBe('EOPNOTSUPP');
    k.checkIotlb(nested, 0, 0);
    k.checkIotlb(nested, 1, U.IOMMU_TEST_IOTLB_DEFAULT);
    expect(k.invalidate(nested, T, E.size, 1, entries([[U.IOMMU_TEST_INVALIDATE_FLAG_ALL, 0]]))).toEqual({ done: 1, error: undefined });
    for (let i = 0; i < 4; i++) k.checkIotlb(nested, i, 0);
  });

  // The mock IOMMU raises no page requests from DMA (the kernel's mock does not either); a driver
  // reports them through DriverHost.reportPageRequest, which is what these tests call.
  const raise = (host: ReturnType<typeof boot>['host'], req: Partial<PageRequest> = {}) =>
    (host as unknown as DriverHost).reportPageRequest(host.device('dev0').ddev, {
      pasid: 0,
      addr: 0xdeadb000n,
      perm: U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE,
      grpid: 2,
      last: true,
      ...req,
    });

  it('delivers a page request through the fault fd and the response back to the device (9.5)', async () => {
    const { host, p, k, devId, attach, ioas } = boot();
    const f = k.faultAlloc();
    const hwpt = k.hwptAlloc(devId, ioas, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: f.id });
    expect(errnoOf(() => k.destroy(f.id))).toBe('EBUSY');
    // Not attached yet: no fault handler, the request is answered INVALID at once.
    expect(await raise(host)).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    attach(hwpt);
    expect(await p.poll(f.fd, U.POLLIN | U.POLLOUT, 0)).toBe(U.POLLOUT);
    // (A request that is not its group's last needs no response of its own; the core settles its
    // promise at once, so only the last one's answer is checked.)
    void raise(host, { last: false, addr: 0x1000n });
    const answer = raise(host, { addr: 0x2000n });
    expect((await p.poll(f.fd, U.POLLIN, -1)) & U.POLLIN).toBe(U.POLLIN);
    // A group of two records: a 40-byte buffer cannot hold it.
    expect(errnoOf(() => p.read(f.fd, new Uint8Array(40)))).toBe('EINVAL');
    expect(errnoOf(() => p.read(f.fd, new Uint8Array(41)))).toBe('ESPIPE');
    const rec = new Uint8Array(80);
    expect(p.read(f.fd, rec)).toBe(80);
    const r0 = U.iommu_hwpt_pgfault.decode(rec, 0);
    const r1 = U.iommu_hwpt_pgfault.decode(rec, 40);
    expect([r0.addr, r1.addr]).toEqual([0x1000n, 0x2000n]);
    expect(r0.dev_id).toBe(devId);
    expect(r0.cookie).toBe(r1.cookie);
    expect(r1.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE).toBe(U.IOMMU_PGFAULT_FLAGS_LAST_PAGE);
    expect(errnoOf(() => p.write(f.fd, U.iommu_hwpt_page_response.encode({ cookie: r1.cookie, code: 2 })))).toBe('EINVAL');
    expect(p.write(f.fd, U.iommu_hwpt_page_response.encode({ cookie: r1.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }))).toBe(8);
    expect(await answer).toBe(U.IOMMUFD_PAGE_RESP_SUCCESS);
    // The cookie is spent: answering twice is EINVAL.
    expect(errnoOf(() => p.write(f.fd, U.iommu_hwpt_page_response.encode({ cookie: r1.cookie, code: 0 })))).toBe('EINVAL');
  });

  it('answers pending faults INVALID when the device detaches, and the rest when the FAULT is destroyed', async () => {
    const { host, p, k, devId, attach, ioas } = boot();
    const f = k.faultAlloc();
    const hwpt = k.hwptAlloc(devId, ioas, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: f.id });
    attach(hwpt);
    const unread = raise(host, { grpid: 1 });
    const read = raise(host, { grpid: 2 });
    expect(p.read(f.fd, new Uint8Array(40))).toBe(40); // group 1 now awaits a response
    attach(ioas);
    expect(await unread).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    expect(await read).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    expect(p.read(f.fd, new Uint8Array(40))).toBe(0);
    k.destroy(hwpt);
    expect(errnoOf(() => k.destroy(f.id))).toBe('EBUSY'); // its fd is open
    p.close(f.fd);
    k.destroy(f.id);
  });

  it('answers a pending page request INVALID when the process exits with everything open', async () => {
    const { host, p, k, devId, attach, ioas } = boot();
    const f = k.faultAlloc();
    attach(k.hwptAlloc(devId, ioas, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: f.id }));
    const read = raise(host);
    const unread = raise(host, { grpid: 3 });
    expect(p.read(f.fd, new Uint8Array(40))).toBe(40); // the first now awaits a response
    (p as unknown as { exit(): void }).exit();
    expect(await read).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    expect(await unread).toBe(U.IOMMUFD_PAGE_RESP_INVALID);
    expect(host.contexts.size).toBe(0);
  });

  it('closing the iommufd with everything alive releases it all once the device is unbound', () => {
    const { p, fd, k, devId, dfd, s2 } = boot();
    const viommu = k.viommuAlloc(devId, s2);
    k.vdeviceAlloc(viommu, devId, 1);
    const q = k.veventqAlloc(viommu, 4);
    const f = k.faultAlloc();
    k.hwptAllocNested(devId, viommu, U.IOMMU_HWPT_FAULT_ID_VALID, f.id);
    p.close(fd);
    p.close(q.fd);
    p.close(f.fd);
    p.close(dfd);
  });
});
