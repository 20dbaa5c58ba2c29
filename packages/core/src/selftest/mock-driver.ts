// The selftest mock IOMMU as a DriverV1 (selftest.c's mock_ops, mock_viommu_ops and nested domain
// ops, in our words): mock devices with their flags and caches, paging domains (mock-domain.ts),
// nested domains with IOTLB slots, the selftest vIOMMU with its loopback data and mmap pages, HW
// queues that depend on their predecessor, and hw_info. Checks and errnos are selftest.c's.

import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_PASID_RESERVED,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_DEV_CACHE_ID_MAX,
  MOCK_DEV_CACHE_NUM,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_IOMMUPT_DEFAULT,
  MOCK_IOMMUPT_HUGE,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
  MOCK_PASID_WIDTH,
  PAGE_SIZE,
  SystemError,
  iommu_hwpt_invalidate_selftest,
  iommu_hwpt_selftest,
  iommu_test_hw_info,
  iommu_viommu_invalidate_selftest,
  iommu_viommu_selftest,
} from '@viommu/uapi';
import {
  NO_PASID,
  TRANSLATE_FAULT,
  TRANSLATE_OK,
  type DeviceInfo,
  type DriverDevice,
  type DriverDomain,
  type DriverHost,
  type DriverHwQueue,
  type DriverNestedDomain,
  type DriverPagingDomain,
  type DriverV1,
  type DriverViommu,
  type HwInfo,
  type HwQueueInitRequest,
  type Translation,
  type UserData,
  type UserDataArray,
  type ViommuCore,
  type ViommuInitRequest,
} from '../driver/driver.js';
import { copyFullUserArray, copyUserArrayEntry, copyUserData, copyUserDataOut } from '../viommu/user-data.js';
import { MockPagingDomain } from './mock-domain.js';

const VALID_DEV_FLAGS = MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID;
const PAGING_FLAGS = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID;

const fail = (code: 'EINVAL' | 'EOPNOTSUPP' | 'EEXIST' | 'EIO' | 'EFAULT' | 'ENOMEM' | 'ENODEV', why: string): never => {
  throw new SystemError(code, 'ioctl', why);
};

/** A mock device (selftest.c's mock_dev): its flags, its device cache and what it is attached to. */
export class MockDevice implements DriverDevice {
  readonly maxPasidLog2: number;
  readonly dirtyTracking: boolean;
  readonly atsUsable = false;
  readonly pci = false;
  // The mock answers IOMMU_CAP_CACHE_COHERENCY but not IOMMU_CAP_ENFORCE_CACHE_COHERENCY.
  readonly enforceCacheCoherency = false;
  readonly flags: number;
  /** The device cache the vIOMMU invalidation clears (MOCK_DEV_CACHE_NUM slots). */
  readonly cache = new Uint32Array(MOCK_DEV_CACHE_NUM).fill(IOMMU_TEST_DEV_CACHE_DEFAULT);
  /** The domain on each PASID (NO_PASID = the RID); absent = blocked. */
  readonly domains = new Map<number, DriverDomain>();
  /** The vIOMMU of the nested domain on the RID, and this device's virtual ID there. */
  viommu: MockViommu | undefined;
  vdevId = 0n;
  /** selftest.c's pasid_1024_fake_error: the second attach to PASID 1024 fails with ENOMEM. */
  pasid1024FakeError = false;

  constructor(readonly info: DeviceInfo) {
    this.flags = info.flags ?? 0;
    if (this.flags & ~VALID_DEV_FLAGS) fail('EINVAL', `unknown mock device flags 0x${this.flags.toString(16)}`);
    this.maxPasidLog2 = this.flags & MOCK_FLAGS_DEVICE_PASID ? MOCK_PASID_WIDTH : 0;
    this.dirtyTracking = !(this.flags & MOCK_FLAGS_DEVICE_NO_DIRTY);
  }

  reservedRegions() {
    return [];
  }
}

/** A nested domain (mock_iommu_domain_nested): IOTLB slots the selftest invalidation clears. */
export class MockNestedDomain implements DriverNestedDomain {
  readonly kind = 'nested';
  readonly iotlb = new Uint32Array(MOCK_NESTED_DOMAIN_IOTLB_NUM);

