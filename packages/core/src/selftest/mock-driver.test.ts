import { describe, expect, it } from '@jest/globals';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_TEST_IOTLB_DEFAULT,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IOMMUPT_HUGE,
  MOCK_PAGE_SIZE,
  MOCK_PASID_WIDTH,
  iommu_hwpt_invalidate_selftest,
  iommu_hwpt_selftest,
  iommu_test_hw_info,
} from '@viommu/uapi';
import { IOMMU_READ, IOMMU_WRITE } from '../driver/domain.js';
import type { DriverHost, UserDataArray } from '../driver/driver.js';
import { AddressSpace } from '../host/address-space.js';
import { PhysicalMemory } from '../host/physical-memory.js';
import type { MockPagingDomain } from './mock-domain.js';
import type { MockDevice, MockNestedDomain} from './mock-driver.js';
import { mockIommu } from './mock-driver.js';

function setup() {
  const physical = new PhysicalMemory();
  const host: DriverHost = { physical, reportPageRequest: async () => 1, failPoint: () => {} };
  const driver = mockIommu();
  driver.probe(host);
  const mm = new AddressSpace(physical);
  const dev = (flags = 0) => driver.probeDevice({ name: 'mock0', rid: 0, pasidBits: 0, pri: false, ats: false, flags }) as MockDevice;
  return { driver, mm, dev };
}

const errno = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'success';
};

