// The fixtures of tools/testing/selftests/iommu/iommufd.c with their variants, as data plus a
// setup and teardown each. Variant order and names are the C file's.
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_SET,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_PAGE_SIZE,
  O_RDWR,
  iommu_hwpt_selftest,
  iommu_option,
  iommu_vfio_ioas,
  type Process,
} from '@viommu/uapi';
import type { Fixture } from './harness.js';
import { HUGEPAGE_SIZE, PAGE_SIZE, Self, assertNe, enc, skip, type UserBuf } from './utils.js';
import { VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU } from '@viommu/uapi';

// iopt_pages accounting modes (IOMMU_OPTION_RLIMIT_MODE values the change_process variants use)
export const IOPT_PAGES_ACCOUNT_NONE = 0;
export const IOPT_PAGES_ACCOUNT_USER = 1;
export const IOPT_PAGES_ACCOUNT_MM = 2;

function openIommufd(process: Process): Self {
  const self = new Self(process);
  self.fd = process.open('/dev/iommu', O_RDWR);
  assertNe(-1, self.fd, 'open /dev/iommu');
  return self;
}

// ---- iommufd ------------------------------------------------------------------------------------

export const iommufd: Fixture<Self, Record<string, never>> = {
  name: 'iommufd',
  variants: [['', {}]],
  setup: (process) => openIommufd(process),
  teardown: (self) => self.teardownIommufd(),
};

// ---- change_process -----------------------------------------------------------------------------

export interface ChangeProcessVariant {
  accounting: number;
}

export const change_process: Fixture<Self, ChangeProcessVariant> = {
  name: 'change_process',
  variants: [
    ['account_none', { accounting: IOPT_PAGES_ACCOUNT_NONE }],
    ['account_user', { accounting: IOPT_PAGES_ACCOUNT_USER }],
    ['account_mm', { accounting: IOPT_PAGES_ACCOUNT_MM }],
  ],
  setup(process, variant) {
    const self = openIommufd(process);
    // drop_cap_ipc_lock(): pins are charged from now on (a target without the call keeps its capabilities).
    process.dropCapIpcLock?.();
    if (variant.accounting !== IOPT_PAGES_ACCOUNT_NONE) {
      self.ioctl(
        IOMMU_OPTION,
        enc(iommu_option, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: variant.accounting === IOPT_PAGES_ACCOUNT_MM ? 1 : 0 }),
      );
    }
    self.ioas_id = self.testIoctlIoasAlloc();
    self.testCmdMockDomain(self.ioas_id);
    return self;
  },
  teardown: (self) => self.teardownIommufd(),
};

// ---- iommufd_ioas -------------------------------------------------------------------------------

export interface IoasVariant {
  mock_domains: number;
  memory_limit: number;
  pasid_capable: boolean;
}

export const iommufd_ioas: Fixture<Self, IoasVariant> = {
  name: 'iommufd_ioas',
  variants: [
    ['no_domain', { mock_domains: 0, memory_limit: 0, pasid_capable: false }],
    ['mock_domain', { mock_domains: 1, memory_limit: 0, pasid_capable: true }],
    ['two_mock_domain', { mock_domains: 2, memory_limit: 0, pasid_capable: false }],
    ['mock_domain_limit', { mock_domains: 1, memory_limit: 16, pasid_capable: false }],
  ],
  setup(process, variant) {
    const self = openIommufd(process);
    self.ioas_id = self.testIoctlIoasAlloc();
    if (!variant.memory_limit) self.testIoctlSetDefaultMemoryLimit();
    else self.testIoctlSetTempMemoryLimit(variant.memory_limit);
    for (let i = 0; i !== variant.mock_domains; i++) {
      const d = self.testCmdMockDomain(self.ioas_id);
      self.stdev_id = d.stdevId;
      self.hwpt_id = d.hwptId;
      self.device_id = d.idevId;
      self.testCmdDevCheckCacheAll(self.device_id, IOMMU_TEST_DEV_CACHE_DEFAULT);
      self.base_iova = MOCK_APERTURE_START;
    }
    if (variant.pasid_capable) self.device_pasid_id = self.testCmdMockDomainFlags(self.ioas_id, MOCK_FLAGS_DEVICE_PASID).idevId;
    return self;
  },
  teardown(self) {
    if (self.fd !== -1) self.testIoctlSetDefaultMemoryLimit();
    self.teardownIommufd();
  },
};

// ---- iommufd_mock_domain ------------------------------------------------------------------------

export interface MockDomainVariant {
  mock_domains: number;
  hugepages: boolean;
  file: boolean;
}

