// The compliance suite on the VT-d backend. Linux 7.2.13 has no Intel vIOMMU, so this is a
// `viommu: 'none'` kit: the nested HWPT (IOMMU_HWPT_DATA_VTD_S1 pointing at a guest first-stage
// table in guest RAM) is allocated on the NEST_PARENT stage-2 itself, the guest's invalidations
// (iommu_hwpt_vtd_s1_invalidate) go to HWPT_INVALIDATE on the nested HWPT, and there is no vEVENTQ
// or HW queue. Recoverable faults are page requests: a first-stage miss of the PRI device on a
// fault-capable nested HWPT reaches the FAULT queue, and the answer retries the DMA.

import { describe, expect, it } from '@jest/globals';
import { buildFlow, remapGuestPage, runComplianceSuite, type GuestMemory, type NoViommuKit } from '@viommu/backend-compliance';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { vtd } from './driver/driver.js';
import { FS_A, FS_P, FS_RW, FS_US } from './pgtable/pte.js';
import { FS_FORMAT, PageTable, type TableMemory } from './pgtable/table.js';

const U64_MAX = (1n << 64n) - 1n;
/** A guest first-stage leaf: present, user, accessed, writable. */
const GUEST_RW = FS_P | FS_US | FS_RW | FS_A;
const E = U.iommu_hwpt_vtd_s1_invalidate;

function tablesIn(guest: GuestMemory): TableMemory {
  return { readU32: (gpa) => guest.readU32(gpa), writeU32: (gpa, v) => guest.writeU32(gpa, v), allocTable: () => guest.alloc(4096) };
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
    const s1 = new PageTable(tablesIn(guest), FS_FORMAT, 4);
    s1.map(iova, ipa, 4096, GUEST_RW);
    return {
      data: { type: U.IOMMU_HWPT_DATA_VTD_S1, bytes: U.iommu_hwpt_vtd_s1.encode({ pgtbl_addr: BigInt(s1.root), addr_width: 48, flags: 0n }) },
      map(va, pa) {
        s1.unmap(va, 4096);
        s1.map(va, pa, 4096, GUEST_RW);
      },
    };
  },
  invalidation: {
    target: 'nested',
    type: U.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    entryLen: E.size,
    // addr 0 with npages U64_MAX: the guest's "everything" (a whole-PASID P_IOTLB).
    flushAll: () => [E.encode({ addr: 0n, npages: U64_MAX, flags: 0, __reserved: 0 })],
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
      expect(last.slice(0, 2)).toEqual([0x0310, -1]);
      return last[3]!;
    },
    check: (g, ctx) => {
      expect(g.faults.map((r) => r.perm & U.IOMMU_PGFAULT_PERM_READ)).toEqual([U.IOMMU_PGFAULT_PERM_READ]);
      ctx.stage1.map!(Number(g.faults[0]!.addr), ctx.guest.base + 0x10_0000);
    },
  },
};

runComplianceSuite(vtdKit);

describe('the VT-d kit is a real check', () => {
  it('a unit whose user invalidations never reach the IOTLB keeps the stale page the suite looks for', async () => {
    const broken: NoViommuKit = {
      ...vtdKit,
      createHost() {
        const made = vtdKit.createHost();
        const drv = made.host.driver('dmar0') as ReturnType<typeof vtd>;
        // Reports every entry handled (entryNum left as passed) and flushes nothing.
        drv.invalidateUser = () => undefined;
        return made;
      },
    };
    const f = buildFlow(broken);
    const read = await remapGuestPage(f);
    const entries = vtdKit.invalidation.flushAll(f);
    expect(f.nested.invalidate({ type: vtdKit.invalidation.type, entryLen: vtdKit.invalidation.entryLen, entries })).toEqual({ ok: true, handled: 1 });
    // What the suite's staleness test would catch: the new mapping never shows.
    expect(await read()).toBe('old page');
    f.iommufd.teardown();
  });
});
