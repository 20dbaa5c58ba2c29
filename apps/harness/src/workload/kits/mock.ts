// The kernel selftest's mock IOMMU (drivers/iommu/iommufd/selftest.c, modelled in @viommu/core).
// Its nested domain translates through the stage-2 only (IOVA = IPA), so staleness is shown on its
// per-device cache (IOMMU_TEST_OP_DEV_CHECK_CACHE) instead of on DMA; vEVENTs and page requests are
// raised through IOMMU_TEST_CMD, as the kernel selftest does.

import { ClientError } from '@viommu/client';
import { createSimHost, mockIommu } from '@viommu/core';
import * as U from '@viommu/uapi';
import { FAULT_RESPONSE_TIMEOUT_MS, type GuestDevice, type VendorKit, type WorkloadContext } from '../kit.js';

const E = U.iommu_viommu_invalidate_selftest;

/** IOMMU_TEST_OP_DEV_CHECK_CACHE: true when cache slot `cacheId` of the device holds `value` (EINVAL otherwise). */
function devCacheHolds(ctx: WorkloadContext, dev: GuestDevice, cacheId: number, value: number): boolean {
  const bytes = U.iommu_test_cmd.encode({ op: U.IOMMU_TEST_OP_DEV_CHECK_CACHE, id: dev.device.id });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setUint32(16, cacheId, true); // check_dev_cache.id
  dv.setUint32(20, value, true); // check_dev_cache.cache
  try {
    ctx.iommufd.ioctlBytes('checkDevCache', dev.device.label, U.IOMMU_TEST_CMD, bytes);
    return true;
  } catch (e) {
    if (e instanceof ClientError && e.code === 'EINVAL') return false;
    throw e;
  }
}

export const mockKit: VendorKit = {
  id: 'mock',
  title: 'selftest mock',
  open(shape) {
    const devices = Array.from({ length: shape.devices }, (_, i) => `mdev${i}`);
    const host = createSimHost({
      iommus: [mockIommu({ name: 'mock' })],
      devices: devices.map((name, i) => ({ name, iommu: 'mock', rid: 0x10 + i, pri: true })),
      faultResponseTimeoutMs: FAULT_RESPONSE_TIMEOUT_MS,
    });
    return {
      host,
      devices,
      // The mock's aperture ends below 2 GiB: guest RAM from 1 GiB.
      guestRamIpa: 0x4000_0000,
      hwInfoType: U.IOMMU_HW_INFO_TYPE_SELFTEST,
      viommuRequest: () => ({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST }),
      virtId: (i) => BigInt(0x100 + i),
      buildStage1: () => ({ data: { type: U.IOMMU_HWPT_DATA_SELFTEST, bytes: U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT }) } }),
      invalidation: {
        target: 'viommu',
        type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
        entryLen: E.size,
        flush: (_ctx, dev) => [E.encode({ flags: U.IOMMU_TEST_INVALIDATE_FLAG_ALL, vdev_id: Number(dev.vdevice.virtId), cache_id: 0 })],
      },
      // A device starts with every cache slot at IOMMU_TEST_DEV_CACHE_DEFAULT; a flush zeroes them.
      probeCached: (ctx, dev) => devCacheHolds(ctx, dev, 0, U.IOMMU_TEST_DEV_CACHE_DEFAULT),
      hwQueue: { type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, length: 4096 },
      vevent: {
        type: U.IOMMU_VEVENTQ_TYPE_SELFTEST,
        provoke: async (ctx, dev) => {
          ctx.iommufd.call('triggerVevent', dev.device.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_vevent, {
            op: U.IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: dev.device.id,
          });
        },
        check: (payload, dev) => {
          const got = U.iommu_viommu_event_selftest.decode(payload).virt_id;
          return got === Number(dev.vdevice.virtId) ? undefined : `virt_id ${got}, expected ${dev.vdevice.virtId}`;
        },
      },
      pageFault: {
        provoke: (ctx, dev, addr) => {
          ctx.iommufd.call('triggerIopf', dev.device.label, U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_iopf, {
            op: U.IOMMU_TEST_OP_TRIGGER_IOPF, dev_id: dev.device.id, pasid: 0, grpid: 3, perm: U.IOMMU_PGFAULT_PERM_READ, addr,
          });
        },
        check: (g, dev) => {
          const last = g.faults[g.faults.length - 1];
          if (g.devId !== dev.device.id) return `dev_id ${g.devId}, expected ${dev.device.id}`;
          if (!last || last.grpid !== 3 || last.perm !== U.IOMMU_PGFAULT_PERM_READ) return 'unexpected page request record';
          return undefined;
        },
      },
    };
  },
};