describe('mock devices', () => {
  it('take only the NO_DIRTY and PASID flags, and report PASID width and dirty capability from them', () => {
    const { dev } = setup();
    expect(errno(() => dev(1 << 1))).toBe('EINVAL');
    expect(dev(MOCK_FLAGS_DEVICE_PASID).maxPasidLog2).toBe(MOCK_PASID_WIDTH);
    expect(dev(0).maxPasidLog2).toBe(0);
    expect(dev(MOCK_FLAGS_DEVICE_NO_DIRTY).dirtyTracking).toBe(false);
    expect(Array.from(dev().cache)).toEqual([0xbaddad, 0xbaddad, 0xbaddad, 0xbaddad]);
  });

  it('answer hw_info with the selftest struct for DEFAULT and SELFTEST, EOPNOTSUPP otherwise', () => {
    const { driver, dev } = setup();
    const d = dev();
    const info = driver.hwInfo!(d, IOMMU_HW_INFO_TYPE_DEFAULT);
    expect(info.type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect(iommu_test_hw_info.decode(info.data)).toEqual({ flags: 0, test_reg: 0xdeadbeef });
    expect(driver.hwInfo!(d, IOMMU_HW_INFO_TYPE_SELFTEST).type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect(errno(() => driver.hwInfo!(d, IOMMU_HW_INFO_TYPE_SELFTEST + 1))).toBe('EOPNOTSUPP');
  });
});

describe('the mock paging domain', () => {
  it('maps in 2 KiB pages inside the mock aperture and translates byte-exact', () => {
    const { driver, dev } = setup();
    const dom = driver.allocPagingDomain(dev(), 0) as MockPagingDomain;
    expect(dom.geometry.pgsizeBitmap).toBe(BigInt(MOCK_PAGE_SIZE));
    const base = BigInt(MOCK_APERTURE_START);
    dom.map(base, 0x10000n, 8192n, IOMMU_READ | IOMMU_WRITE);
    expect(dom.iovaToPhys(base + 4097n)).toBe(0x11001n);
    expect(dom.iovaToPhys(base + 8192n)).toBeUndefined();
    expect(errno(() => dom.map(base - 2048n, 0n, 2048n, IOMMU_READ))).toBe('EINVAL');
    expect(errno(() => dom.map(base + 2048n, 0n, 2048n, IOMMU_READ))).toBe('EINVAL');
    expect(dom.unmap(base, 4096n)).toBe(4096n);
    expect(dom.iovaToPhys(base)).toBeUndefined();
    expect(dom.iovaToPhys(base + 4096n)).toBe(0x11000n);
  });

  it('rejects dirty tracking for a NO_DIRTY device and unknown page-table types', () => {
    const { driver, dev, mm } = setup();
    expect(errno(() => driver.allocPagingDomain(dev(MOCK_FLAGS_DEVICE_NO_DIRTY), IOMMU_HWPT_ALLOC_DIRTY_TRACKING))).toBe('EOPNOTSUPP');
    const buf = mm.alloc(8);
    mm.write(buf.addr, iommu_hwpt_selftest.encode({ pagetable_type: 7 }));
    const data = { type: IOMMU_HWPT_DATA_SELFTEST, uptr: buf.addr, len: 8, memory: mm };
    expect(errno(() => driver.allocPagingDomain(dev(), 0, data))).toBe('EOPNOTSUPP');
  });

  it('in the huge variant reports a dirty 1 MiB PTE as a whole and clears it unless asked not to', () => {
    const { driver, dev, mm } = setup();
    const buf = mm.alloc(8);
    mm.write(buf.addr, iommu_hwpt_selftest.encode({ pagetable_type: MOCK_IOMMUPT_HUGE }));
    const dom = driver.allocPagingDomain(dev(), IOMMU_HWPT_ALLOC_DIRTY_TRACKING, { type: IOMMU_HWPT_DATA_SELFTEST, uptr: buf.addr, len: 8, memory: mm }) as MockPagingDomain;
    const base = BigInt(MOCK_APERTURE_START);
    dom.map(base, 0x100000n, 2n * BigInt(MOCK_HUGE_PAGE_SIZE), IOMMU_READ | IOMMU_WRITE);
    expect(dom.setDirty(MOCK_APERTURE_START + 4096)).toBe(true);
    const seen: bigint[][] = [];
    dom.dirty!.readAndClear(base, 2n * BigInt(MOCK_HUGE_PAGE_SIZE), true, (i, l) => seen.push([i, l]));
    expect(seen).toEqual([[base, BigInt(MOCK_HUGE_PAGE_SIZE)]]);
    dom.dirty!.readAndClear(base, 2n * BigInt(MOCK_HUGE_PAGE_SIZE), false, (i, l) => seen.push([i, l]));
    dom.dirty!.readAndClear(base, 2n * BigInt(MOCK_HUGE_PAGE_SIZE), false, (i, l) => seen.push([i, l]));
    expect(seen).toHaveLength(2);
  });
});

describe('the mock nested domain', () => {
  it('starts every IOTLB slot at the data iotlb and invalidates entry by entry, reporting how many were handled', () => {
    const { driver, dev, mm } = setup();
    const d = dev();
    const parent = driver.allocPagingDomain(d, 1);
    const cfg = mm.alloc(8);
    mm.write(cfg.addr, iommu_hwpt_selftest.encode({ iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
    const nested = driver.allocNestedDomain!(d, parent, 0, { type: IOMMU_HWPT_DATA_SELFTEST, uptr: cfg.addr, len: 4, memory: mm }) as MockNestedDomain;
    expect(Array.from(nested.iotlb)).toEqual([IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT]);
    const reqs = mm.alloc(16);
    mm.write(reqs.addr, iommu_hwpt_invalidate_selftest.encode({ flags: 0, iotlb_id: 0 }));
    mm.write(reqs.addr + 8n, iommu_hwpt_invalidate_selftest.encode({ flags: 0xffffffff, iotlb_id: 1 }));
    const array: UserDataArray = { type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, uptr: reqs.addr, entryLen: 8, entryNum: 2, memory: mm };
    expect(errno(() => nested.cacheInvalidate(array))).toBe('EOPNOTSUPP');
    expect(array.entryNum).toBe(1);
    expect(Array.from(nested.iotlb)).toEqual([0, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT]);
    mm.write(reqs.addr, iommu_hwpt_invalidate_selftest.encode({ flags: 0, iotlb_id: 4 }));
    const bad: UserDataArray = { ...array, entryNum: 1 };
    expect(errno(() => nested.cacheInvalidate(bad))).toBe('EINVAL');
    expect(bad.entryNum).toBe(0);
    expect(errno(() => driver.allocNestedDomain!(d, parent, 1, { type: IOMMU_HWPT_DATA_SELFTEST, uptr: cfg.addr, len: 4, memory: mm }))).toBe('EOPNOTSUPP');
  });
});

describe('PASID attach', () => {
  it('fakes ENOMEM on the second attach to PASID 1024, as the kernel mock does to test rollback', () => {
    const { driver, dev } = setup();
    const d = dev(MOCK_FLAGS_DEVICE_PASID);
    const a = driver.allocPagingDomain(d, 8);
    const b = driver.allocPagingDomain(d, 8);
    driver.attach(d, 1024, a);
    expect(errno(() => driver.attach(d, 1024, b))).toBe('ENOMEM');
    expect(d.domains.get(1024)).toBe(a);
    driver.attach(d, 1024, b);
    expect(d.domains.get(1024)).toBe(b);
  });
});
