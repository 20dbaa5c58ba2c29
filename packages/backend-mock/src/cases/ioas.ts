// TEST_F(iommufd_ioas, ...) of iommufd.c: IOAS areas, IOVA allocation, reserved and allowed
// ranges, copies, accesses, options, nested HWPT allocation and hw_info, on every variant.
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_TEST_CMD as IOMMU_TEST_CMD_REQ,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  O_CLOEXEC,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_PAGE_SIZE,
  MOCK_PASID_WIDTH,
  iommu_hwpt_invalidate_selftest,
  iommu_hwpt_selftest,
  iommu_ioas_allow_iovas,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_iova_range,
  iommu_option,
  iommu_test_cmd_access_pages,
  iommu_test_cmd_access_rw,
  iommu_test_cmd_add_reserved,
  iommu_test_hw_info,
} from '@viommu/uapi';
import { iommufd_ioas } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { Rng } from '../rng.js';
import {
  BUFFER_SIZE,
  HUGEPAGE_SIZE,
  PAGE_SIZE,
  UINT32_MAX,
  UINT64_MAX,
  assertEq,
  assertTrue,
  at,
  big,
  enc,
  exitChild,
  expectErrno,
  forkSelf,
  requireFork,
  ffs,
  num,
  skip,
  type Self,
  type UserBuf,
} from '../utils.js';

/** Writes iommu_hwpt_invalidate_selftest entry `i` of an array in user memory. */
function setInv(reqs: UserBuf, i: number, flags: number, iotlbId: number): void {
  iommu_hwpt_invalidate_selftest.encode({ flags, iotlb_id: iotlbId }, reqs.bytes, i * iommu_hwpt_invalidate_selftest.size);
}

/** check_access_rw: reads and writes through an access at every small length around a page boundary. */
export function checkAccessRw(self: Self, fd: number, accessId: number, iova: number, defFlags: number, rng: Rng): void {
  const buffer = self.buffer;
  const tmp = self.mem(64); // uint16_t tmp[32]
  rng.fill16(buffer.bytes.subarray(0, BUFFER_SIZE));
  const cmd = enc(iommu_test_cmd_access_rw, { op: IOMMU_TEST_OP_ACCESS_RW, id: accessId, uptr: tmp.addr });
  const same = (off: number, len: number, what: string) => {
    for (let k = 0; k < len; k++) {
      if (buffer.bytes[off + k] !== tmp.bytes[k]) assertEq(buffer.bytes[off + k], tmp.bytes[k], `${what}: byte ${k} of ${len} at buffer+${off}`);
    }
  };
  for (let a = iova + PAGE_SIZE - 50; a < iova + PAGE_SIZE + 50; a++) {
    iommu_test_cmd_access_rw.set(cmd, 'iova', BigInt(a));
    for (let length = 1; length < 64; length++) {
      iommu_test_cmd_access_rw.set(cmd, 'length', BigInt(length));
      iommu_test_cmd_access_rw.set(cmd, 'flags', defFlags);
      self.process.ioctl(fd, IOMMU_TEST_CMD_REQ, cmd);
      same(a - iova, length, 'ACCESS_RW read');
      rng.fill16(tmp.bytes.subarray(0, 64));
      iommu_test_cmd_access_rw.set(cmd, 'flags', defFlags | MOCK_ACCESS_RW_WRITE);
      self.process.ioctl(fd, IOMMU_TEST_CMD_REQ, cmd);
      same(a - iova, length, 'ACCESS_RW write');
    }
  }
  // Multi-page test
  const tmp2 = self.mem(BUFFER_SIZE);
  iommu_test_cmd_access_rw.set(cmd, 'iova', BigInt(iova));
  iommu_test_cmd_access_rw.set(cmd, 'length', BigInt(BUFFER_SIZE));
  iommu_test_cmd_access_rw.set(cmd, 'flags', defFlags);
  iommu_test_cmd_access_rw.set(cmd, 'uptr', tmp2.addr);
  self.process.ioctl(fd, IOMMU_TEST_CMD_REQ, cmd);
  for (let k = 0; k < BUFFER_SIZE; k++) {
    if (buffer.bytes[k] !== tmp2.bytes[k]) assertEq(buffer.bytes[k], tmp2.bytes[k], `multi-page ACCESS_RW byte ${k}`);
  }
  self.process.memory.free(tmp2.addr);
  self.process.memory.free(tmp.addr);
}

function addReserved(self: Self, start: number | bigint, length: number | bigint): Uint8Array {
  return enc(iommu_test_cmd_add_reserved, { op: IOMMU_TEST_OP_ADD_RESERVED, id: self.ioas_id, start, length });
}

