// The kernel selftest's iommufd_ioas.alloc_hwpt_nested (tools/testing/selftests/iommu/iommufd.c,
// 7.2.13) for the no_domain and mock_domain variants: nested HWPTs on a nest-parent HWPT_PAGING,
// their vendor-data checks, HWPT_INVALIDATE on nested IOTLBs with every bound and the partial
// write-back, replace between nested HWPTs, and an I/O page fault on the fault-capable one.

import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { mockIommu } from '../selftest/index.js';
import { Kit, errnoOf } from './scenario-kit.js';

const PAGE = 4096;

function setup(mockDomains: number) {
  const p = createSimHost({ iommus: [mockIommu()] }).spawn();
  const k = new Kit(p, p.open('/dev/iommu'));
  const ioasId = k.ioasAlloc();
  let stdevId = 0;
  let deviceId = 0;
  for (let i = 0; i < mockDomains; i++) {
    const md = k.mockDomain(ioasId);
    stdevId = md.stdevId;
    deviceId = md.idevId;
    for (let c = 0; c < 4; c++) k.checkDevCache(deviceId, c, U.IOMMU_TEST_DEV_CACHE_DEFAULT);
  }
  return { k, ioasId, stdevId, deviceId };
}

const selftestData = (len = U.iommu_hwpt_selftest.size) => ({
  dataType: U.IOMMU_HWPT_DATA_SELFTEST,
  data: U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT }).subarray(0, len),
});