  constructor(
    readonly parent: MockPagingDomain,
    readonly viommu: MockViommu | undefined,
    iotlb: number,
  ) {
    this.iotlb.fill(iotlb);
  }

  cacheInvalidate(array: UserDataArray): void {
    let processed = 0;
    try {
      if (array.type !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST) fail('EINVAL', 'not a selftest invalidation');
      for (let i = 0; i < array.entryNum; i++) {
        const inv = iommu_hwpt_invalidate_selftest.decode(copyUserArrayEntry(array, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, i, iommu_hwpt_invalidate_selftest.size, 8));
        if (inv.flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) fail('EOPNOTSUPP', 'unknown invalidation flags');
        if (inv.iotlb_id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) fail('EINVAL', `iotlb_id ${inv.iotlb_id} out of range`);
        if (inv.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) this.iotlb.fill(0);
        else this.iotlb[inv.iotlb_id] = 0;
        processed++;
      }
    } finally {
      array.entryNum = processed;
    }
  }

  free(): void {}
}

/** The selftest vIOMMU (mock_viommu): its S2 parent, optional loopback mmap pages and HW queues. */
export class MockViommu implements DriverViommu {
  readonly hwQueues: (MockHwQueue | undefined)[] = new Array(IOMMU_TEST_HW_QUEUE_MAX).fill(undefined);
  mmapOffset: bigint | undefined;
  /** Physical address of the two loopback pages, or -1. */
  pagePa = -1;

  constructor(
    readonly core: ViommuCore,
    readonly s2Parent: MockPagingDomain,
    private readonly host: DriverHost,
  ) {}

  destroy(): void {
    if (this.mmapOffset !== undefined) this.core.unregisterMmap(this.mmapOffset);
    if (this.pagePa >= 0) this.host.physical.freeRun(this.pagePa / PAGE_SIZE);
  }

  allocNested(_dev: DriverDevice, flags: number, data: UserData): DriverNestedDomain {
    if (flags & ~IOMMU_HWPT_ALLOC_PASID) fail('EOPNOTSUPP', 'unsupported nested flags');
    const iotlb = nestedIotlb(data);
    this.host.failPoint('mock_nested_alloc');
    return new MockNestedDomain(this.s2Parent, this, iotlb);
  }

  cacheInvalidate(array: UserDataArray): void {
    // A zero-length array is allowed to validate the array type
    if (array.entryNum === 0 && array.type === IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) return;
    const size = iommu_viommu_invalidate_selftest.size;
    this.host.failPoint('mock_viommu_invalidate_cmds');
    let done = 0;
    try {
      const cmds = copyFullUserArray(array, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, size);
      for (; done < array.entryNum; done++) {
        const cur = iommu_viommu_invalidate_selftest.decode(cmds, done * size);
        if (cur.flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) fail('EOPNOTSUPP', 'unknown invalidation flags');
        if (cur.cache_id > MOCK_DEV_CACHE_ID_MAX) fail('EINVAL', `cache_id ${cur.cache_id} out of range`);
        const dev = this.core.findDevice(BigInt(cur.vdev_id));
        if (!(dev instanceof MockDevice)) fail('EINVAL', `no vDEVICE 0x${cur.vdev_id.toString(16)}`);
        const mdev = dev as MockDevice;
        if (cur.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) mdev.cache.fill(0);
        else mdev.cache[cur.cache_id] = 0;
      }
    } finally {
      array.entryNum = done;
    }
  }

  hwQueueSupported(type: number): boolean {
    return type === IOMMU_HW_QUEUE_TYPE_SELFTEST;
  }

  hwQueueInit(req: HwQueueInitRequest): DriverHwQueue {
    const { index } = req;
    if (index >= IOMMU_TEST_HW_QUEUE_MAX) fail('EINVAL', `queue index ${index} out of range`);
    if (this.hwQueues[index]) fail('EEXIST', `queue ${index} exists`);
    const prev = index ? this.hwQueues[index - 1] : undefined;
    if (index && !prev) fail('EIO', `queue ${index - 1} must exist first`);
    // Catches a core that converted the queue's IOVA to the wrong physical address.
    if (BigInt(req.basePa) !== this.s2Parent.iovaToPhys(req.baseIova)) fail('EFAULT', 'queue base does not match the S2 translation');
    // Queue i holds queue i-1 (iommufd_hw_queue_depend), so they must go in descending order.
    if (prev) req.dependOn(prev);
    const q = new MockHwQueue(this, index, prev);
    this.hwQueues[index] = q;
    return q;
  }
}

