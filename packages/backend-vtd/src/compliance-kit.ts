// The compliance kit of the VT-d backend (@viommu/backend-vtd/compliance-kit), and the guest-side
// pieces other runners reuse (the harness's workload). Linux 7.2.13 has no Intel vIOMMU, so this is
// a `viommu: 'none'` kit (ADR 0150): the nested HWPT (IOMMU_HWPT_DATA_VTD_S1 pointing at a guest
// first-stage table in guest RAM) is allocated on the NEST_PARENT stage-2 itself, the guest's
// invalidations (iommu_hwpt_vtd_s1_invalidate) go to HWPT_INVALIDATE on the nested HWPT, and there
// is no vEVENTQ or HW queue. Recoverable faults are page requests: a first-stage miss of the PRI
// device on a fault-capable nested HWPT reaches the FAULT queue, and the answer retries the DMA.
// Jest-free: `viommu conformance` runs this kit in-process.

import { expectEqual, type AnyComplianceKit, type GuestMemory, type GuestStage1, type NoViommuKit } from '@viommu/backend-compliance/testing';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { vtd } from './driver/driver.js';
import { FS_A, FS_P, FS_RW, FS_US } from './pgtable/pte.js';
import { FS_FORMAT, PageTable, type TableMemory } from './pgtable/table.js';

const U64_MAX = (1n << 64n) - 1n;
/** A guest first-stage leaf: present, user, accessed, writable. */
const GUEST_RW = FS_P | FS_US | FS_RW | FS_A;
const E = U.iommu_hwpt_vtd_s1_invalidate;

/** Guest RAM as the page-table code's table memory (4 KiB tables). */
function tablesIn(guest: GuestMemory): TableMemory {
  return { readU32: (gpa) => guest.readU32(gpa), writeU32: (gpa, v) => guest.writeU32(gpa, v), allocTable: () => guest.alloc(4096) };
}

/**
 * A guest's first-stage table in guest RAM (x86-64, 4 levels), empty; the nested HWPT data is
 * IOMMU_HWPT_DATA_VTD_S1 with its GPA and a 48-bit address width. `map` replaces one page's leaf
 * (read/write) and invalidates nothing.
 */
export function vtdGuestStage1(guest: GuestMemory): Required<GuestStage1> {
  const s1 = new PageTable(tablesIn(guest), FS_FORMAT, 4);
  return {
    data: { type: U.IOMMU_HWPT_DATA_VTD_S1, bytes: U.iommu_hwpt_vtd_s1.encode({ pgtbl_addr: BigInt(s1.root), addr_width: 48, flags: 0n }) },
    map(iova, ipa) {
      s1.unmap(iova, 4096);
      s1.map(iova, ipa, 4096, GUEST_RW);
    },
  };
}

/** The guest's "flush everything of this nested domain": addr 0 with npages U64_MAX (a whole-PASID P_IOTLB). */
export function vtdFlushAll(): Uint8Array[] {
  return [E.encode({ addr: 0n, npages: U64_MAX, flags: 0, __reserved: 0 })];
}

export const vtdKit: NoViommuKit = {
  name: 'Intel VT-d',
  createHost: () => ({
    host: createSimHost({
      iommus: [vtd({ name: 'dmar0' })],
      devices: [{ name: 'nic0', iommu: 'dmar0', rid: 0x0310, pasidBits: 8, pri: true }],
    }),
    iommu: 'dmar0',
    device: 'nic0',
    // No foreignDevice: Linux lets a device of another VT-d unit attach to a capability-compatible
    // stage-2 (paging_domain_compatible), which the model refuses (ADR 0110), so the suite's
    // "incompatible" check would assert a model choice, not the kernel's behaviour.
  }),
  // Clear of the interrupt window at 0xfee0_0000.
  guestRam: { ipa: 0x4000_0000, bytes: 2 << 20 },
  hwInfoType: U.IOMMU_HW_INFO_TYPE_INTEL_VTD,
  viommu: 'none',
  // Any type: the driver has no viommu_init, so VIOMMU_ALLOC refuses them all.
  refusedViommuType: U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  buildStage1(guest, iova, ipa) {
    const s1 = vtdGuestStage1(guest);
    s1.map(iova, ipa);
    return s1;
  },
  invalidation: {
    target: 'nested',
    type: U.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    entryLen: E.size,
    flushAll: vtdFlushAll,
    // A flag beyond IOMMU_VTD_INV_FLAGS_LEAF: intel_nested_cache_invalidate_user answers EOPNOTSUPP.
    bad: () => ({ entry: E.encode({ addr: 0n, npages: 1n, flags: 2, __reserved: 0 }), errno: 'EOPNOTSUPP' }),
  },
  pageFault: {
    // A DMA to an address the guest has not mapped: a first-stage miss, so a page request. The
    // check maps the page (nothing is cached for it, so no invalidation is needed) before the suite
    // answers SUCCESS; the DMA then retries and completes, and the device saw the SUCCESS response.
    provoke: async (ctx, addr) => {
      await ctx.host.device(ctx.deviceName).dma.read(addr, 4);
      const drv = ctx.host.driver('dmar0') as ReturnType<typeof vtd>;
      const last = drv.deviceResponses.at(-1)!;
      // A page group response to the device's RID, without PASID.
      expectEqual(last.slice(0, 2), [0x0310, -1], 'the page group response\'s [RID, PASID]');
      return last[3]!;
    },
    check: (g, ctx) => {
      expectEqual(g.faults.map((r) => r.perm & U.IOMMU_PGFAULT_PERM_READ), [U.IOMMU_PGFAULT_PERM_READ], 'the page requests\' read permission');
      ctx.stage1.map!(Number(g.faults[0]!.addr), ctx.guest.base + 0x10_0000);
    },
  },
};

/** Every kit the backend proves itself with, in the order its tests and `viommu conformance` run them. */
export const complianceKits: readonly AnyComplianceKit[] = [vtdKit];