describe('iommufd_ioas.alloc_hwpt_nested', () => {
  it('mock_domain', () => {
    const { k, ioasId, stdevId, deviceId } = setup(1);
    const minLen = 4; // offsetofend(struct iommu_hwpt_selftest, iotlb)
    expect(errnoOf(() => k.hwptAlloc(ioasId, deviceId, 0))).toBe('ENOENT');
    expect(errnoOf(() => k.hwptAlloc(deviceId, deviceId, 0))).toBe('EINVAL');
    expect(errnoOf(() => k.hwptAlloc(deviceId, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_FAULT_ID_VALID))).toBe('EOPNOTSUPP');
    const parent = k.hwptAlloc(deviceId, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
    const notParent = k.hwptAlloc(deviceId, ioasId, 0);

    // Negative nested tests.
    expect(errnoOf(() => k.hwptAlloc(deviceId, parent, 0, { dataType: U.IOMMU_HWPT_DATA_NONE, data: selftestData().data }))).toBe('EINVAL');
    expect(errnoOf(() => k.hwptAlloc(deviceId, parent, 0, { dataType: U.IOMMU_HWPT_DATA_SELFTEST + 1, data: selftestData().data }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => k.hwptAlloc(deviceId, parent, 0, selftestData(minLen - 1)))).toBe('EINVAL');
    expect(errnoOf(() => k.hwptAlloc(deviceId, parent, 0, { dataType: U.IOMMU_HWPT_DATA_SELFTEST, dataLen: 8, uptr: 0n }))).toBe('EFAULT');
    expect(errnoOf(() => k.hwptAlloc(deviceId, parent, U.IOMMU_HWPT_ALLOC_NEST_PARENT, selftestData()))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => k.hwptAlloc(deviceId, notParent, 0, selftestData()))).toBe('EINVAL');

    // Two nested HWPTs sharing one parent, and a fault-capable one.
    const fault = k.faultAlloc();
    const nested = [k.hwptAlloc(deviceId, parent, 0, selftestData()), k.hwptAlloc(deviceId, parent, 0, selftestData())];
    expect(errnoOf(() => k.hwptAllocNested(deviceId, parent, U.IOMMU_HWPT_FAULT_ID_VALID, 0xffffffff))).toBe('ENOENT');
    const iopfHwpt = k.hwptAllocNested(deviceId, parent, U.IOMMU_HWPT_FAULT_ID_VALID, fault.id);
    for (const h of nested) for (let i = 0; i < 4; i++) k.checkIotlb(h, i, U.IOMMU_TEST_IOTLB_DEFAULT);

    // A nested HWPT on a nested HWPT; the parent is now busy.
    expect(errnoOf(() => k.hwptAlloc(deviceId, nested[0]!, 0, selftestData()))).toBe('EINVAL');
    expect(errnoOf(() => k.destroy(parent))).toBe('EBUSY');

    const E = U.iommu_hwpt_invalidate_selftest;
    const T = U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
    const D = U.IOMMU_TEST_IOTLB_DEFAULT;
    const reqs = (list: [number, number][]) => {
      const b = new Uint8Array(Math.max(2, list.length) * E.size + PAGE);
      list.forEach(([flags, id], i) => E.encode({ flags, iotlb_id: id }, b, i * E.size));
      return b;
    };
    const inv = (id: number, type: number, len: number, num: number, entries: Uint8Array | null) => {
      const r = k.invalidate(id, type, len, num, entries);
      return { done: r.done, code: r.error === undefined ? 'ok' : (r.error as { code: string }).code };
    };
    const iotlbs = (id: number, v: number[]) => v.forEach((x, i) => k.checkIotlb(id, i, x));

    expect(inv(parent, T, E.size, 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, E.size, 0, reqs([]))).toEqual({ done: 0, code: 'ok' });
    expect(inv(nested[0]!, U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, E.size, 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, E.size + 1, 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, 1, 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, PAGE + 1, 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, E.size, (1 << 19) + 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, E.size, 1, reqs([[0xffffffff, 0]]))).toEqual({ done: 0, code: 'EOPNOTSUPP' });
    expect(inv(nested[0]!, T, E.size, 1, null)).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, 0, 1, reqs([[0, 0]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, E.size, 1, reqs([[0, U.MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1]]))).toEqual({ done: 0, code: 'EINVAL' });
    expect(inv(nested[0]!, T, E.size, 2, reqs([[0, 0], [0xffffffff, 1]]))).toEqual({ done: 1, code: 'EOPNOTSUPP' });
    iotlbs(nested[0]!, [0, D, D, D]);
    expect(inv(nested[0]!, T, E.size, 2, reqs([[0, 0], [0, U.MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1]]))).toEqual({ done: 1, code: 'EINVAL' });
    iotlbs(nested[0]!, [0, D, D, D]);
    expect(inv(nested[0]!, T, E.size, 1, reqs([[0, 1]]))).toEqual({ done: 1, code: 'ok' });
    iotlbs(nested[0]!, [0, 0, D, D]);
    expect(inv(nested[0]!, T, E.size, 2, reqs([[0, 2], [0, 3]]))).toEqual({ done: 2, code: 'ok' });
    iotlbs(nested[0]!, [0, 0, 0, 0]);
    expect(inv(nested[1]!, T, E.size, 1, reqs([[U.IOMMU_TEST_INVALIDATE_FLAG_ALL, 0]]))).toEqual({ done: 1, code: 'ok' });
    iotlbs(nested[1]!, [0, 0, 0, 0]);

    // Attach, switch between nested HWPTs, then to the fault-capable one.
    k.mockDomainReplace(stdevId, nested[0]!);
    expect(errnoOf(() => k.destroy(nested[0]!))).toBe('EBUSY');
    k.mockDomainReplace(stdevId, nested[1]!);
    expect(errnoOf(() => k.destroy(nested[1]!))).toBe('EBUSY');
    k.destroy(nested[0]!);
    k.mockDomainReplace(stdevId, iopfHwpt);
    expect(errnoOf(() => k.destroy(iopfHwpt))).toBe('EBUSY');
    // test_cmd_trigger_iopf (PASID 1, routed to the RID's nested HWPT).
    k.triggerIopf(deviceId, 0x1);
    const rec = new Uint8Array(40);
    expect(k.p.read(fault.fd, rec)).toBe(40);
    expect(k.p.write(fault.fd, U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.get(rec, 'cookie'), code: 0 }))).toBe(8);

    k.mockDomainReplace(stdevId, parent);
    k.destroy(nested[1]!);
    k.destroy(iopfHwpt);
    k.mockDomainReplace(stdevId, ioasId);
    k.destroy(parent);
    k.destroy(notParent);
    k.p.close(fault.fd);
    k.destroy(fault.id);
    k.p.close(k.fd);
  });

  it('no_domain', () => {
    const { k, ioasId, stdevId, deviceId } = setup(0);
    expect(errnoOf(() => k.hwptAlloc(deviceId, ioasId, 0))).toBe('ENOENT');
    expect(errnoOf(() => k.hwptAlloc(deviceId, 0, 0, selftestData()))).toBe('ENOENT');
    expect(errnoOf(() => k.mockDomainReplace(stdevId, 0))).toBe('ENOENT');
    k.p.close(k.fd);
  });
});
