// TEST_F(iommufd_mock_domain, ...) of iommufd.c: user pages reaching the mock domains (one or two,
// small or huge pages), pin counts, copies, replace and HWPT rotation.
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_TEST_OP_ACCESS_PAGES,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_PAGE_SIZE,
  iommu_ioas_copy,
  iommu_ioas_unmap,
  iommu_test_cmd_access_pages,
} from '@viommu/uapi';
import { iommufd_mock_domain, type MockDomainSelf, type MockDomainVariant } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { BUFFER_SIZE, PAGE_SIZE, assertEq, at, enc, num } from '../utils.js';

function basicMmap(self: MockDomainSelf): void {
  const bufSize = self.mmap_buf_size;
  // Simple one page map
  const iova = self.testIoctlIoasMap(self.buffer, PAGE_SIZE);
  self.checkMockIova(self.buffer, iova, PAGE_SIZE);
  // EFAULT half way through mapping: the C test munmaps the second half of its buffer; the contract
  // frees only whole allocations, so this maps just the first half (unaligned even for huge pages:
  // an aligned allocation is padded and its padding would still be mapped).
  const half = self.mem(bufSize / 2);
  self.errIoctlIoasMap('EFAULT', half, bufSize);
  // EFAULT on first page
  self.munmap(half);
  self.errIoctlIoasMap('EFAULT', half, bufSize);
}

function basicFile(self: MockDomainSelf): void {
  const bufSize = self.mmap_buf_size;
  // Simple one page map
  const iova = self.testIoctlIoasMapFile(self.mfd, 0, PAGE_SIZE);
  self.checkMockIova(self.mfd_buffer, iova, PAGE_SIZE);
  const tmp = self.memfdMmap(bufSize);
  self.errIoctlIoasMapFile('EINVAL', tmp.fd, 0, bufSize + 1);
  self.ftruncate(tmp.fd, 0);
  self.errIoctlIoasMapFile('EINVAL', tmp.fd, 0, bufSize);
  self.process.close(tmp.fd);
}

/** all_aligns and all_aligns_copy: map every size and alignment in a region and check it landed. */
function allAligns(self: MockDomainSelf, variant: MockDomainVariant, withCopy: boolean): void {
  const bufSize = self.mmap_buf_size;
  const testStep = variant.hugepages ? bufSize / 16 : MOCK_PAGE_SIZE;
  const mfd = variant.file ? self.memfdMmap(bufSize) : undefined;
  const buf = mfd ? mfd.buf : self.mmapBuf(bufSize);
  self.checkRefs(buf, bufSize, 0);
  // Every combination of page size and alignment; fewer for huge pages, which take long.
  for (let start = 0; start < bufSize; start += testStep) {
    for (let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE; end < bufSize; end += MOCK_PAGE_SIZE) {
      const length = end - start;
      const iova = mfd ? self.testIoctlIoasMapFile(mfd.fd, start, length) : self.testIoctlIoasMap(at(buf, start), length);
      let stdev = 0;
      const oldId = self.hwpt_ids[1];
      if (withCopy) {
        // Add and destroy a domain while the area exists
        const d = self.testCmdMockDomain(self.ioas_id);
        stdev = d.stdevId;
        self.hwpt_ids[1] = d.hwptId;
      }
      self.checkMockIova(at(buf, start), iova, length);
      const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
      self.checkRefs(at(buf, first), Math.floor(end / PAGE_SIZE) * PAGE_SIZE - first, 1);
      if (withCopy) {
        self.testIoctlDestroy(stdev);
        self.hwpt_ids[1] = oldId;
      }
      self.testIoctlIoasUnmap(iova, length);
    }
  }
  self.checkRefs(buf, bufSize, 0);
  if (mfd) {
    self.process.munmap(buf.addr, bufSize);
    self.process.close(mfd.fd);
  } else self.munmap(buf);
}

