// Intel VT-d in scalable mode (@viommu/backend-vtd). Linux 7.2.13 has no Intel vIOMMU, so this is
// a `viommu: 'none'` session (ADR 0150): each device's guest first-stage table (x86-64, 4 levels)
// lives in guest RAM, its nested HWPT (IOMMU_HWPT_DATA_VTD_S1 with the table's GPA) hangs directly
// off the stage-2, and the unit caches what it walked in its IOTLB (tagged by the nested domain's
// DID) until the guest's iommu_hwpt_vtd_s1_invalidate entries reach the nested HWPT. A DMA to an
// address the guest has not mapped is a first-stage miss; from a PRI device on a fault-capable
// nested HWPT it is a page request on the FAULT queue, and the DMA retries once it is answered.

import { FS_A, FS_FORMAT, FS_P, FS_RW, FS_US, PageTable, vtd, type TableMemory } from '@viommu/backend-vtd';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import type { GuestMemory } from '@viommu/backend-compliance/testing';
import { FAULT_RESPONSE_TIMEOUT_MS, type VendorKit } from '../kit.js';

const U64_MAX = (1n << 64n) - 1n;
/** A guest first-stage leaf: present, user, accessed, writable. */
const GUEST_RW = FS_P | FS_US | FS_RW | FS_A;
const E = U.iommu_hwpt_vtd_s1_invalidate;

function tablesIn(guest: GuestMemory): TableMemory {
  return { readU32: (gpa) => guest.readU32(gpa), writeU32: (gpa, v) => guest.writeU32(gpa, v), allocTable: () => guest.alloc(4096) };
}

/** The bytes the guest's fault handler puts in the page it maps for device `i`'s page request. */
const faultedIn = (i: number) => new TextEncoder().encode(`faulted in for device ${i}`);

export const vtdKit: VendorKit = {
  id: 'vtd',
  title: 'Intel VT-d (scalable mode, nested)',
  open(shape) {
    // One PCI segment: 16-bit source-ids from 0x0100.
    if (shape.devices > 0xff00) throw new RangeError(`${shape.devices} devices do not fit one PCI segment`);
    const devices = Array.from({ length: shape.devices }, (_, i) => `nic${i}`);
    const host = createSimHost({
      iommus: [vtd({ name: 'dmar0' })],
      devices: devices.map((name, i) => ({ name, iommu: 'dmar0', rid: 0x0100 + i, pasidBits: 8, pri: true })),
      faultResponseTimeoutMs: FAULT_RESPONSE_TIMEOUT_MS,
    });
    /** Where each device's page request gets its page (the guest's fault handler allocates it). */
    const faultPage = new Map<number, number>();

    return {
      host,
      devices,
      viommu: 'none',
      // Clear of the interrupt window at 0xfee0_0000.
      guestRamIpa: 0x4000_0000,
      hwInfoType: U.IOMMU_HW_INFO_TYPE_INTEL_VTD,
      buildStage1(guest) {
        const s1 = new PageTable(tablesIn(guest), FS_FORMAT, 4);
        return {
          data: { type: U.IOMMU_HWPT_DATA_VTD_S1, bytes: U.iommu_hwpt_vtd_s1.encode({ pgtbl_addr: BigInt(s1.root), addr_width: 48, flags: 0n }) },
          map(iova, ipa) {
            s1.unmap(iova, 4096);
            s1.map(iova, ipa, 4096, GUEST_RW);
          },
        };
      },
      invalidation: {
        target: 'nested',
        type: U.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
        entryLen: E.size,
        // addr 0 with npages U64_MAX: everything of the nested domain (the kernel's whole-PASID P_IOTLB).
        flush: () => [E.encode({ addr: 0n, npages: U64_MAX, flags: 0, __reserved: 0 })],
      },
      pageFault: {
        provoke(ctx, dev, addr) {
          const page = ctx.guest.alloc(4096);
          ctx.guest.write(page, faultedIn(dev.index));
          faultPage.set(dev.index, page);
          const want = faultedIn(dev.index);
          // The DMA waits on the page request; after the answer it retries and must read the new page.
          return ctx.host.device(dev.name).dma.read(addr, want.length).then(
            (got) => (got.every((b, k) => b === want[k]) ? undefined : `${dev.name}: the retried DMA read other bytes`),
            (e: unknown) => `${dev.name}: the retried DMA failed (${(e as { code?: string }).code ?? String(e)})`,
          );
        },
        check(g, dev) {
          const last = g.faults[g.faults.length - 1];
          if (g.devId !== dev.device.id) return `dev_id ${g.devId}, expected ${dev.device.id}`;
          if (!last || (last.perm & U.IOMMU_PGFAULT_PERM_READ) === 0) return 'unexpected page request record';
          // The guest's fault handler: map the page (not-present entries are never cached, so no
          // invalidation is due), then the workload answers SUCCESS.
          dev.stage1.map!(Number(last.addr), faultPage.get(dev.index)!);
          return undefined;
        },
      },
    };
  },
};
