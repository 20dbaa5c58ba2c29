// Intel VT-d in scalable mode (@viommu/backend-vtd). Linux 7.2.13 has no Intel vIOMMU, so this is
// a `viommu: 'none'` session (ADR 0150): each device's guest first-stage table lives in guest RAM,
// its nested HWPT hangs directly off the stage-2, and the unit caches what it walked in its IOTLB
// (tagged by the nested domain's DID) until the guest's invalidation reaches the nested HWPT. The
// guest-side formats (first-stage table, nested data, flush entries) and the vendor constants are
// the backend's compliance kit's; what is here is the workload's: many PRI devices on one unit,
// and page requests whose retried DMA must read the page the guest's fault handler mapped.

import { vtd } from '@viommu/backend-vtd';
import { vtdFlushAll, vtdGuestStage1, vtdKit as compliance } from '@viommu/backend-vtd/compliance-kit';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { FAULT_RESPONSE_TIMEOUT_MS, type VendorKit } from '../kit.js';
import { guestFaultIn, pciDeviceNames, vendorBasics } from './shared.js';

export const vtdKit: VendorKit = {
  id: 'vtd',
  title: 'Intel VT-d (scalable mode, nested)',
  open(shape) {
    const devices = pciDeviceNames(shape.devices);
    const host = createSimHost({
      iommus: [vtd({ name: 'dmar0' })],
      devices: devices.map((name, i) => ({ name, iommu: 'dmar0', rid: 0x0100 + i, pasidBits: 8, pri: true })),
      faultResponseTimeoutMs: FAULT_RESPONSE_TIMEOUT_MS,
    });
    const faults = guestFaultIn();

    return {
      host,
      devices,
      viommu: 'none',
      ...vendorBasics(compliance),
      buildStage1: (guest) => vtdGuestStage1(guest),
      invalidation: { target: 'nested', type: compliance.invalidation.type, entryLen: compliance.invalidation.entryLen, flush: vtdFlushAll },
      pageFault: {
        provoke: (ctx, dev, addr) => faults.provoke(ctx, dev, addr),
        check(g, dev) {
          const last = g.faults[g.faults.length - 1];
          if (g.devId !== dev.device.id) return `dev_id ${g.devId}, expected ${dev.device.id}`;
          if (!last || (last.perm & U.IOMMU_PGFAULT_PERM_READ) === 0) return 'unexpected page request record';
          faults.handle(dev, last.addr);
          return undefined;
        },
      },
    };
  },
};
