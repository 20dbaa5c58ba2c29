// The vendor kit of the kernel selftest mock driver (the default driver of createSimHost): the
// reference kit for backend authors, and what @viommu/backend-mock runs the suite with.
// The mock's nested domain translates through its parent only (as selftest.c's does), so its kit
// has no stage-1 to remap; its invalidation is checked through IOMMU_TEST_OP_DEV_CHECK_CACHE.

import { ClientError, type Device, type Iommufd } from '@viommu/client';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { check, expectEqual } from '../assert.js';
import type { ComplianceKit } from '../kit.js';

const E = U.iommu_viommu_invalidate_selftest;

/**
 * IOMMU_TEST_OP_DEV_CHECK_CACHE: whether cache slot `cacheId` of the device holds `value` (the
 * kernel answers EINVAL when it does not). A device starts with every slot at
 * IOMMU_TEST_DEV_CACHE_DEFAULT; an invalidation zeroes the slots it names.
 */
export function devCacheHolds(iommufd: Iommufd, device: Device, cacheId: number, value: number): boolean {
  const bytes = U.iommu_test_cmd.encode({ op: U.IOMMU_TEST_OP_DEV_CHECK_CACHE, id: device.id });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setUint32(16, cacheId, true); // check_dev_cache.id
  dv.setUint32(20, value, true); // check_dev_cache.cache
  try {
    iommufd.ioctlBytes('checkDevCache', device.label, U.IOMMU_TEST_CMD, bytes);
    return true;
  } catch (e) {
    if (e instanceof ClientError && e.code === 'EINVAL') return false;
    throw e;
  }
}

export const selftestMockKit: ComplianceKit = {
  name: 'selftest mock',
  createHost: () => ({
    host: createSimHost({ devices: [{ name: 'dev0', iommu: 'mock', rid: 0x10, pri: true }] }),
    iommu: 'mock',
    device: 'dev0',
  }),
  // The mock's aperture ends below 2 GiB.
  guestRam: { ipa: 0x4000_0000, bytes: 2 << 20 },
  hwInfoType: U.IOMMU_HW_INFO_TYPE_SELFTEST,
  viommu: { type: U.IOMMU_VIOMMU_TYPE_SELFTEST },
  virtId: 0x99n,
  buildStage1: () => ({ data: { type: U.IOMMU_HWPT_DATA_SELFTEST, bytes: U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT }) } }),
  invalidation: {
    target: 'viommu',
    type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
    entryLen: E.size,
    flushAll: (ctx) => {
      check(devCacheHolds(ctx.iommufd, ctx.device, 0, U.IOMMU_TEST_DEV_CACHE_DEFAULT), 'cache slot 0 of the device does not hold IOMMU_TEST_DEV_CACHE_DEFAULT before the flush');
      return [E.encode({ flags: U.IOMMU_TEST_INVALIDATE_FLAG_ALL, vdev_id: Number(ctx.vdevice.virtId), cache_id: 0 })];
    },
    bad: (ctx) => ({ entry: E.encode({ flags: 0, vdev_id: Number(ctx.vdevice.virtId), cache_id: 0xffff }), errno: 'EINVAL' }),
    checkFlushed: (ctx) => {
      for (let i = 0; i < 4; i++) check(devCacheHolds(ctx.iommufd, ctx.device, i, 0), `cache slot ${i} of the device is not 0 after the flush`);
      check(!devCacheHolds(ctx.iommufd, ctx.device, 0, U.IOMMU_TEST_DEV_CACHE_DEFAULT), 'cache slot 0 still holds IOMMU_TEST_DEV_CACHE_DEFAULT after the flush');
    },
  },
  vevent: {
    type: U.IOMMU_VEVENTQ_TYPE_SELFTEST,
    provoke: (ctx) => {
      ctx.iommufd.call('triggerVevent', ctx.device.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_vevent, { op: U.IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: ctx.device.id });
    },
    check: (payload, ctx) => expectEqual(U.iommu_viommu_event_selftest.decode(payload).virt_id, Number(ctx.vdevice.virtId), 'the vEVENT\'s virt_id'),
  },
  pageFault: {
    provoke: (ctx, addr) => {
      ctx.iommufd.call('triggerIopf', ctx.device.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_iopf, {
        op: U.IOMMU_TEST_OP_TRIGGER_IOPF, dev_id: ctx.device.id, pasid: 0, grpid: 3, perm: U.IOMMU_PGFAULT_PERM_READ, addr,
      });
    },
    check: (g) => expectEqual(g.faults.map((r) => [r.grpid, r.perm]), [[3, U.IOMMU_PGFAULT_PERM_READ]], 'the page requests\' [grpid, perm]'),
  },
  hwQueue: { type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, length: 4096, count: 2 },
};
