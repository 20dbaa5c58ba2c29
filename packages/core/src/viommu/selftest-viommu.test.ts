// The kernel selftest's iommufd_viommu fixture (tools/testing/selftests/iommu/iommufd.c, 7.2.13),
// both variants, on the simulated host through the Process contract: mock devices come from
// IOMMU_TEST_CMD, events and faults from TRIGGER_VEVENT / TRIGGER_IOPF, as in the kernel.

import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { mockIommu } from '../selftest/index.js'; // also registers IOMMU_TEST_CMD
import { Kit, errnoOf } from './scenario-kit.js';

const PAGE = 4096;

interface Self {
  k: Kit;
  ioasId: number;
  stdevId: number;
  hwptId: number;
  nestedHwptId: number;
  deviceId: number;
  viommuId: number;
}

function setup(viommu: boolean): Self {
  const p = createSimHost({ iommus: [mockIommu()] }).spawn();
  const k = new Kit(p, p.open('/dev/iommu'));
  const self: Self = { k, ioasId: k.ioasAlloc(), stdevId: 0, hwptId: 0, nestedHwptId: 0, deviceId: 0, viommuId: 0 };
  if (viommu) {
    const md = k.mockDomain(self.ioasId);
    self.stdevId = md.stdevId;
    self.deviceId = md.idevId;
    self.hwptId = k.hwptAlloc(self.deviceId, self.ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
    self.viommuId = k.viommuAlloc(self.deviceId, self.hwptId);
    self.nestedHwptId = k.hwptAllocNested(self.deviceId, self.viommuId);
  }
  return self;
}

/** teardown_iommufd: closing the fd must release every object (the invariant the kernel checks by leak reports). */
function teardown(self: Self): void {
  self.k.p.close(self.k.fd);
}

/** _test_cmd_read_vevents: poll, read `n` records, check flags, sequence continuity and the virt_id. */
async function readVevents(k: Kit, fd: number, n: number, virtId: number, prev: { seq: number }): Promise<string | undefined> {
  await k.p.poll(fd, U.POLLIN, 1000);
  const buf = new Uint8Array(n * 12);
  const bytes = k.p.read(fd, buf);
  if (bytes <= 0) return 'EFAULT';
  for (let i = 0; i < n; i++) {
    const h = U.iommufd_vevent_header.decode(buf, i * 12);
    if (h.flags & U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS || h.sequence - prev.seq > 1) {
      prev.seq = h.sequence;
      return 'EOVERFLOW';
    }
    prev.seq = h.sequence;
    if (U.iommu_viommu_event_selftest.decode(buf, 8).virt_id !== virtId) return 'EINVAL';
  }
  return undefined;
}

for (const [variant, withViommu] of [
  ['no_viommu', false],
  ['mock_viommu', true],
] as const) {
  describe(`iommufd_viommu.${variant}`, () => {
    it('viommu_auto_destroy', () => {
      teardown(setup(withViommu));
    });

    it('viommu_negative_tests', () => {
      const self = setup(withViommu);
      const { k } = self;
      if (self.deviceId) {
        expect(errnoOf(() => k.viommuAlloc(self.deviceId, 0))).toBe('ENOENT');
        const hwptId = k.hwptAlloc(self.deviceId, self.ioasId, 0);
        expect(errnoOf(() => k.viommuAlloc(self.deviceId, hwptId))).toBe('EINVAL');
        k.destroy(hwptId);
        expect(errnoOf(() => k.viommuAlloc(self.deviceId, self.hwptId, 0xdead))).toBe('EOPNOTSUPP');
        expect(errnoOf(() => k.destroy(self.hwptId))).toBe('EBUSY');
        expect(errnoOf(() => k.destroy(self.viommuId))).toBe('EBUSY');
      } else {
        expect(errnoOf(() => k.viommuAlloc(self.deviceId, self.hwptId))).toBe('ENOENT');
      }
      teardown(self);
    });

    it('viommu_alloc_nested_iopf', () => {
      const self = setup(withViommu);
      const { k } = self;
      if (!self.deviceId) return teardown(self);
      const fault = k.faultAlloc();
      expect(errnoOf(() => k.hwptAllocNested(self.deviceId, self.viommuId, U.IOMMU_HWPT_FAULT_ID_VALID, 0xffffffff))).toBe('ENOENT');
      expect(errnoOf(() => k.hwptAllocNested(self.deviceId, self.viommuId, (U.IOMMU_HWPT_FAULT_ID_VALID | (1 << 31)) >>> 0, fault.id))).toBe('EOPNOTSUPP');
      const iopfHwpt = k.hwptAllocNested(self.deviceId, self.viommuId, U.IOMMU_HWPT_FAULT_ID_VALID, fault.id);
      // Must allocate a vDEVICE before attaching to a nested HWPT.
      expect(errnoOf(() => k.mockDomainReplace(self.stdevId, iopfHwpt))).toBe('ENOENT');
      k.vdeviceAlloc(self.viommuId, self.deviceId, 0x99);
      k.mockDomainReplace(self.stdevId, iopfHwpt);
      expect(errnoOf(() => k.destroy(iopfHwpt))).toBe('EBUSY');
      // test_cmd_trigger_iopf: PASID 1, which has no attachment of its own: the mock's user-managed
      // PASID table sends it to the RID's nested HWPT. Read the record, answer it.
      k.triggerIopf(self.deviceId, 0x1);
      const rec = new Uint8Array(40);
      expect(k.p.read(fault.fd, rec)).toBe(40);
      const r = U.iommu_hwpt_pgfault.decode(rec);
      expect(r).toMatchObject({ flags: U.IOMMU_PGFAULT_FLAGS_LAST_PAGE | U.IOMMU_PGFAULT_FLAGS_PASID_VALID, dev_id: self.deviceId, pasid: 0x1, grpid: 0x2, perm: U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE, addr: 0xdeadbeafn });
      expect(k.p.write(fault.fd, U.iommu_hwpt_page_response.encode({ cookie: r.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }))).toBe(8);
      k.mockDomainReplace(self.stdevId, self.ioasId);
      k.destroy(iopfHwpt);
      k.p.close(fault.fd);
      k.destroy(fault.id);
      teardown(self);
    });

    it('viommu_alloc_with_data', () => {
      const self = setup(withViommu);
      const { k } = self;
      if (!self.deviceId) return teardown(self);
      const data = k.p.memory.alloc(PAGE);
      U.iommu_viommu_selftest.encode({ in_data: 0xbeef }, data.bytes);
      const viommuId = k.viommuAlloc(self.deviceId, self.hwptId, U.IOMMU_VIOMMU_TYPE_SELFTEST, { uptr: data.addr, len: U.iommu_viommu_selftest.size });
      const out = U.iommu_viommu_selftest.decode(data.bytes);
      expect(out.out_data).toBe(out.in_data);
      const len = Number(out.out_mmap_length);
      const off = out.out_mmap_offset;
      expect(errnoOf(() => k.p.mmap(k.fd, len, off + BigInt(PAGE)))).toBe('ENXIO');
      expect(errnoOf(() => k.p.mmap(k.fd, len, off + BigInt(PAGE * 2)))).toBe('ENXIO');
      expect(errnoOf(() => k.p.mmap(k.fd, len / 2, off))).toBe('ENXIO');
      expect(errnoOf(() => k.p.mmap(k.fd, len * 2, off))).toBe('ENXIO');
      const m = k.p.mmap(k.fd, len, off);
      expect(new DataView(m.bytes.buffer, m.bytes.byteOffset).getUint32(0, true)).toBe(0xbeef);
      expect(errnoOf(() => k.destroy(viommuId))).toBe('EBUSY');
      k.p.munmap(m.addr, len);
      teardown(self);
    });

    it('vdevice_alloc', async () => {
      const self = setup(withViommu);
      const { k } = self;
      if (!self.deviceId) {
        expect(errnoOf(() => k.vdeviceAlloc(self.viommuId, self.deviceId, 0x99))).toBe('ENOENT');
        return teardown(self);
      }
      expect(errnoOf(() => k.mockDomainReplace(self.stdevId, self.nestedHwptId))).toBe('ENOENT');
      const MAX = 1 << 19;
      expect(errnoOf(() => k.veventqAlloc(self.viommuId, 0))).toBe('EINVAL');
      expect(errnoOf(() => k.veventqAlloc(self.viommuId, MAX + 1))).toBe('EINVAL');
      let q = k.veventqAlloc(self.viommuId, MAX);
      k.p.close(q.fd);
      k.destroy(q.id);

      q = k.veventqAlloc(self.viommuId, 2);
      expect(errnoOf(() => k.veventqAlloc(self.viommuId, 2))).toBe('EEXIST');
      expect(errnoOf(() => k.p.read(q.fd, new Uint8Array(0)))).toBe('EINVAL');
      expect(errnoOf(() => k.p.read(q.fd, new Uint8Array(7)))).toBe('EINVAL');

      let vdevId = k.vdeviceAlloc(self.viommuId, self.deviceId, 0x99);
      k.mockDomainReplace(self.stdevId, self.nestedHwptId);
      k.triggerVevent(self.deviceId);
      expect(errnoOf(() => k.p.read(q.fd, new Uint8Array(0)))).toBe('EINVAL');
      expect(errnoOf(() => k.p.read(q.fd, new Uint8Array(8)))).toBe('EINVAL');
      const prev = { seq: -1 };
      expect(await readVevents(k, q.fd, 1, 0x99, prev)).toBeUndefined();
      expect(errnoOf(() => k.vdeviceAlloc(self.viommuId, self.deviceId, 0x99))).toBe('EEXIST');
      k.mockDomainReplace(self.stdevId, self.ioasId);
      k.destroy(vdevId);

      vdevId = k.vdeviceAlloc(self.viommuId, self.deviceId, 0x88);
      k.mockDomainReplace(self.stdevId, self.nestedHwptId);
      // Three events into a queue of depth 2: an overflow.
      for (let i = 0; i < 3; i++) k.triggerVevent(self.deviceId);
      expect(await readVevents(k, q.fd, 3, 0x88, prev)).toBe('EOVERFLOW');
      // The overflow is gone after the reads.
      k.triggerVevent(self.deviceId);
      expect(await readVevents(k, q.fd, 1, 0x88, prev)).toBeUndefined();
      k.p.close(q.fd);
      k.mockDomainReplace(self.stdevId, self.ioasId);
      k.destroy(vdevId);
      k.destroy(q.id);
      teardown(self);
    });

    it('vdevice_cache', () => {
      const self = setup(withViommu);
      const { k } = self;
      if (!self.deviceId) return teardown(self);
      const E = U.iommu_viommu_invalidate_selftest;
      const reqs = (list: [number, number, number][]) => {
        const b = new Uint8Array(Math.max(2, list.length) * E.size);
        list.forEach(([flags, vdev, cache], i) => E.encode({ flags, vdev_id: vdev, cache_id: cache }, b, i * E.size));
        return b;
      };
      const T = U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
      const D = U.IOMMU_TEST_DEV_CACHE_DEFAULT;
      const inv = (type: number, len: number, num: number, entries: Uint8Array | null) => {
        const r = k.invalidate(self.viommuId, type, len, num, entries);
        return { done: r.done, code: r.error === undefined ? 'ok' : (r.error as { code: string }).code };
      };
      const checkAll = (values: number[]) => values.forEach((v, i) => k.checkDevCache(self.deviceId, i, v));

      const vdevId = k.vdeviceAlloc(self.viommuId, self.deviceId, 0x99);
      checkAll([D, D, D, D]);
      expect(inv(T, E.size, 0, reqs([]))).toEqual({ done: 0, code: 'ok' });
      expect(inv(U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, E.size, 1, reqs([[0, 0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, E.size + 1, 1, reqs([[0, 0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, 1, 1, reqs([[0, 0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, E.size, 1, reqs([[0xffffffff, 0x99, 0]]))).toEqual({ done: 0, code: 'EOPNOTSUPP' });
      expect(inv(T, E.size, 1, null)).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, 0, 1, reqs([[0, 0x99, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, E.size, 1, reqs([[0, 0x99, U.MOCK_DEV_CACHE_ID_MAX + 1]]))).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, E.size, 1, reqs([[0, 0x9, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
      expect(inv(T, E.size, 2, reqs([[0, 0x99, 0], [0xffffffff, 0x99, 1]]))).toEqual({ done: 1, code: 'EOPNOTSUPP' });
      checkAll([0, D, D, D]);
      expect(inv(T, E.size, 2, reqs([[0, 0x99, 0], [0, 0x99, U.MOCK_DEV_CACHE_ID_MAX + 1]]))).toEqual({ done: 1, code: 'EINVAL' });
      checkAll([0, D, D, D]);
      expect(inv(T, E.size, 1, reqs([[0, 0x99, 1]]))).toEqual({ done: 1, code: 'ok' });
      checkAll([0, 0, D, D]);
      expect(inv(T, E.size, 2, reqs([[0, 0x99, 2], [0, 0x99, 3]]))).toEqual({ done: 2, code: 'ok' });
      checkAll([0, 0, 0, 0]);
      expect(inv(T, E.size, 1, reqs([[U.IOMMU_TEST_INVALIDATE_FLAG_ALL, 0x99, 0]]))).toEqual({ done: 1, code: 'ok' });
      checkAll([0, 0, 0, 0]);
      k.destroy(vdevId);
      teardown(self);
    });

    it('hw_queue', () => {
      const self = setup(withViommu);
      const { k } = self;
      if (!self.viommuId) return teardown(self);
      const iova0 = BigInt(U.MOCK_APERTURE_START);
      const Q = U.IOMMU_HW_QUEUE_TYPE_SELFTEST;
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, 0, iova0, PAGE, U.IOMMU_HW_QUEUE_TYPE_DEFAULT))).toBe('EOPNOTSUPP');
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, 0, iova0, 0, Q))).toBe('EINVAL');
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, 0, (1n << 64n) - 1n, PAGE, Q))).toBe('EOVERFLOW');
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, 0, iova0, PAGE, Q))).toBe('ENOENT');
      const buffer = k.p.memory.alloc(2 * PAGE);
      const iova = k.ioasMap(self.ioasId, buffer.addr, PAGE);
      const iova2 = k.ioasMap(self.ioasId, buffer.addr + BigInt(PAGE), PAGE);
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, 1, iova, PAGE, Q))).toBe('EIO');
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, U.IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE, Q))).toBe('EINVAL');
      const q0 = k.hwQueueAlloc(self.viommuId, 0, iova, PAGE, Q);
      expect(errnoOf(() => k.hwQueueAlloc(self.viommuId, 0, iova, PAGE, Q))).toBe('EEXIST');
      expect(errnoOf(() => k.ioasUnmap(self.ioasId, iova, PAGE))).toBe('EBUSY');
      k.ioasUnmap(self.ioasId, iova2, PAGE);
      const q1 = k.hwQueueAlloc(self.viommuId, 1, iova + BigInt(PAGE / 2), PAGE / 2, Q);
      expect(errnoOf(() => k.destroy(q0))).toBe('EBUSY');
      k.destroy(q1);
      k.destroy(q0);
      k.ioasUnmap(self.ioasId, iova, PAGE);
      teardown(self);
    });

    it('vdevice_tombstone', () => {
      const self = setup(withViommu);
      const { k } = self;
      if (!self.deviceId) return teardown(self);
      const vdevId = k.vdeviceAlloc(self.viommuId, self.deviceId, 0x99);
      k.destroy(self.stdevId);
      expect(errnoOf(() => k.destroy(vdevId))).toBe('ENOENT');
      teardown(self);
    });
  });
}

