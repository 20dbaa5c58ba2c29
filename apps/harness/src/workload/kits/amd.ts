// AMD-Vi (@viommu/backend-amd-vi) with `nested: true`: the kernel's dormant nested.c allocator on a
// destroy-only vIOMMU (ADR 0100). Each device's guest keeps an x86-64 (v2) page table and a GCR3
// table in guest RAM (AmdGuestStage1); its nested HWPT carries the guest DTE. Linux 7.2.13 has no
// guest invalidation for AMD: HWPT_INVALIDATE is EOPNOTSUPP, a guest remap stays in the IOTLB under
// the hDomID, and a DTE rewrite alone does not drop it. The VMM's way out is a nested HWPT with a
// new guest DomainID (a new hDomID), replacing the attachment; what that costs is host
// command-buffer commands (INVALIDATE_DEVTAB_ENTRY, COMPLETION_WAIT), which the demo shows (ADR
// 0170). The vendor constants are the backend's compliance kit's; what is here is the workload's:
// many devices, a guest DomainID per device, the refresh's command count, and PASID-tagged page
// requests whose retried DMA must read the page the guest's fault handler mapped.

import { AmdGuestStage1, amdVi } from '@viommu/backend-amd-vi';
import { PRI_PASID, amdViKit as compliance } from '@viommu/backend-amd-vi/compliance-kit';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { FAULT_RESPONSE_TIMEOUT_MS, type GuestDevice, type VendorKit } from '../kit.js';
import { guestFaultIn, pciDeviceNames, vendorBasics, viommuRequestOf } from './shared.js';

export const amdKit: VendorKit = {
  id: 'amd',
  title: 'AMD-Vi (nested: true, no guest invalidation)',
  open(shape) {
    const devices = pciDeviceNames(shape.devices);
    // The experimental hardware vIOMMU (ADR 0101) stays off: this is the upstream uAPI plus nested.c.
    const drv = amdVi({ name: 'ivhd0', nested: true });
    const host = createSimHost({
      iommus: [drv],
      devices: devices.map((name, i) => ({ name, iommu: 'ivhd0', rid: 0x0100 + i, pasidBits: 8, ats: false, pri: true })),
      faultResponseTimeoutMs: FAULT_RESPONSE_TIMEOUT_MS,
    });
    /** Each device's guest structures, and the next guest DomainID (a refresh takes a new one). */
    const guests = new Map<number, AmdGuestStage1>();
    let nextDomainId = 1;
    const faults = guestFaultIn({ pasid: PRI_PASID });

    return {
      host,
      devices,
      ...vendorBasics(compliance),
      viommuRequest: viommuRequestOf(compliance),
      // The guest's DeviceID for the device (the vDEVICE's virt_id).
      virtId: (i) => BigInt(0x0100 + i),
      buildStage1(guest, index) {
        const g = new AmdGuestStage1(guest, { domainId: nextDomainId++, pasids: [0, PRI_PASID], ppr: true });
        guests.set(index, g);
        return { data: g.data, map: (iova, ipa) => g.map(iova, ipa) };
      },
      refresh: {
        label: 'a nested HWPT with a new guest DomainID',
        apply(_ctx, dev: GuestDevice) {
          const before = drv.hw.stats.commands;
          const nested = dev.viommu.allocNested(dev.device, guests.get(dev.index)!.withDomainId(nextDomainId++));
          dev.device.attach(nested);
          dev.nested.destroy();
          return { nested, commands: drv.hw.stats.commands - before };
        },
      },
      pageFault: {
        provoke: (ctx, dev, addr) => faults.provoke(ctx, dev, addr),
        check(g, dev) {
          const last = g.faults[g.faults.length - 1];
          if (g.devId !== dev.device.id) return `dev_id ${g.devId}, expected ${dev.device.id}`;
          if (!last || last.pasid !== PRI_PASID || (last.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID) === 0) return 'unexpected page request record';
          faults.handle(dev, last.addr);
          return undefined;
        },
      },
    };
  },
};
