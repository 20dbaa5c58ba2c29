// AMD-Vi (@viommu/backend-amd-vi) with `nested: true`: the kernel's dormant nested.c allocator on a
// destroy-only vIOMMU (ADR 0100). Each device's guest keeps an x86-64 (v2) page table and a GCR3
// table in guest RAM; its nested HWPT carries the guest DTE (IOMMU_HWPT_DATA_AMD_GUEST). Linux
// 7.2.13 has no guest invalidation for AMD: HWPT_INVALIDATE is EOPNOTSUPP, a guest remap stays in
// the IOTLB under the hDomID, and a DTE rewrite alone (nested_attach_device) does not drop it. The
// VMM's way out is a nested HWPT with a new guest DomainID (a new hDomID), replacing the
// attachment; what that costs is host command-buffer commands (INVALIDATE_DEVTAB_ENTRY,
// COMPLETION_WAIT), which the demo shows (ADR 0170). PASID-tagged guest misses of a PRI device on
// a fault-capable nested HWPT are page requests through the PPR log to the FAULT queue; the DMA
// retries after the answer.

import { AmdGuestStage1, amdVi } from '@viommu/backend-amd-vi';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { FAULT_RESPONSE_TIMEOUT_MS, type GuestDevice, type VendorKit } from '../kit.js';

/** The PASID page requests use (the kernel never forwards PASID-0 page requests). */
const PRI_PASID = 1;
/** Upstream accepts any non-zero vIOMMU type for the destroy-only vIOMMU. */
const VIOMMU_TYPE = 0x1234;

const faultedIn = (i: number) => new TextEncoder().encode(`faulted in for device ${i}`);

export const amdKit: VendorKit = {
  id: 'amd',
  title: 'AMD-Vi (nested: true, no guest invalidation)',
  open(shape) {
    // DeviceIDs from 0x0100 in one PCI segment.
    if (shape.devices > 0xff00) throw new RangeError(`${shape.devices} devices do not fit one PCI segment`);
    const devices = Array.from({ length: shape.devices }, (_, i) => `nic${i}`);
    // The experimental hardware vIOMMU (ADR 0101) stays off: this is the upstream uAPI plus nested.c.
    const drv = amdVi({ name: 'ivhd0', nested: true });
    const host = createSimHost({
      iommus: [drv],
      devices: devices.map((name, i) => ({ name, iommu: 'ivhd0', rid: 0x0100 + i, pasidBits: 8, ats: false, pri: true })),
      faultResponseTimeoutMs: FAULT_RESPONSE_TIMEOUT_MS,
    });
    /** Each device's guest structures, and the next guest DomainID a refresh uses. */
    const guests = new Map<number, AmdGuestStage1>();
    const faultPage = new Map<number, number>();
    let nextDomainId = 1;

    return {
      host,
      devices,
      // Clear of the MSI window (0xfee0_0000) and the HyperTransport hole.
      guestRamIpa: 0x4000_0000,
      hwInfoType: U.IOMMU_HW_INFO_TYPE_AMD,
      viommuRequest: () => ({ type: VIOMMU_TYPE }),
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
        provoke(ctx, dev, addr) {
          const page = ctx.guest.alloc(4096);
          ctx.guest.write(page, faultedIn(dev.index));
          faultPage.set(dev.index, page);
          const want = faultedIn(dev.index);
          return ctx.host.device(dev.name).dma.read(addr, want.length, { pasid: PRI_PASID }).then(
            (got) => (got.every((b, k) => b === want[k]) ? undefined : `${dev.name}: the retried DMA read other bytes`),
            (e: unknown) => `${dev.name}: the retried DMA failed (${(e as { code?: string }).code ?? String(e)})`,
          );
        },
        check(g, dev) {
          const last = g.faults[g.faults.length - 1];
          if (g.devId !== dev.device.id) return `dev_id ${g.devId}, expected ${dev.device.id}`;
          if (!last || last.pasid !== PRI_PASID || (last.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID) === 0) return 'unexpected page request record';
          // The guest's fault handler maps the page (a miss is not cached), then the workload answers.
          dev.stage1.map!(Number(last.addr), faultPage.get(dev.index)!);
          return undefined;
        },
      },
    };
  },
};