export class MockHwQueue implements DriverHwQueue {
  constructor(
    readonly viommu: MockViommu,
    readonly index: number,
    readonly prev: MockHwQueue | undefined,
  ) {}

  destroy(): void {
    this.viommu.hwQueues[this.index] = undefined;
  }
}

/** The iotlb value of a nested domain's selftest data (iommu_hwpt_selftest, at least `iotlb`). */
function nestedIotlb(data: UserData): number {
  if (data.type !== IOMMU_HWPT_DATA_SELFTEST) fail('EOPNOTSUPP', `nested data type 0x${data.type.toString(16)} is not selftest`);
  return iommu_hwpt_selftest.decode(copyUserData(data, IOMMU_HWPT_DATA_SELFTEST, iommu_hwpt_selftest.size, 4)).iotlb;
}

export type MockDriver = DriverV1 & { readonly host: DriverHost | undefined };

const mockDrivers = new WeakSet<DriverV1>();

/** True for a driver made by mockIommu() (IOMMU_TEST_CMD finds the host's mock this way). */
export function isMockDriver(d: DriverV1): d is MockDriver {
  return mockDrivers.has(d);
}

export interface MockIommuOptions {
  /** Instance name devices refer to. Default 'mock'. */
  readonly name?: string;
}

/** The selftest mock IOMMU driver; `createSimHost()` registers one by default. */
export function mockIommu(options: MockIommuOptions = {}): MockDriver {
  let host: DriverHost | undefined;
  const driver = {
    apiVersion: 1 as const,
    name: options.name ?? 'mock',
    /**
     * iommu_ops.user_pasid_table: page requests for a PASID with nothing attached go to the nested
     * domain on the RID (the guest owns the PASID table).
     */
    userPasidTable: true,
    get host() {
      return host;
    },

    probe(h: DriverHost): void {
      host = h;
    },

    probeDevice(info: DeviceInfo): DriverDevice {
      return new MockDevice(info);
    },

    hwInfo(_dev: DriverDevice, requestedType: number): HwInfo {
      if (requestedType !== IOMMU_HW_INFO_TYPE_DEFAULT && requestedType !== IOMMU_HW_INFO_TYPE_SELFTEST) fail('EOPNOTSUPP', 'unknown hw_info type');
      return { type: IOMMU_HW_INFO_TYPE_SELFTEST, data: iommu_test_hw_info.encode({ flags: 0, test_reg: IOMMU_HW_INFO_SELFTEST_REGVAL }) };
    },

    allocPagingDomain(dev: DriverDevice, flags: number, data?: UserData): DriverPagingDomain {
      const mdev = dev as MockDevice;
      const dirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
      if (flags & ~PAGING_FLAGS || (dirty && mdev.flags & MOCK_FLAGS_DEVICE_NO_DIRTY)) fail('EOPNOTSUPP', 'unsupported paging flags');
      if (data && data.type !== IOMMU_HWPT_DATA_SELFTEST && data.type !== IOMMU_HWPT_DATA_NONE) fail('EOPNOTSUPP', 'unsupported paging data type');
      let pagetableType = MOCK_IOMMUPT_DEFAULT;
      if (data) pagetableType = iommu_hwpt_selftest.decode(copyUserData(data, IOMMU_HWPT_DATA_SELFTEST, iommu_hwpt_selftest.size, 4)).pagetable_type;
      if (pagetableType !== MOCK_IOMMUPT_DEFAULT && pagetableType !== MOCK_IOMMUPT_HUGE) fail('EOPNOTSUPP', `pagetable_type ${pagetableType}`);
      host?.failPoint('mock_domain_alloc');
      return new MockPagingDomain((flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0, pagetableType, dirty);
    },

    allocNestedDomain(_dev: DriverDevice, parent: DriverPagingDomain, flags: number, data: UserData): DriverNestedDomain {
      if (flags & ~IOMMU_HWPT_ALLOC_PASID) fail('EOPNOTSUPP', 'unsupported nested flags');
      if (!(parent instanceof MockPagingDomain)) fail('EINVAL', 'parent is not a mock paging domain');
      const iotlb = nestedIotlb(data);
      host?.failPoint('mock_nested_alloc');
      return new MockNestedDomain(parent as MockPagingDomain, undefined, iotlb);
    },

    attach(dev: DriverDevice, pasid: number, domain: DriverDomain | null): void {
      const mdev = dev as MockDevice;
      if (pasid === NO_PASID) {
        // mock_domain_nop_attach
        if (domain instanceof MockPagingDomain && domain.dirty && mdev.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) fail('EINVAL', 'dirty tracking on a NO_DIRTY device');
        let viommu: MockViommu | undefined;
        let vdevId = 0n;
        if (domain instanceof MockNestedDomain && domain.viommu) {
          viommu = domain.viommu;
          const id = viommu.core.virtIdOf(dev);
          if (id === undefined) throw new SystemError('ENOENT', 'ioctl', 'no vDEVICE for the device on this vIOMMU');
          vdevId = id;
        }
        mdev.viommu = viommu;
        mdev.vdevId = vdevId;
      } else if (pasid === IOMMU_TEST_PASID_RESERVED) {
        // mock_domain_set_dev_pasid_nop: the second attach to PASID 1024 fakes a failure, so the
        // core's rollback of a failed replace is exercised.
        if (domain === null) mdev.pasid1024FakeError = false;
        else if (mdev.pasid1024FakeError) {
          mdev.pasid1024FakeError = false;
          fail('ENOMEM', 'faked PASID 1024 failure');
        } else mdev.pasid1024FakeError = true;
      }
      if (domain) mdev.domains.set(pasid, domain);
      else mdev.domains.delete(pasid);
    },

    translate(dev: DriverDevice, pasid: number, iova: number, _access: number, out: Translation): number {
      const domain = (dev as MockDevice).domains.get(pasid);
      const paging = domain instanceof MockPagingDomain ? domain : domain instanceof MockNestedDomain ? domain.parent : undefined;
      const pa = paging ? paging.translate(iova) : -1;
      if (pa < 0) {
        out.reason = 'mock: not mapped';
        return TRANSLATE_FAULT;
      }
      out.pa = pa;
      out.length = paging!.pteSize(iova) - (iova % paging!.pteSize(iova));
      return TRANSLATE_OK;
    },

    /** mock_get_viommu_size: only the selftest type has a size (0 = unsupported). */
    viommuSupported(_dev: DriverDevice, type: number): boolean {
      return type === IOMMU_VIOMMU_TYPE_SELFTEST;
    },

    viommuInit(req: ViommuInitRequest): DriverViommu {
      if (req.type !== IOMMU_VIOMMU_TYPE_SELFTEST) fail('EOPNOTSUPP', `vIOMMU type 0x${req.type.toString(16)}`);
      if (!(req.parent instanceof MockPagingDomain)) fail('EINVAL', 'parent is not a mock paging domain');
      const v = new MockViommu(req.core, req.parent as MockPagingDomain, host!);
      if (req.data.len) {
        const data = iommu_viommu_selftest.decode(copyUserData(req.data, IOMMU_VIOMMU_TYPE_SELFTEST, iommu_viommu_selftest.size, 8));
        // Two zeroed pages, the first u32 looping back in_data, mapped through the iommufd.
        host!.failPoint('mock_viommu_pages');
        const run = host!.physical.allocRun(2);
        v.pagePa = run.firstFrame * PAGE_SIZE;
        v.mmapOffset = req.core.registerMmap(v.pagePa, PAGE_SIZE * 2);
        host!.physical.writeU32(v.pagePa, data.in_data);
        try {
          copyUserDataOut(
            req.data,
            IOMMU_VIOMMU_TYPE_SELFTEST,
            iommu_viommu_selftest.encode({ in_data: data.in_data, out_data: data.in_data, out_mmap_offset: v.mmapOffset, out_mmap_length: BigInt(PAGE_SIZE * 2) }),
            8,
          );
        } catch (e) {
          v.destroy();
          throw e;
        }
      }
      return v;
    },
  };
  mockDrivers.add(driver);
  return driver;
}