export const ioasCases: Scenario[] = [
  ...testF(iommufd_ioas, 'ioas_auto_destroy', () => {}),

  ...testF(iommufd_ioas, 'ioas_destroy', (self) => {
    if (self.stdev_id) {
      // IOAS cannot be freed while a device has a HWPT using it
      self.errDestroy('EBUSY', self.ioas_id);
    } else {
      // Can allocate and manually free an IOAS table
      self.testIoctlDestroy(self.ioas_id);
    }
  }),

  ...testF(iommufd_ioas, 'alloc_hwpt_nested', (self) => {
    const minDataLen = 4; // offsetofend(struct iommu_hwpt_selftest, iotlb)
    const data = self.put(enc(iommu_hwpt_selftest, { iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
    const dlen = iommu_hwpt_selftest.size;
    const invReqs = self.mem(2 * iommu_hwpt_invalidate_selftest.size);
    const il = iommu_hwpt_invalidate_selftest.size;
    const nested: [number, number] = [0, 0];
    let parent = 0;

    if (self.device_id) {
      // Negative tests
      self.errHwptAlloc('ENOENT', self.ioas_id, self.device_id, 0);
      self.errHwptAlloc('EINVAL', self.device_id, self.device_id, 0);
      self.errHwptAlloc('EOPNOTSUPP', self.device_id, self.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID);

      parent = self.testCmdHwptAlloc(self.device_id, self.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT);
      const parentNotWork = self.testCmdHwptAlloc(self.device_id, self.ioas_id, 0);

      // Negative nested tests
      self.errHwptAllocNested('EINVAL', self.device_id, parent, 0, IOMMU_HWPT_DATA_NONE, data, dlen);
      self.errHwptAllocNested('EOPNOTSUPP', self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST + 1, data, dlen);
      self.errHwptAllocNested('EINVAL', self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST, data, minDataLen - 1);
      self.errHwptAllocNested('EFAULT', self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST, null, dlen);
      self.errHwptAllocNested('EOPNOTSUPP', self.device_id, parent, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      self.errHwptAllocNested('EINVAL', self.device_id, parentNotWork, 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);

      // Allocate two nested hwpts sharing one common parent hwpt
      const { faultId, faultFd } = self.testIoctlFaultAlloc();
      nested[0] = self.testCmdHwptAllocNested(self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      nested[1] = self.testCmdHwptAllocNested(self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      self.errHwptAllocIopf('ENOENT', self.device_id, parent, UINT32_MAX, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      const iopfHwpt = self.testCmdHwptAllocIopf(self.device_id, parent, faultId, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      self.testCmdHwptCheckIotlbAll(nested[0], IOMMU_TEST_IOTLB_DEFAULT);
      self.testCmdHwptCheckIotlbAll(nested[1], IOMMU_TEST_IOTLB_DEFAULT);

      // Negative test: a nested hwpt on top of a nested hwpt
      self.errHwptAllocNested('EINVAL', self.device_id, nested[0], 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      // Negative test: parent hwpt now cannot be freed
      self.errDestroy('EBUSY', parent);

      const T = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
      // hwpt_invalidate does not support a parent hwpt
      assertEq(0, self.errHwptInvalidate('EINVAL', parent, invReqs, T, il, 1), 'entry_num');
      // Check data_type by passing zero-length array
      assertEq(0, self.testCmdHwptInvalidate(nested[0], invReqs, T, il, 0), 'entry_num');
      // Negative test: Invalid data_type
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, il, 1), 'entry_num');
      // Negative test: structure size sanity
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, il + 1, 1), 'entry_num');
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, 1, 1), 'entry_num');
      // Negative test: entry_len is bounded by PAGE_SIZE
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, PAGE_SIZE + 1, 1), 'entry_num');
      // Negative test: entry_num is bounded
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, il, (1 << 19) + 1), 'entry_num');
      // Negative test: invalid flag is passed
      setInv(invReqs, 0, 0xffffffff, 0);
      assertEq(0, self.errHwptInvalidate('EOPNOTSUPP', nested[0], invReqs, T, il, 1), 'entry_num');
      // Negative test: invalid data_uptr when array is not empty
      setInv(invReqs, 0, 0, 0);
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], null, T, il, 1), 'entry_num');
      // Negative test: invalid entry_len when array is not empty
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, 0, 1), 'entry_num');
      // Negative test: invalid iotlb_id
      setInv(invReqs, 0, 0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1);
      assertEq(0, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, il, 1), 'entry_num');

      // Invalidate the 1st iotlb entry but fail the 2nd request (invalid flags)
      setInv(invReqs, 0, 0, 0);
      setInv(invReqs, 1, 0xffffffff, 1);
      assertEq(1, self.errHwptInvalidate('EOPNOTSUPP', nested[0], invReqs, T, il, 2), 'entry_num');
      self.testCmdHwptCheckIotlb(nested[0], 0, 0);
      self.testCmdHwptCheckIotlb(nested[0], 1, IOMMU_TEST_IOTLB_DEFAULT);
      self.testCmdHwptCheckIotlb(nested[0], 2, IOMMU_TEST_IOTLB_DEFAULT);
      self.testCmdHwptCheckIotlb(nested[0], 3, IOMMU_TEST_IOTLB_DEFAULT);

      // Invalidate the 1st iotlb entry but fail the 2nd request (invalid iotlb_id)
      setInv(invReqs, 0, 0, 0);
      setInv(invReqs, 1, 0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1);
      assertEq(1, self.errHwptInvalidate('EINVAL', nested[0], invReqs, T, il, 2), 'entry_num');
      self.testCmdHwptCheckIotlb(nested[0], 0, 0);
      self.testCmdHwptCheckIotlb(nested[0], 1, IOMMU_TEST_IOTLB_DEFAULT);
      self.testCmdHwptCheckIotlb(nested[0], 2, IOMMU_TEST_IOTLB_DEFAULT);
      self.testCmdHwptCheckIotlb(nested[0], 3, IOMMU_TEST_IOTLB_DEFAULT);

      // Invalidate the 2nd iotlb entry and verify
      setInv(invReqs, 0, 0, 1);
      assertEq(1, self.testCmdHwptInvalidate(nested[0], invReqs, T, il, 1), 'entry_num');
      self.testCmdHwptCheckIotlb(nested[0], 0, 0);
      self.testCmdHwptCheckIotlb(nested[0], 1, 0);
      self.testCmdHwptCheckIotlb(nested[0], 2, IOMMU_TEST_IOTLB_DEFAULT);
      self.testCmdHwptCheckIotlb(nested[0], 3, IOMMU_TEST_IOTLB_DEFAULT);

      // Invalidate the 3rd and 4th iotlb entries and verify
      setInv(invReqs, 0, 0, 2);
      setInv(invReqs, 1, 0, 3);
      assertEq(2, self.testCmdHwptInvalidate(nested[0], invReqs, T, il, 2), 'entry_num');
      self.testCmdHwptCheckIotlbAll(nested[0], 0);

      // Invalidate all iotlb entries for nested[1] and verify
      setInv(invReqs, 0, IOMMU_TEST_INVALIDATE_FLAG_ALL, 3);
      assertEq(1, self.testCmdHwptInvalidate(nested[1], invReqs, T, il, 1), 'entry_num');
      self.testCmdHwptCheckIotlbAll(nested[1], 0);

      // Attach device to nested[0] that then will be busy
      self.testCmdMockDomainReplace(self.stdev_id, nested[0]);
      self.errDestroy('EBUSY', nested[0]);
      // Switch from nested[0] to nested[1]
      self.testCmdMockDomainReplace(self.stdev_id, nested[1]);
      self.errDestroy('EBUSY', nested[1]);
      self.testIoctlDestroy(nested[0]);
      // Switch from nested[1] to the iopf hwpt
      self.testCmdMockDomainReplace(self.stdev_id, iopfHwpt);
      self.errDestroy('EBUSY', iopfHwpt);
      // Trigger an IOPF on the device
      self.testCmdTriggerIopf(self.device_id, faultFd);
      // Detach from nested[1] and destroy it
      self.testCmdMockDomainReplace(self.stdev_id, parent);
      self.testIoctlDestroy(nested[1]);
      self.testIoctlDestroy(iopfHwpt);
      // Detach from the parent hw_pagetable and destroy it
      self.testCmdMockDomainReplace(self.stdev_id, self.ioas_id);
      self.testIoctlDestroy(parent);
      self.testIoctlDestroy(parentNotWork);
      self.process.close(faultFd);
      self.testIoctlDestroy(faultId);
    } else {
      self.errHwptAlloc('ENOENT', self.device_id, self.ioas_id, 0);
      self.errHwptAllocNested('ENOENT', self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      self.errHwptAllocNested('ENOENT', self.device_id, parent, 0, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
      self.errMockDomainReplace('ENOENT', self.stdev_id, nested[0]);
      self.errMockDomainReplace('ENOENT', self.stdev_id, nested[1]);
    }
  }),

  ...testF(iommufd_ioas, 'hwpt_attach', (self) => {
    // Create a device attached directly to a hwpt
    if (self.stdev_id) self.testCmdMockDomain(self.hwpt_id);
    else self.errMockDomain('ENOENT', self.hwpt_id);
  }),

  ...testF(iommufd_ioas, 'ioas_area_destroy', (self) => {
    // Adding an area does not change ability to destroy
    self.testIoctlIoasMapFixed(self.buffer, PAGE_SIZE, self.base_iova);
    if (self.stdev_id) self.errDestroy('EBUSY', self.ioas_id);
    else self.testIoctlDestroy(self.ioas_id);
  }),

  ...testF(iommufd_ioas, 'ioas_area_auto_destroy', (self) => {
    // Can allocate and automatically free an IOAS table with many areas
    for (let i = 0; i !== 10; i++) self.testIoctlIoasMapFixed(self.buffer, PAGE_SIZE, self.base_iova + i * PAGE_SIZE);
  }),

  ...testF(iommufd_ioas, 'get_hw_info', (self, variant) => {
    const exact = self.mem(iommu_test_hw_info.size);
    const larger = self.mem(iommu_test_hw_info.size + 8);
    const el = iommu_test_hw_info.size;
    if (self.device_id) {
      // Provide a zero-size user_buffer
      self.testCmdGetHwInfo(self.device_id, IOMMU_HW_INFO_TYPE_DEFAULT, null, 0);
      // Provide a user_buffer with exact size
      self.testCmdGetHwInfo(self.device_id, IOMMU_HW_INFO_TYPE_DEFAULT, exact, el);
      // Request for a wrong data_type, and a correct one
      self.errGetHwInfo('EOPNOTSUPP', self.device_id, (IOMMU_HW_INFO_TYPE_SELFTEST + 1) >>> 0, exact, el);
      self.testCmdGetHwInfo(self.device_id, IOMMU_HW_INFO_TYPE_SELFTEST, exact, el);
      // A larger buffer: the kernel zeroes the trailing bytes
      larger.bytes.fill(0xa5, 0, el + 8);
      self.testCmdGetHwInfo(self.device_id, IOMMU_HW_INFO_TYPE_DEFAULT, larger, el + 8);
      // A smaller buffer: the fields within the size still get updated
      self.testCmdGetHwInfo(self.device_id, IOMMU_HW_INFO_TYPE_DEFAULT, exact, 4);
      assertEq(0, self.testCmdGetHwInfoPasid(self.device_id), 'max_pasid');
      if (variant.pasid_capable) assertEq(MOCK_PASID_WIDTH, self.testCmdGetHwInfoPasid(self.device_pasid_id), 'max_pasid');
    } else {
      self.errGetHwInfo('ENOENT', self.device_id, IOMMU_HW_INFO_TYPE_DEFAULT, exact, el);
      self.errGetHwInfo('ENOENT', self.device_id, IOMMU_HW_INFO_TYPE_DEFAULT, larger, el + 8);
    }
  }),

  ...testF(iommufd_ioas, 'area', (self) => {
    const b = self.base_iova;
    // Unmap fails if nothing is mapped
    for (let i = 0; i !== 10; i++) self.errIoctlIoasUnmap('ENOENT', i * PAGE_SIZE, PAGE_SIZE);
    // Unmap works
    for (let i = 0; i !== 10; i++) self.testIoctlIoasMapFixed(self.buffer, PAGE_SIZE, b + i * PAGE_SIZE);
    for (let i = 0; i !== 10; i++) self.testIoctlIoasUnmap(b + i * PAGE_SIZE, PAGE_SIZE);
    // Split fails
    self.testIoctlIoasMapFixed(self.buffer, PAGE_SIZE * 2, b + 16 * PAGE_SIZE);
    self.errIoctlIoasUnmap('ENOENT', b + 16 * PAGE_SIZE, PAGE_SIZE);
    self.errIoctlIoasUnmap('ENOENT', b + 17 * PAGE_SIZE, PAGE_SIZE);
    // Over map fails
    self.errIoctlIoasMapFixed('EEXIST', self.buffer, PAGE_SIZE * 2, b + 16 * PAGE_SIZE);
    self.errIoctlIoasMapFixed('EEXIST', self.buffer, PAGE_SIZE, b + 16 * PAGE_SIZE);
    self.errIoctlIoasMapFixed('EEXIST', self.buffer, PAGE_SIZE, b + 17 * PAGE_SIZE);
    self.errIoctlIoasMapFixed('EEXIST', self.buffer, PAGE_SIZE * 2, b + 15 * PAGE_SIZE);
    self.errIoctlIoasMapFixed('EEXIST', self.buffer, PAGE_SIZE * 3, b + 15 * PAGE_SIZE);
    // unmap all works
    self.testIoctlIoasUnmap(0, UINT64_MAX);
    // Unmap all succeeds on an empty IOAS
    self.testIoctlIoasUnmap(0, UINT64_MAX);
  }),

  ...testF(iommufd_ioas, 'unmap_fully_contained_areas', (self) => {
    // Give no_domain some space to rewind base_iova
    self.base_iova += 4 * PAGE_SIZE;
    const b = self.base_iova;
    for (let i = 0; i !== 4; i++) self.testIoctlIoasMapFixed(self.buffer, 8 * PAGE_SIZE, b + i * 16 * PAGE_SIZE);
    // Unmap not fully contained area doesn't work
    self.errIoctlIoasUnmap('ENOENT', b - 4 * PAGE_SIZE, 8 * PAGE_SIZE);
    self.errIoctlIoasUnmap('ENOENT', b + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE - 4 * PAGE_SIZE, 8 * PAGE_SIZE);
    // Unmap fully contained areas works
    const unmapped = self._ioasUnmap(self.ioas_id, b - 4 * PAGE_SIZE, 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE + 4 * PAGE_SIZE);
    assertEq(32 * PAGE_SIZE, unmapped, 'unmapped length');
  }),

  ...testF(iommufd_ioas, 'area_auto_iova', (self) => {
    const reserved = addReserved(self, PAGE_SIZE * 4, PAGE_SIZE * 100);
    const ranges = self.mem(iommu_iova_range.size);
    const allow = enc(iommu_ioas_allow_iovas, { ioas_id: self.ioas_id, num_iovas: 1, allowed_iovas: ranges.addr });
    const setRange = (start: number, last: number) => iommu_iova_range.encode({ start: BigInt(start), last: BigInt(last) }, ranges.bytes);
    const iovas: number[] = [];
    const aligned = (iova: number, length: number) => assertEq(0, iova % 2 ** (ffs(length) - 1), `IOVA 0x${iova.toString(16)} alignment for length ${length}`);

    // Simple 4k pages
    for (let i = 0; i !== 10; i++) iovas[i] = self.testIoctlIoasMap(self.buffer, PAGE_SIZE);
    for (let i = 0; i !== 10; i++) self.testIoctlIoasUnmap(iovas[i]!, PAGE_SIZE);

    // Kernel automatically aligns IOVAs properly
    for (let i = 0; i !== 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      iovas[i] = self.stdev_id ? self.testIoctlIoasMap(self.buffer, length) : self.testIoctlIoasMap(2 ** 31, length);
      aligned(iovas[i]!, length);
    }
    for (let i = 0; i !== 10; i++) self.testIoctlIoasUnmap(iovas[i]!, PAGE_SIZE * (i + 1));

    // Avoids a reserved region
    self.testCmd(reserved);
    const rs = PAGE_SIZE * 4;
    const rl = PAGE_SIZE * 100;
    for (let i = 0; i !== 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      iovas[i] = self.testIoctlIoasMap(self.buffer, length);
      aligned(iovas[i]!, length);
      assertEq(false, iovas[i]! > rs && iovas[i]! < rs + rl, `IOVA 0x${iovas[i]!.toString(16)} inside the reserved region`);
    }
    for (let i = 0; i !== 10; i++) self.testIoctlIoasUnmap(iovas[i]!, PAGE_SIZE * (i + 1));

    // Allowed region intersects with a reserved region
    setRange(PAGE_SIZE, PAGE_SIZE * 600);
    expectErrno('EADDRINUSE', () => self.ioctl(IOMMU_IOAS_ALLOW_IOVAS, allow), 'ALLOW_IOVAS over a reserved region');

    // Allocate from an allowed region
    const [start, last] = self.stdev_id ? [MOCK_APERTURE_START + PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE * 600 - 1] : [PAGE_SIZE * 200, PAGE_SIZE * 600 - 1];
    setRange(start, last);
    self.ioctl(IOMMU_IOAS_ALLOW_IOVAS, allow);
    for (let i = 0; i !== 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      const iova = (iovas[i] = self.testIoctlIoasMap(self.buffer, length));
      aligned(iova, length);
      assertTrue(iova >= start && iova <= last && iova + length > start && iova + length <= last + 1, `IOVA 0x${iova.toString(16)} outside the allowed range`);
    }
    for (let i = 0; i !== 10; i++) self.testIoctlIoasUnmap(iovas[i]!, PAGE_SIZE * (i + 1));
  }),

  ...testF(iommufd_ioas, 'reserved_overflow', (self) => {
    // https://lore.kernel.org/r/685af644.a00a0220.2e5631.0094.GAE@google.com (4K pages)
    self.testCmd(addReserved(self, 6, 0xffffffffffff8001n));
    self.errIoctlIoasMap('ENOSPC', self.buffer, 0x5000);
  }),

  ...testF(iommufd_ioas, 'area_allowed', (self) => {
    const ranges = self.mem(iommu_iova_range.size);
    const allow = enc(iommu_ioas_allow_iovas, { ioas_id: self.ioas_id, num_iovas: 1, allowed_iovas: ranges.addr });
    // Reserved intersects an allowed
    const start = self.base_iova;
    iommu_iova_range.encode({ start: BigInt(start), last: BigInt(start + PAGE_SIZE * 600) }, ranges.bytes);
    self.ioctl(IOMMU_IOAS_ALLOW_IOVAS, allow);
    const reserved = addReserved(self, start + PAGE_SIZE, PAGE_SIZE);
    expectErrno('EADDRINUSE', () => self.testCmd(reserved), 'ADD_RESERVED inside an allowed range');
    iommu_ioas_allow_iovas.set(allow, 'num_iovas', 0);
    self.ioctl(IOMMU_IOAS_ALLOW_IOVAS, allow);
    // Allowed intersects a reserved
    self.testCmd(reserved);
    iommu_ioas_allow_iovas.set(allow, 'num_iovas', 1);
    expectErrno('EADDRINUSE', () => self.ioctl(IOMMU_IOAS_ALLOW_IOVAS, allow), 'ALLOW_IOVAS over a reserved range');
  }),

  ...testF(iommufd_ioas, 'copy_area', (self) => {
    const copy = enc(iommu_ioas_copy, {
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      dst_ioas_id: self.ioas_id,
      src_ioas_id: self.ioas_id,
      length: PAGE_SIZE,
    });
    self.testIoctlIoasMapFixed(self.buffer, PAGE_SIZE, self.base_iova);
    // Copy inside a single IOAS
    iommu_ioas_copy.set(copy, 'src_iova', BigInt(self.base_iova));
    iommu_ioas_copy.set(copy, 'dst_iova', BigInt(self.base_iova + PAGE_SIZE));
    self.ioctl(IOMMU_IOAS_COPY, copy);
    // Copy between IOAS's
    iommu_ioas_copy.set(copy, 'dst_iova', 0n);
    iommu_ioas_copy.set(copy, 'dst_ioas_id', self.testIoctlIoasAlloc());
    self.ioctl(IOMMU_IOAS_COPY, copy);
  }),

  ...testF(iommufd_ioas, 'iova_ranges', (self) => {
    const ranges = self.buffer;
    const cap = BUFFER_SIZE / iommu_iova_range.size;
    const cmd = enc(iommu_ioas_iova_ranges, { ioas_id: self.ioas_id, num_iovas: cap, allowed_iovas: ranges.addr });
    const r = (i: number, f: 'start' | 'last') => iommu_iova_range.get(ranges.bytes, f, i * iommu_iova_range.size);
    const n = () => iommu_ioas_iova_ranges.get(cmd, 'num_iovas');

    // Range can be read
    self.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
    assertEq(1, n(), 'num_iovas');
    if (!self.stdev_id) {
      assertEq(0n, r(0, 'start'), 'ranges[0].start');
      assertEq(UINT64_MAX, r(0, 'last'), 'ranges[0].last');
      assertEq(1n, big(iommu_ioas_iova_ranges, cmd, 'out_iova_alignment'), 'out_iova_alignment');
    } else {
      assertEq(BigInt(MOCK_APERTURE_START), r(0, 'start'), 'ranges[0].start');
      assertEq(BigInt(MOCK_APERTURE_LAST), r(0, 'last'), 'ranges[0].last');
      assertEq(BigInt(MOCK_PAGE_SIZE), big(iommu_ioas_iova_ranges, cmd, 'out_iova_alignment'), 'out_iova_alignment');
    }

    // Buffer too small
    ranges.bytes.fill(0, 0, BUFFER_SIZE);
    iommu_ioas_iova_ranges.set(cmd, 'num_iovas', 0);
    expectErrno('EMSGSIZE', () => self.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd), 'IOVA_RANGES with num_iovas 0');
    assertEq(1, n(), 'num_iovas');
    assertEq(0n, r(0, 'start'), 'ranges[0].start untouched');
    assertEq(0n, r(0, 'last'), 'ranges[0].last untouched');

    // 2 ranges
    self.testCmd(addReserved(self, PAGE_SIZE, PAGE_SIZE));
    iommu_ioas_iova_ranges.set(cmd, 'num_iovas', cap);
    self.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
    if (!self.stdev_id) {
      assertEq(2, n(), 'num_iovas');
      assertEq(0n, r(0, 'start'), 'ranges[0].start');
      assertEq(BigInt(PAGE_SIZE - 1), r(0, 'last'), 'ranges[0].last');
      assertEq(BigInt(PAGE_SIZE * 2), r(1, 'start'), 'ranges[1].start');
      assertEq(UINT64_MAX, r(1, 'last'), 'ranges[1].last');
    } else {
      assertEq(1, n(), 'num_iovas');
      assertEq(BigInt(MOCK_APERTURE_START), r(0, 'start'), 'ranges[0].start');
      assertEq(BigInt(MOCK_APERTURE_LAST), r(0, 'last'), 'ranges[0].last');
    }

    // Buffer too small
    ranges.bytes.fill(0, 0, BUFFER_SIZE);
    iommu_ioas_iova_ranges.set(cmd, 'num_iovas', 1);
    if (!self.stdev_id) {
      expectErrno('EMSGSIZE', () => self.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd), 'IOVA_RANGES with num_iovas 1');
      assertEq(2, n(), 'num_iovas');
      assertEq(0n, r(0, 'start'), 'ranges[0].start');
      assertEq(BigInt(PAGE_SIZE - 1), r(0, 'last'), 'ranges[0].last');
    } else {
      self.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
      assertEq(1, n(), 'num_iovas');
      assertEq(BigInt(MOCK_APERTURE_START), r(0, 'start'), 'ranges[0].start');
      assertEq(BigInt(MOCK_APERTURE_LAST), r(0, 'last'), 'ranges[0].last');
    }
    assertEq(0n, r(1, 'start'), 'ranges[1].start untouched');
    assertEq(0n, r(1, 'last'), 'ranges[1].last untouched');
  }),

  ...testF(iommufd_ioas, 'access_domain_destory', (self) => {
    const bufSize = 2 * HUGEPAGE_SIZE;
    const buf = self.mmapAligned(bufSize, HUGEPAGE_SIZE);
    const cmd = enc(iommu_test_cmd_access_pages, { op: IOMMU_TEST_OP_ACCESS_PAGES, iova: self.base_iova + PAGE_SIZE, length: PAGE_SIZE });
    self.testIoctlIoasMapFixed(buf, bufSize, self.base_iova);
    const accessId = self.testCmdCreateAccess(self.ioas_id, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    iommu_test_cmd_access_pages.set(cmd, 'id', accessId);
    iommu_test_cmd_access_pages.set(cmd, 'uptr', buf.addr + BigInt(PAGE_SIZE));
    self.testCmd(cmd);
    // Causes a complicated unpin across a huge page boundary
    if (self.stdev_id) self.testIoctlDestroy(self.stdev_id);
    self.testCmdDestroyAccessPages(accessId, num(iommu_test_cmd_access_pages, cmd, 'out_access_pages_id'));
    self.testCmdDestroyAccess(accessId);
  }),

  ...testF(iommufd_ioas, 'access_pin', (self) => {
    const cmd = enc(iommu_test_cmd_access_pages, { op: IOMMU_TEST_OP_ACCESS_PAGES, iova: MOCK_APERTURE_START, length: BUFFER_SIZE, uptr: self.buffer.addr });
    const accessId = self.testCmdCreateAccess(self.ioas_id, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    iommu_test_cmd_access_pages.set(cmd, 'id', accessId);
    const pagesId = () => num(iommu_test_cmd_access_pages, cmd, 'out_access_pages_id');
    for (let npages = 1; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
      iommu_test_cmd_access_pages.set(cmd, 'length', BigInt(npages * PAGE_SIZE));
      // Single map/unmap
      self.testIoctlIoasMapFixed(self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      self.testCmd(cmd);
      self.testCmdDestroyAccessPages(accessId, pagesId());
      // Double user
      self.testCmd(cmd);
      const first = pagesId();
      self.testCmd(cmd);
      self.testCmdDestroyAccessPages(accessId, pagesId());
      self.testCmdDestroyAccessPages(accessId, first);
      // Add/remove a domain with a user
      self.testCmd(cmd);
      const d = self.testCmdMockDomain(self.ioas_id);
      self.checkMap(d.hwptId, MOCK_APERTURE_START, BUFFER_SIZE, self.buffer);
      self.testIoctlDestroy(d.stdevId);
      self.testCmdDestroyAccessPages(accessId, pagesId());
      self.testIoctlIoasUnmap(MOCK_APERTURE_START, BUFFER_SIZE);
    }
    self.testCmdDestroyAccess(accessId);
  }),

  ...testF(iommufd_ioas, 'access_pin_unmap', (self) => {
    const cmd = enc(iommu_test_cmd_access_pages, { op: IOMMU_TEST_OP_ACCESS_PAGES, iova: MOCK_APERTURE_START, length: BUFFER_SIZE, uptr: self.buffer.addr });
    const accessId = self.testCmdCreateAccess(self.ioas_id, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    iommu_test_cmd_access_pages.set(cmd, 'id', accessId);
    self.testIoctlIoasMapFixed(self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    self.testCmd(cmd);
    // Trigger the unmap op
    self.testIoctlIoasUnmap(MOCK_APERTURE_START, BUFFER_SIZE);
    // kernel removed the item for us
    self.errDestroyAccessPages('ENOENT', accessId, num(iommu_test_cmd_access_pages, cmd, 'out_access_pages_id'));
  }),

  ...testF(iommufd_ioas, 'access_rw', (self) => {
    const rng = new Rng(1);
    const accessId = self.testCmdCreateAccess(self.ioas_id, 0);
    const iova = self.testIoctlIoasMap(self.buffer, BUFFER_SIZE);
    checkAccessRw(self, self.fd, accessId, iova, 0, rng);
    checkAccessRw(self, self.fd, accessId, iova, MOCK_ACCESS_RW_SLOW_PATH, rng);
    self.testIoctlIoasUnmap(iova, BUFFER_SIZE);
    self.testCmdDestroyAccess(accessId);
  }),

  ...testF(iommufd_ioas, 'access_rw_unaligned', (self) => {
    const accessId = self.testCmdCreateAccess(self.ioas_id, 0);
    // Unaligned pages
    const iova = self.base_iova + MOCK_PAGE_SIZE;
    self.testIoctlIoasMapFixed(self.buffer, BUFFER_SIZE, iova);
    checkAccessRw(self, self.fd, accessId, iova, 0, new Rng(2));
    self.testIoctlIoasUnmap(iova, BUFFER_SIZE);
    self.testCmdDestroyAccess(accessId);
  }),

  ...testF(iommufd_ioas, 'fork_gone', (self) => {
    requireFork(self.process);
    const accessId = self.testCmdCreateAccess(self.ioas_id, 0);
    // Create a mapping with a different mm
    const child = forkSelf(self);
    try {
      child.testIoctlIoasMapFixed(self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    } finally {
      exitChild(child);
    }
    if (self.stdev_id) {
      // A domain already existed, so everything was pinned within the fork: this copies from one
      // domain to another.
      self.testCmdMockDomain(self.ioas_id);
      checkAccessRw(self, self.fd, accessId, MOCK_APERTURE_START, 0, new Rng(3));
    } else {
      // Otherwise pages must be pinned now, which cannot happen since the fork is gone.
      self.errMockDomain('EFAULT', self.ioas_id);
    }
    self.testCmdDestroyAccess(accessId);
  }),

  ...testF(iommufd_ioas, 'fork_present', (self) => {
    const p = self.process;
    requireFork(p);
    if (!p.pipe || !p.eventfd) skip('needs pipe2 and eventfd, which this target does not offer (optional in the Process contract)');
    const accessId = self.testCmdCreateAccess(self.ioas_id, 0);
    const [pipeRead, pipeWrite] = p.pipe!(O_CLOEXEC);
    const efd = p.eventfd!(0, O_CLOEXEC); // EFD_CLOEXEC == O_CLOEXEC
    assertTrue(efd !== -1, 'eventfd');

    // Create a mapping with a different mm. Nothing runs concurrently here, so the child's code
    // runs in two steps, up to where it would block and after the parent has unblocked it.
    const child = forkSelf(self);
    const cp = child.process;
    try {
      cp.close(pipeWrite);
      child.testIoctlIoasMapFixed(self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      const one = new Uint8Array(8);
      new DataView(one.buffer).setBigUint64(0, 1n, true);
      // (In C a short write makes the child exit(100) and the parent wait forever; here it fails the case.)
      assertEq(8, cp.write(efd, one), 'child write(efd)');

      // The parent, once the child has mapped
      p.close(pipeRead);
      const tmp = new Uint8Array(8);
      assertEq(8, p.read(efd, tmp), 'read(efd)');

      // Read pages from the remote process
      self.testCmdMockDomain(self.ioas_id);
      checkAccessRw(self, self.fd, accessId, MOCK_APERTURE_START, 0, new Rng(4));

      p.close(pipeWrite);
      // The child again: its read sees end of file now that every write end is closed, so it
      // exits (100, as in C, where nothing checks the status).
      assertEq(0, cp.read(pipeRead, new Uint8Array(1)), 'child read(pipe) at end of file');
    } finally {
      exitChild(child); // the parent's waitpid
    }
    self.testCmdDestroyAccess(accessId);
  }),

  ...testF(iommufd_ioas, 'ioas_option_huge_pages', (self) => {
    const cmd = enc(iommu_option, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET, val64: 3, object_id: self.ioas_id });
    const set = (op: number, v: number) => {
      iommu_option.set(cmd, 'op', op);
      iommu_option.set(cmd, 'val64', BigInt(v));
    };
    self.ioctl(IOMMU_OPTION, cmd);
    assertEq(1n, iommu_option.get(cmd, 'val64'), 'HUGE_PAGES');
    set(IOMMU_OPTION_OP_SET, 0);
    self.ioctl(IOMMU_OPTION, cmd);
    set(IOMMU_OPTION_OP_GET, 3);
    self.ioctl(IOMMU_OPTION, cmd);
    assertEq(0n, iommu_option.get(cmd, 'val64'), 'HUGE_PAGES');
    set(IOMMU_OPTION_OP_SET, 2);
    expectErrno('EINVAL', () => self.ioctl(IOMMU_OPTION, cmd), 'HUGE_PAGES=2');
    set(IOMMU_OPTION_OP_SET, 1);
    self.ioctl(IOMMU_OPTION, cmd);
  }),

  ...testF(iommufd_ioas, 'ioas_iova_alloc', (self, variant) => {
    for (let length = 1; length !== PAGE_SIZE * 2; length++) {
      if (variant.mock_domains && length % MOCK_PAGE_SIZE) {
        self.errIoctlIoasMap('EINVAL', self.buffer, length);
      } else {
        const iova = self.testIoctlIoasMap(self.buffer, length);
        self.testIoctlIoasUnmap(iova, length);
      }
    }
  }),

  ...testF(iommufd_ioas, 'ioas_align_change', (self, variant) => {
    // 0 means everything must be aligned to PAGE_SIZE
    const cmd = enc(iommu_option, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, object_id: self.ioas_id, val64: 0 });
    // The alignment cannot be upgraded through OPTION_HUGE_PAGES with a domain and a map present.
    if (variant.mock_domains) return;
    // We can upgrade to PAGE_SIZE alignment when things are aligned right
    self.testIoctlIoasMapFixed(self.buffer, PAGE_SIZE, MOCK_APERTURE_START);
    self.ioctl(IOMMU_OPTION, cmd);
    // Misalignment is rejected at map time
    self.errIoctlIoasMapFixed('EINVAL', at(self.buffer, MOCK_PAGE_SIZE), PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
    self.ioctl(IOMMU_OPTION, cmd);
    // Reduce alignment
    iommu_option.set(cmd, 'val64', 1n);
    self.ioctl(IOMMU_OPTION, cmd);
    // Confirm misalignment is rejected during alignment upgrade
    self.testIoctlIoasMapFixed(at(self.buffer, MOCK_PAGE_SIZE), PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
    iommu_option.set(cmd, 'val64', 0n);
    expectErrno('EADDRINUSE', () => self.ioctl(IOMMU_OPTION, cmd), 'HUGE_PAGES=0 with a misaligned area');
    self.testIoctlIoasUnmap(MOCK_APERTURE_START + PAGE_SIZE, PAGE_SIZE);
    self.testIoctlIoasUnmap(MOCK_APERTURE_START, PAGE_SIZE);
  }),

  ...testF(iommufd_ioas, 'copy_sweep', (self, variant) => {
    const dstIoasId = self.testIoctlIoasAlloc();
    const copy = enc(iommu_ioas_copy, {
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      src_ioas_id: self.ioas_id,
      dst_ioas_id: dstIoasId,
      dst_iova: MOCK_APERTURE_START,
      length: MOCK_PAGE_SIZE,
    });
    const lastIova = variant.mock_domains ? MOCK_APERTURE_START + BUFFER_SIZE - 1 : MOCK_APERTURE_START + BUFFER_SIZE - 2;
    self.testIoctlIoasMapFixed(self.buffer, lastIova - MOCK_APERTURE_START + 1, MOCK_APERTURE_START);
    for (let iova = MOCK_APERTURE_START - PAGE_SIZE; iova <= lastIova; iova += 511) {
      iommu_ioas_copy.set(copy, 'src_iova', BigInt(iova));
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > lastIova) {
        expectErrno('ENOENT', () => self.ioctl(IOMMU_IOAS_COPY, copy), `COPY from 0x${iova.toString(16)}`);
      } else {
        self.ioctl(IOMMU_IOAS_COPY, copy);
        self.testIoctlIoasUnmapId(dstIoasId, MOCK_APERTURE_START, MOCK_PAGE_SIZE);
      }
    }
    self.testIoctlDestroy(dstIoasId);
  }),

  ...testF(iommufd_ioas, 'dmabuf_simple', (self) => {
    const bufSize = PAGE_SIZE * 4;
    const dfd = self.testCmdGetDmabuf(bufSize);
    self.errIoctlIoasMapFile('EINVAL', dfd, 0, 0);
    self.errIoctlIoasMapFile('EINVAL', dfd, bufSize, bufSize);
    self.errIoctlIoasMapFile('EINVAL', dfd, 0, bufSize + 1);
    self.testIoctlIoasMapFile(dfd, 0, bufSize);
    self.process.close(dfd);
  }),

  ...testF(iommufd_ioas, 'dmabuf_revoke', (self, variant) => {
    const bufSize = PAGE_SIZE * 4;
    const dfd = self.testCmdGetDmabuf(bufSize);
    const iova = self.testIoctlIoasMapFile(dfd, 0, bufSize);
    self.testCmdRevokeDmabuf(dfd, true);
    if (variant.mock_domains) self.testCmdHwptAlloc(self.device_id, self.ioas_id, 0);
    self.errIoctlIoasMapFile('ENODEV', dfd, 0, bufSize);
    self.testCmdRevokeDmabuf(dfd, false);
    self.testIoctlIoasMapFile(dfd, 0, bufSize);
    // Restore the iova back
    self.testIoctlIoasUnmap(iova, bufSize);
    self.testIoctlIoasMapFixedFile(dfd, 0, bufSize, iova);
    self.process.close(dfd);
  }),
];