describe('VIOMMU_ALLOC order of checks (iommufd_viommu_alloc_ioctl)', () => {
  it('an unsupported type is EOPNOTSUPP before the parent HWPT is looked up (mock_get_viommu_size)', () => {
    const self = setup(true);
    const { k } = self;
    // Wrong twice: bad type and no such HWPT. get_viommu_size answers first.
    expect(errnoOf(() => k.viommuAlloc(self.deviceId, 0xfffff, 0xdead))).toBe('EOPNOTSUPP');
    // Wrong type on a HWPT that is not a nesting parent: still the type.
    const plain = k.hwptAlloc(self.deviceId, self.ioasId, 0);
    expect(errnoOf(() => k.viommuAlloc(self.deviceId, plain, 0xdead))).toBe('EOPNOTSUPP');
    // With the supported type the parent checks decide.
    expect(errnoOf(() => k.viommuAlloc(self.deviceId, 0xfffff))).toBe('ENOENT');
    expect(errnoOf(() => k.viommuAlloc(self.deviceId, plain))).toBe('EINVAL');
    k.destroy(plain);
    teardown(self);
  });

  it('the mock answers viommuSupported only for IOMMU_VIOMMU_TYPE_SELFTEST', () => {
    const drv = mockIommu();
    const dev = drv.probeDevice({ name: 'mock0', rid: 0, pasidBits: 0, pri: false, ats: false });
    expect(drv.viommuSupported?.(dev, U.IOMMU_VIOMMU_TYPE_SELFTEST)).toBe(true);
    expect(drv.viommuSupported?.(dev, U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3)).toBe(false);
    expect(drv.viommuSupported?.(dev, U.IOMMU_VIOMMU_TYPE_DEFAULT)).toBe(false);
  });
});