export class MockDomainSelf extends Self {
  hwpt_ids: [number, number] = [0, 0];
  stdev_ids: [number, number] = [0, 0];
  idev_ids: [number, number] = [0, 0];
  hugepages = false;
  mmap_buf_size = PAGE_SIZE * 8;

  /** mmap(0, size, ..., self->mmap_flags): huge-page aligned when the variant asks for huge pages. */
  mmapBuf(size: number): UserBuf {
    return this.hugepages ? this.mmapAligned(size, HUGEPAGE_SIZE) : this.mem(size);
  }

  /** check_mock_iova: every mock domain maps [iova, iova+length) onto the pages at ptr. */
  checkMockIova(ptr: UserBuf | bigint, iova: number | bigint, length: number | bigint): void {
    this.checkMap(this.hwpt_id, iova, length, ptr);
    if (this.hwpt_ids[1]) this.checkMap(this.hwpt_ids[1], iova, length, ptr);
  }
}

export const iommufd_mock_domain: Fixture<MockDomainSelf, MockDomainVariant> = {
  name: 'iommufd_mock_domain',
  variants: [
    ['one_domain', { mock_domains: 1, hugepages: false, file: false }],
    ['two_domains', { mock_domains: 2, hugepages: false, file: false }],
    ['one_domain_hugepage', { mock_domains: 1, hugepages: true, file: false }],
    ['two_domains_hugepage', { mock_domains: 2, hugepages: true, file: false }],
    ['one_domain_file', { mock_domains: 1, hugepages: false, file: true }],
    ['one_domain_file_hugepage', { mock_domains: 1, hugepages: true, file: true }],
  ],
  setup(process, variant) {
    const self = new MockDomainSelf(process);
    self.fd = process.open('/dev/iommu', O_RDWR);
    self.ioas_id = self.testIoctlIoasAlloc();
    for (let i = 0; i !== variant.mock_domains; i++) {
      const d = self.testCmdMockDomain(self.ioas_id);
      self.stdev_ids[i] = d.stdevId;
      self.hwpt_ids[i] = d.hwptId;
      self.idev_ids[i] = d.idevId;
      self.testCmdDevCheckCacheAll(self.idev_ids[0], IOMMU_TEST_DEV_CACHE_DEFAULT);
    }
    self.hwpt_id = self.hwpt_ids[0];
    if (variant.hugepages) {
      self.hugepages = true;
      self.mmap_buf_size = HUGEPAGE_SIZE * 2;
    }
    return self;
  },
  teardown: (self) => self.teardownIommufd(),
};

// ---- iommufd_dirty_tracking ---------------------------------------------------------------------

export interface DirtyVariant {
  buffer_size: number;
  hugepages: boolean;
}

export class DirtySelf extends Self {
  page_size = MOCK_PAGE_SIZE;
  bitmap_size = 0;
  /** The fixture's own buffer (self->buffer in C), distinct from the global `buffer`. */
  dbuffer!: UserBuf;
  bitmap!: UserBuf;
}

export const iommufd_dirty_tracking: Fixture<DirtySelf, DirtyVariant> = {
  name: 'iommufd_dirty_tracking',
  variants: [
    ['domain_dirty8k', { buffer_size: 8 * 1024, hugepages: false }],
    ['domain_dirty16k', { buffer_size: 16 * 1024, hugepages: false }],
    ['domain_dirty64k', { buffer_size: 64 * 1024, hugepages: false }],
    ['domain_dirty128k', { buffer_size: 128 * 1024, hugepages: false }],
    ['domain_dirty320k', { buffer_size: 320 * 1024, hugepages: false }],
    ['domain_dirty64M', { buffer_size: 64 * 1024 * 1024, hugepages: false }],
    ['domain_dirty64M_huge', { buffer_size: 64 * 1024 * 1024, hugepages: true }],
    ['domain_dirty128M', { buffer_size: 128 * 1024 * 1024, hugepages: false }],
    ['domain_dirty128M_huge', { buffer_size: 128 * 1024 * 1024, hugepages: true }],
  ],
  setup(process, variant) {
    if (variant.buffer_size < MOCK_PAGE_SIZE) skip(`Skipping buffer_size=${variant.buffer_size}, less than MOCK_PAGE_SIZE=${MOCK_PAGE_SIZE}`);
    const self = new DirtySelf(process);
    self.fd = process.open('/dev/iommu', O_RDWR);
    let mmapBufferSize = variant.buffer_size;
    if (variant.hugepages && mmapBufferSize < HUGEPAGE_SIZE) mmapBufferSize = HUGEPAGE_SIZE;
    self.dbuffer = self.mmapAligned(mmapBufferSize, HUGEPAGE_SIZE);
    self.page_size = MOCK_PAGE_SIZE;
    self.bitmap_size = variant.buffer_size / self.page_size;
    // An extra page for the unaligned-bitmap cases.
    self.bitmap = self.mem(Math.ceil(self.bitmap_size / 8) + PAGE_SIZE);
    self.ioas_id = self.testIoctlIoasAlloc();
    // The page size fed to the io page table must be the one the dirty logic expects.
    if (!variant.hugepages) {
      self.ioctl(IOMMU_OPTION, enc(iommu_option, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, val64: 0, object_id: self.ioas_id }));
    }
    const d = self.testCmdMockDomain(self.ioas_id);
    self.stdev_id = d.stdevId;
    self.hwpt_id = d.hwptId;
    self.idev_id = d.idevId;
    return self;
  },
  teardown(self) {
    self.teardownIommufd();
    // free(self->buffer), after the context is gone so nothing holds the pages
    if (self.dbuffer) self.munmap(self.dbuffer);
  },
};