export const mockDomainCases: Scenario[] = [
  ...testF(iommufd_mock_domain, 'basic', (self, variant) => {
    if (variant.file) basicFile(self);
    else basicMmap(self);
  }),

  ...testF(iommufd_mock_domain, 'ro_unshare', (self) => {
    if (self.hwpt_ids[0] === 0) return;
    // The kernel test maps /proc/self/exe MAP_PRIVATE so that a write after a read-only pin would
    // "unshare" the page; the contract has no file mappings, so this checks the same invariant on
    // anonymous memory: a write after a read-only map does not move the mapped page.
    const buf = self.mem(PAGE_SIZE);
    const r = self._ioasMap(self.ioas_id, buf.addr, PAGE_SIZE, 0, IOMMU_IOAS_MAP_READABLE);
    assertEq('success', r.errno ?? 'success', 'read-only IOMMU_IOAS_MAP');
    self.checkMockIova(buf, r.iova, PAGE_SIZE);
    buf.bytes.fill(1, 0, PAGE_SIZE);
    self.checkMockIova(buf, r.iova, PAGE_SIZE);
  }),

  ...testF(iommufd_mock_domain, 'all_aligns', (self, variant) => allAligns(self, variant, false)),

  ...testF(iommufd_mock_domain, 'all_aligns_copy', (self, variant) => allAligns(self, variant, true)),

  ...testF(iommufd_mock_domain, 'user_copy', (self, variant) => {
    const buf = variant.file ? self.mfd_buffer : self.buffer;
    const access = enc(iommu_test_cmd_access_pages, { op: IOMMU_TEST_OP_ACCESS_PAGES, length: BUFFER_SIZE, uptr: buf.addr });
    const copy = enc(iommu_ioas_copy, {
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      dst_ioas_id: self.ioas_id,
      dst_iova: MOCK_APERTURE_START,
      length: BUFFER_SIZE,
    });
    const unmap = enc(iommu_ioas_unmap, { ioas_id: self.ioas_id, iova: MOCK_APERTURE_START, length: BUFFER_SIZE });

    // Pin the pages in an IOAS with no domains then copy to an IOAS with domains
    const ioasId = self.testIoctlIoasAlloc();
    let srcIova = variant.file ? self.testIoctlIoasMapIdFile(ioasId, self.mfd, 0, BUFFER_SIZE) : self.testIoctlIoasMapId(ioasId, buf, BUFFER_SIZE);
    const accessId = self.testCmdCreateAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    iommu_test_cmd_access_pages.set(access, 'id', accessId);
    iommu_test_cmd_access_pages.set(access, 'iova', BigInt(srcIova));
    self.testCmd(access);
    iommu_ioas_copy.set(copy, 'src_ioas_id', ioasId);
    iommu_ioas_copy.set(copy, 'src_iova', BigInt(srcIova));
    self.ioctl(IOMMU_IOAS_COPY, copy);
    self.checkMockIova(buf, MOCK_APERTURE_START, BUFFER_SIZE);

    // Now replace the ioas with a new one
    const newIoasId = self.testIoctlIoasAlloc();
    srcIova = variant.file ? self.testIoctlIoasMapIdFile(newIoasId, self.mfd, 0, BUFFER_SIZE) : self.testIoctlIoasMapId(newIoasId, buf, BUFFER_SIZE);
    self.testCmdAccessReplaceIoas(accessId, newIoasId);

    // Destroy the old ioas and cleanup copied mapping
    self.ioctl(IOMMU_IOAS_UNMAP, unmap);
    self.testIoctlDestroy(ioasId);

    // Then run the same test again with the new ioas
    iommu_test_cmd_access_pages.set(access, 'iova', BigInt(srcIova));
    self.testCmd(access);
    iommu_ioas_copy.set(copy, 'src_ioas_id', newIoasId);
    iommu_ioas_copy.set(copy, 'src_iova', BigInt(srcIova));
    self.ioctl(IOMMU_IOAS_COPY, copy);
    self.checkMockIova(buf, MOCK_APERTURE_START, BUFFER_SIZE);

    self.testCmdDestroyAccessPages(accessId, num(iommu_test_cmd_access_pages, access, 'out_access_pages_id'));
    self.testCmdDestroyAccess(accessId);
    self.testIoctlDestroy(newIoasId);
  }),

  ...testF(iommufd_mock_domain, 'replace', (self, variant) => {
    const ioasId = self.testIoctlIoasAlloc();
    self.testCmdMockDomainReplace(self.stdev_ids[0], ioasId);
    // Replacing the IOAS frees the prior auto HWPT, so using it is ENOENT.
    if (variant.mock_domains === 1) self.errMockDomainReplace('ENOENT', self.stdev_ids[0], self.hwpt_ids[0]);
    self.testCmdMockDomainReplace(self.stdev_ids[0], ioasId);
    if (variant.mock_domains >= 2) {
      self.testCmdMockDomainReplace(self.stdev_ids[0], self.hwpt_ids[1]);
      self.testCmdMockDomainReplace(self.stdev_ids[0], self.hwpt_ids[1]);
      self.testCmdMockDomainReplace(self.stdev_ids[0], self.hwpt_ids[0]);
    }
    self.testCmdMockDomainReplace(self.stdev_ids[0], self.ioas_id);
    self.testIoctlDestroy(ioasId);
  }),

  ...testF(iommufd_mock_domain, 'alloc_hwpt', (self, variant) => {
    for (let i = 0; i !== variant.mock_domains; i++) {
      const idev = self.idev_ids[i as 0 | 1];
      const stdev = self.stdev_ids[i as 0 | 1];
      self.errHwptAlloc('EOPNOTSUPP', idev, self.ioas_id, ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0);
      const h0 = self.testCmdHwptAlloc(idev, self.ioas_id, 0);
      const h1 = self.testCmdHwptAlloc(idev, self.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT);
      // Do a hw_pagetable rotation test
      self.testCmdMockDomainReplace(stdev, h0);
      self.errDestroy('EBUSY', h0);
      self.testCmdMockDomainReplace(stdev, h1);
      self.errDestroy('EBUSY', h1);
      self.testCmdMockDomainReplace(stdev, self.ioas_id);
      self.testIoctlDestroy(h1);
      const d = self.testCmdMockDomain(h0);
      self.testIoctlDestroy(d.stdevId);
      self.testIoctlDestroy(h0);
    }
  }),
];
