// TEST_F(iommufd_viommu, ...) of iommufd.c: the selftest vIOMMU, vDEVICEs, vEVENTQs, vIOMMU cache
// invalidation, HW queues and vDEVICE tombstones.
import {
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HW_QUEUE_TYPE_DEFAULT,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_APERTURE_START,
  MOCK_DEV_CACHE_ID_MAX,
  iommu_hwpt_selftest,
  iommu_viommu_invalidate_selftest,
  iommu_viommu_selftest,
  iommufd_vevent_header,
} from '@viommu/uapi';
import { iommufd_viommu } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { PAGE_SIZE, UINT32_MAX, UINT64_MAX, assertEq, at, enc, expectErrno, skip, type UserBuf } from '../utils.js';

const VEVENTQ_MAX_DEPTH = 1 << 19;

function setInv(reqs: UserBuf, i: number, flags: number, vdevId: number, cacheId: number): void {
  iommu_viommu_invalidate_selftest.encode({ flags, vdev_id: vdevId, cache_id: cacheId }, reqs.bytes, i * iommu_viommu_invalidate_selftest.size);
}

export const viommuCases: Scenario[] = [
  ...testF(iommufd_viommu, 'viommu_auto_destroy', () => {}),

  ...testF(iommufd_viommu, 'viommu_negative_tests', (self) => {
    const deviceId = self.device_id;
    if (deviceId) {
      // Negative test -- invalid hwpt (hwpt_id=0)
      self.errViommuAlloc('ENOENT', deviceId, 0, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
      // Negative test -- not a nesting parent hwpt
      const hwptId = self.testCmdHwptAlloc(deviceId, self.ioas_id, 0);
      self.errViommuAlloc('EINVAL', deviceId, hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
      self.testIoctlDestroy(hwptId);
      // Negative test -- unsupported viommu type
      self.errViommuAlloc('EOPNOTSUPP', deviceId, self.hwpt_id, 0xdead, null, 0);
      self.errDestroy('EBUSY', self.hwpt_id);
      self.errDestroy('EBUSY', self.viommu_id);
    } else {
      self.errViommuAlloc('ENOENT', self.device_id, self.hwpt_id, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
    }
  }),

  ...testF(iommufd_viommu, 'viommu_alloc_nested_iopf', (self) => {
    const data = self.put(enc(iommu_hwpt_selftest, { iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
    const dlen = iommu_hwpt_selftest.size;
    const viommuId = self.viommu_id;
    const devId = self.device_id;
    if (!devId) skip('Skipping test for variant no_viommu');
    const { faultId, faultFd } = self.testIoctlFaultAlloc();
    self.errHwptAllocIopf('ENOENT', devId, viommuId, UINT32_MAX, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
    self.errHwptAllocIopf('EOPNOTSUPP', devId, viommuId, faultId, (IOMMU_HWPT_FAULT_ID_VALID | (1 << 31)) >>> 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
    const iopfHwpt = self.testCmdHwptAllocIopf(devId, viommuId, faultId, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
    // Must allocate vdevice before attaching to a nested hwpt
    self.errMockDomainReplace('ENOENT', self.stdev_id, iopfHwpt);
    self.testCmdVdeviceAlloc(viommuId, devId, 0x99);
    self.testCmdMockDomainReplace(self.stdev_id, iopfHwpt);
    self.errDestroy('EBUSY', iopfHwpt);
    self.testCmdTriggerIopf(devId, faultFd);
    self.testCmdMockDomainReplace(self.stdev_id, self.ioas_id);
    self.testIoctlDestroy(iopfHwpt);
    self.process.close(faultFd);
    self.testIoctlDestroy(faultId);
  }),

  ...testF(iommufd_viommu, 'viommu_alloc_with_data', (self) => {
    if (!self.device_id) skip('Skipping test for variant no_viommu');
    const data = self.put(enc(iommu_viommu_selftest, { in_data: 0xbeef }));
    self.viommu_id = self.testCmdViommuAlloc(self.device_id, self.hwpt_id, IOMMU_VIOMMU_TYPE_SELFTEST, data, iommu_viommu_selftest.size);
    const d = iommu_viommu_selftest.decode(data.bytes);
    assertEq(d.in_data, d.out_data, 'out_data');
    const len = Number(d.out_mmap_length);
    const off = d.out_mmap_offset;
    // Negative mmap tests -- offset and length cannot be changed
    expectErrno('ENXIO', () => self.process.mmap(self.fd, len, off + BigInt(PAGE_SIZE)), 'mmap at offset + PAGE_SIZE');
    expectErrno('ENXIO', () => self.process.mmap(self.fd, len, off + BigInt(PAGE_SIZE * 2)), 'mmap at offset + 2 pages');
    expectErrno('ENXIO', () => self.process.mmap(self.fd, len / 2, off), 'mmap of half the length');
    expectErrno('ENXIO', () => self.process.mmap(self.fd, len * 2, off), 'mmap of twice the length');
    // Now do a correct mmap for a loopback test
    const test = self.process.mmap(self.fd, len, off);
    assertEq(d.in_data, new DataView(test.bytes.buffer, test.bytes.byteOffset).getUint32(0, true), 'loopback data in the mmap');
    // The owner of the mmap region should be blocked
    self.errDestroy('EBUSY', self.viommu_id);
    self.process.munmap(test.addr, len);
  }),

  ...testF(iommufd_viommu, 'vdevice_alloc', async (self) => {
    const viommuId = self.viommu_id;
    const devId = self.device_id;
    const seq = { prev: -1 };
    const hdrSize = iommufd_vevent_header.size;
    if (devId) {
      // Must allocate vdevice before attaching to a nested hwpt
      self.errMockDomainReplace('ENOENT', self.stdev_id, self.nested_hwpt_id);
      // Test depth lower and upper bounds (mirrors kernel cap)
      self.errVeventqAlloc('EINVAL', viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 0);
      self.errVeventqAlloc('EINVAL', viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, VEVENTQ_MAX_DEPTH + 1);
      let q = self.testCmdVeventqAlloc(viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, VEVENTQ_MAX_DEPTH);
      self.process.close(q.veventqFd);
      self.testIoctlDestroy(q.veventqId);

      // Allocate a vEVENTQ with veventq_depth=2
      q = self.testCmdVeventqAlloc(viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
      self.errVeventqAlloc('EEXIST', viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 2);

      // Invalid read counts on an empty vEVENTQ
      expectErrno('EINVAL', () => self.process.read(q.veventqFd, new Uint8Array(0)), 'read of 0 bytes');
      expectErrno('EINVAL', () => self.process.read(q.veventqFd, new Uint8Array(hdrSize - 1)), 'read shorter than a header');

      // Set vdev_id to 0x99, unset it, and set to 0x88
      let vdevId = self.testCmdVdeviceAlloc(viommuId, devId, 0x99);
      self.testCmdMockDomainReplace(self.stdev_id, self.nested_hwpt_id);
      self.testCmdTriggerVevents(devId, 1);

      // Invalid read counts on a non-empty vEVENTQ
      expectErrno('EINVAL', () => self.process.read(q.veventqFd, new Uint8Array(0)), 'read of 0 bytes');
      // header fits but the event's payload doesn't
      expectErrno('EINVAL', () => self.process.read(q.veventqFd, new Uint8Array(hdrSize)), 'read of a header only');

      await self.testCmdReadVevents(q.veventqFd, 1, 0x99, seq);
      self.errVdeviceAlloc('EEXIST', viommuId, devId, 0x99);
      self.testCmdMockDomainReplace(self.stdev_id, self.ioas_id);
      self.testIoctlDestroy(vdevId);

      // Try again with 0x88
      vdevId = self.testCmdVdeviceAlloc(viommuId, devId, 0x88);
      self.testCmdMockDomainReplace(self.stdev_id, self.nested_hwpt_id);
      // Trigger an overflow with three events
      self.testCmdTriggerVevents(devId, 3);
      await self.errReadVevents('EOVERFLOW', q.veventqFd, 3, 0x88, seq);
      // Overflow must be gone after the previous reads
      self.testCmdTriggerVevents(devId, 1);
      await self.testCmdReadVevents(q.veventqFd, 1, 0x88, seq);
      self.process.close(q.veventqFd);
      self.testCmdMockDomainReplace(self.stdev_id, self.ioas_id);
      self.testIoctlDestroy(vdevId);
      self.testIoctlDestroy(q.veventqId);
    } else {
      self.errVdeviceAlloc('ENOENT', viommuId, devId, 0x99);
    }
  }),

  ...testF(iommufd_viommu, 'vdevice_cache', (self) => {
    const viommuId = self.viommu_id;
    const devId = self.device_id;
    const il = iommu_viommu_invalidate_selftest.size;
    const reqs = self.mem(2 * il);
    const T = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
    if (!devId) skip('Skipping test for variant no_viommu');
    const vdevId = self.testCmdVdeviceAlloc(viommuId, devId, 0x99);
    self.testCmdDevCheckCacheAll(devId, IOMMU_TEST_DEV_CACHE_DEFAULT);

    // Check data_type by passing zero-length array
    assertEq(0, self.testCmdViommuInvalidate(viommuId, reqs, il, 0), 'entry_num');
    // Negative test: Invalid data_type
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, reqs, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, il, 1), 'entry_num');
    // Negative test: structure size sanity
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, reqs, T, il + 1, 1), 'entry_num');
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, reqs, T, 1, 1), 'entry_num');
    // Negative test: invalid flag is passed
    setInv(reqs, 0, 0xffffffff, 0x99, 0);
    assertEq(0, self.errViommuInvalidate('EOPNOTSUPP', viommuId, reqs, T, il, 1), 'entry_num');
    // Negative test: invalid data_uptr when array is not empty
    setInv(reqs, 0, 0, 0x99, 0);
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, null, T, il, 1), 'entry_num');
    // Negative test: invalid entry_len when array is not empty
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, reqs, T, 0, 1), 'entry_num');
    // Negative test: invalid cache_id
    setInv(reqs, 0, 0, 0x99, MOCK_DEV_CACHE_ID_MAX + 1);
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, reqs, T, il, 1), 'entry_num');
    // Negative test: invalid vdev_id
    setInv(reqs, 0, 0, 0x9, 0);
    assertEq(0, self.errViommuInvalidate('EINVAL', viommuId, reqs, T, il, 1), 'entry_num');

    const expectCaches = (c0: number, c1: number, c2: number, c3: number) => {
      self.testCmdDevCheckCache(devId, 0, c0);
      self.testCmdDevCheckCache(devId, 1, c1);
      self.testCmdDevCheckCache(devId, 2, c2);
      self.testCmdDevCheckCache(devId, 3, c3);
    };
    const D = IOMMU_TEST_DEV_CACHE_DEFAULT;
    // Invalidate the 1st cache entry but fail the 2nd request (invalid flags)
    setInv(reqs, 0, 0, 0x99, 0);
    setInv(reqs, 1, 0xffffffff, 0x99, 1);
    assertEq(1, self.errViommuInvalidate('EOPNOTSUPP', viommuId, reqs, T, il, 2), 'entry_num');
    expectCaches(0, D, D, D);
    // Invalidate the 1st cache entry but fail the 2nd request (invalid cache_id)
    setInv(reqs, 0, 0, 0x99, 0);
    setInv(reqs, 1, 0, 0x99, MOCK_DEV_CACHE_ID_MAX + 1);
    assertEq(1, self.errViommuInvalidate('EINVAL', viommuId, reqs, T, il, 2), 'entry_num');
    expectCaches(0, D, D, D);
    // Invalidate the 2nd cache entry and verify
    setInv(reqs, 0, 0, 0x99, 1);
    assertEq(1, self.testCmdViommuInvalidate(viommuId, reqs, il, 1), 'entry_num');
    expectCaches(0, 0, D, D);
    // Invalidate the 3rd and 4th cache entries and verify
    setInv(reqs, 0, 0, 0x99, 2);
    setInv(reqs, 1, 0, 0x99, 3);
    assertEq(2, self.testCmdViommuInvalidate(viommuId, reqs, il, 2), 'entry_num');
    self.testCmdDevCheckCacheAll(devId, 0);
    // Invalidate all cache entries and verify
    setInv(reqs, 0, IOMMU_TEST_INVALIDATE_FLAG_ALL, 0x99, 2);
    assertEq(1, self.testCmdViommuInvalidate(viommuId, reqs, il, 1), 'entry_num');
    self.testCmdDevCheckCacheAll(devId, 0);
    self.testIoctlDestroy(vdevId);
  }),

  ...testF(iommufd_viommu, 'hw_queue', (self) => {
    const viommuId = self.viommu_id;
    if (!viommuId) skip('Skipping test for variant no_viommu');
    const S = IOMMU_HW_QUEUE_TYPE_SELFTEST;
    let iova = MOCK_APERTURE_START;
    // Fail IOMMU_HW_QUEUE_TYPE_DEFAULT
    self.errHwQueueAlloc('EOPNOTSUPP', viommuId, IOMMU_HW_QUEUE_TYPE_DEFAULT, 0, iova, PAGE_SIZE);
    // Fail queue addr and length
    self.errHwQueueAlloc('EINVAL', viommuId, S, 0, iova, 0);
    self.errHwQueueAlloc('EOVERFLOW', viommuId, S, 0, UINT64_MAX, PAGE_SIZE);
    // Fail missing iova
    self.errHwQueueAlloc('ENOENT', viommuId, S, 0, iova, PAGE_SIZE);
    // Map iova
    iova = self.testIoctlIoasMap(self.buffer, PAGE_SIZE);
    const iova2 = self.testIoctlIoasMap(at(self.buffer, PAGE_SIZE), PAGE_SIZE);
    // Fail index=1 and =MAX; must start from index=0
    self.errHwQueueAlloc('EIO', viommuId, S, 1, iova, PAGE_SIZE);
    self.errHwQueueAlloc('EINVAL', viommuId, S, IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE_SIZE);
    // Allocate index=0, declare ownership of the iova
    const q0 = self.testCmdHwQueueAlloc(viommuId, S, 0, iova, PAGE_SIZE);
    // Fail duplicated index
    self.errHwQueueAlloc('EEXIST', viommuId, S, 0, iova, PAGE_SIZE);
    // Fail unmap, due to iova ownership
    self.errIoctlIoasUnmap('EBUSY', iova, PAGE_SIZE);
    // The 2nd page is not pinned, so it can be unmmap
    self.testIoctlIoasUnmap(iova2, PAGE_SIZE);
    // Allocate index=1, with an unaligned case
    const q1 = self.testCmdHwQueueAlloc(viommuId, S, 1, iova + PAGE_SIZE / 2, PAGE_SIZE / 2);
    // Fail to destroy, due to dependency
    self.errDestroy('EBUSY', q0);
    // Destroy in descending order
    self.testIoctlDestroy(q1);
    self.testIoctlDestroy(q0);
    // Now it can unmap the first page
    self.testIoctlIoasUnmap(iova, PAGE_SIZE);
  }),

  ...testF(iommufd_viommu, 'vdevice_tombstone', (self) => {
    const viommuId = self.viommu_id;
    const devId = self.device_id;
    if (!devId) skip('Skipping test for variant no_viommu');
    const vdevId = self.testCmdVdeviceAlloc(viommuId, devId, 0x99);
    self.testIoctlDestroy(self.stdev_id);
    self.errDestroy('ENOENT', vdevId);
  }),
];