// ---- vfio_compat_mock_domain --------------------------------------------------------------------

export interface VfioCompatVariant {
  version: number;
}

export const vfio_compat_mock_domain: Fixture<Self, VfioCompatVariant> = {
  name: 'vfio_compat_mock_domain',
  variants: [
    ['Ver1v2', { version: VFIO_TYPE1v2_IOMMU }],
    ['Ver1v0', { version: VFIO_TYPE1_IOMMU }],
  ],
  setup(process, variant) {
    const self = openIommufd(process);
    // What VFIO would consider a group
    self.ioas_id = self.testIoctlIoasAlloc();
    self.testCmdMockDomain(self.ioas_id);
    self.ioctl(IOMMU_VFIO_IOAS, enc(iommu_vfio_ioas, { op: IOMMU_VFIO_IOAS_SET, ioas_id: self.ioas_id }));
    self.ioctl(VFIO_SET_IOMMU, variant.version);
    return self;
  },
  teardown: (self) => self.teardownIommufd(),
};

// ---- iommufd_viommu -----------------------------------------------------------------------------

export interface ViommuVariant {
  viommu: number;
}

export class ViommuSelf extends Self {
  nested_hwpt_id = 0;
  viommu_id = 0;
}

export const iommufd_viommu: Fixture<ViommuSelf, ViommuVariant> = {
  name: 'iommufd_viommu',
  variants: [
    ['no_viommu', { viommu: 0 }],
    ['mock_viommu', { viommu: 1 }],
  ],
  setup(process, variant) {
    const self = new ViommuSelf(process);
    self.fd = process.open('/dev/iommu', O_RDWR);
    self.ioas_id = self.testIoctlIoasAlloc();
    self.testIoctlSetDefaultMemoryLimit();
    if (variant.viommu) {
      const data = self.put(enc(iommu_hwpt_selftest, { iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
      const d = self.testCmdMockDomain(self.ioas_id);
      self.stdev_id = d.stdevId;
      self.device_id = d.idevId;
      // A nesting parent, a vIOMMU holding it, and a regular nested HWPT on the vIOMMU.
      self.hwpt_id = self.testCmdHwptAlloc(self.device_id, self.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT);
      self.viommu_id = self.testCmdViommuAlloc(self.device_id, self.hwpt_id, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
      self.nested_hwpt_id = self.testCmdHwptAllocNested(self.device_id, self.viommu_id, 0, IOMMU_HWPT_DATA_SELFTEST, data, iommu_hwpt_selftest.size);
    }
    return self;
  },
  teardown: (self) => self.teardownIommufd(),
};

// ---- iommufd_device_pasid -----------------------------------------------------------------------

export interface DevicePasidVariant {
  pasid_capable: boolean;
}

export class DevicePasidSelf extends Self {
  no_pasid_stdev_id = 0;
  no_pasid_device_id = 0;
}

export const iommufd_device_pasid: Fixture<DevicePasidSelf, DevicePasidVariant> = {
  name: 'iommufd_device_pasid',
  variants: [
    ['no_pasid', { pasid_capable: false }],
    ['has_pasid', { pasid_capable: true }],
  ],
  setup(process, variant) {
    const self = new DevicePasidSelf(process);
    self.fd = process.open('/dev/iommu', O_RDWR);
    self.ioas_id = self.testIoctlIoasAlloc();
    const d = self.testCmdMockDomainFlags(self.ioas_id, MOCK_FLAGS_DEVICE_PASID);
    self.stdev_id = d.stdevId;
    self.hwpt_id = d.hwptId;
    self.device_id = d.idevId;
    if (!variant.pasid_capable) {
      const n = self.testCmdMockDomainFlags(self.ioas_id, 0);
      self.no_pasid_stdev_id = n.stdevId;
      self.no_pasid_device_id = n.idevId;
    }
    return self;
  },
  teardown: (self) => self.teardownIommufd(),
};
