// The kernel selftest's mock IOMMU (drivers/iommu/iommufd/selftest.c, modelled in @viommu/core).
// Its nested domain translates through the stage-2 only (IOVA = IPA), so staleness is shown on its
// per-device cache (IOMMU_TEST_OP_DEV_CHECK_CACHE) instead of on DMA; vEVENTs and page requests are
// raised through IOMMU_TEST_CMD, as the kernel selftest does. The vendor constants and the cache
// probe are the selftest mock's compliance kit's; what is here is the workload's: many devices,
// a virtual ID and a flush per device.

import { devCacheHolds, selftestMockKit as compliance } from '@viommu/backend-mock/compliance-kit';
import { createSimHost, mockIommu } from '@viommu/core';
import * as U from '@viommu/uapi';
import { vendorBasics, viommuRequestOf } from './shared.js';
import { FAULT_RESPONSE_TIMEOUT_MS, type VendorKit } from '../kit.js';

const E = U.iommu_viommu_invalidate_selftest;

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
      ...vendorBasics(compliance),
      viommuRequest: viommuRequestOf(compliance),
      virtId: (i) => BigInt(0x100 + i),
      // The selftest nested data names no guest table (IOVA = IPA): the same for every device.
      buildStage1: (guest) => compliance.buildStage1(guest, 0, compliance.guestRam.ipa),
      invalidation: {
        target: 'viommu',
        type: compliance.invalidation!.type,
        entryLen: compliance.invalidation!.entryLen,
        flush: (_ctx, dev) => [E.encode({ flags: U.IOMMU_TEST_INVALIDATE_FLAG_ALL, vdev_id: Number(dev.vdevice.virtId), cache_id: 0 })],
      },
      // A device starts with every cache slot at IOMMU_TEST_DEV_CACHE_DEFAULT; a flush zeroes them.
      probeCached: (ctx, dev) => devCacheHolds(ctx.iommufd, dev.device, 0, U.IOMMU_TEST_DEV_CACHE_DEFAULT),
      hwQueue: { type: compliance.hwQueue!.type, length: compliance.hwQueue!.length },
      vevent: {
        type: compliance.vevent!.type,
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
