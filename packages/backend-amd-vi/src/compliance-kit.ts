// The compliance kit of the AMD-Vi backend (@viommu/backend-amd-vi/compliance-kit), with
// `nested: true` (the kernel's dormant nested.c allocator installed on the vIOMMU, ADR 0100), and
// what other runners reuse of it (the harness's workload). The guest's GCR3 table and x86-64 (v2) page tables
// live in guest RAM; the nested data is the guest DTE (IOMMU_HWPT_DATA_AMD_GUEST). Linux 7.2.13
// has no guest invalidation for AMD (no cache_invalidate on the vIOMMU or the nested domain), so
// the kit has no `invalidation`: it declares the refresh a VMM can do instead (a new nested HWPT
// from the guest DTE under a new guest DomainID, so a new hDomID, replacing the attachment), and
// the suite checks HWPT_INVALIDATE is EOPNOTSUPP and the remapped page stays stale until then.
// No vEVENTQ or HW queue type exists upstream. Page requests: a PASID-tagged guest miss of the PRI
// device on a fault-capable nested HWPT goes through the PPR log to the FAULT queue.
// Jest-free: `viommu conformance` runs this kit in-process.

import { expectEqual, type AnyComplianceKit, type ComplianceKit } from '@viommu/backend-compliance/testing';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { amdVi, type AmdViOptions } from './driver/driver.js';
import { AmdGuestStage1 } from './guest/guest-stage1.js';

/** The guest's DeviceID for the device (VDEVICE_ALLOC virt_id). */
export const GUEST_DEV_ID = 0x0310n;
/** The PASID the kit's page requests use (PASID 0 never becomes a page request, ppr.c). */
export const PRI_PASID = 1;

let guestDomainIds = 0;
/** Guest DomainIDs for refreshes: 6, 7, ... (the kit's first nested HWPT uses 5). */
function nextGuestDomainId(): number {
  return 6 + (guestDomainIds++ % 0xfff0);
}

/** The guest structures behind each stage-1's vendor data. */
const stages = new WeakMap<Uint8Array, AmdGuestStage1>();

/** The kit over AMD-Vi units built with `options` (and `nested: true`). */
export function amdKit(options: Partial<AmdViOptions> = {}): ComplianceKit {
  return {
    name: 'AMD-Vi (nested: true)',
    createHost: () => ({
      host: createSimHost({
        iommus: [amdVi({ name: 'ivhd0', nested: true, ...options }), amdVi({ name: 'ivhd1', nested: true, ...options })],
        devices: [
          { name: 'nic0', iommu: 'ivhd0', rid: 0x0310, pasidBits: 8, ats: false, pri: true },
          { name: 'nic1', iommu: 'ivhd1', rid: 0x0410, pasidBits: 8, ats: false, pri: false },
        ],
      }),
      iommu: 'ivhd0',
      device: 'nic0',
      foreignDevice: 'nic1',
    }),
    // Clear of the MSI window (0xfee0_0000) and the HyperTransport hole.
    guestRam: { ipa: 0x4000_0000, bytes: 2 << 20 },
    hwInfoType: U.IOMMU_HW_INFO_TYPE_AMD,
    // Upstream accepts any non-zero type for the destroy-only vIOMMU; there is no AMD type constant.
    viommu: { type: 0x1234 },
    virtId: GUEST_DEV_ID,
    buildStage1(guest, iova, ipa) {
      // PASID 0 for requests without one (GIoV), and the page-request PASID.
      const g = new AmdGuestStage1(guest, { domainId: 5, pasids: [0, PRI_PASID], ppr: true });
      g.map(iova, ipa);
      stages.set(g.data.bytes, g);
      return { data: g.data, map: (va, pa) => g.map(va, pa) };
    },
    refresh: {
      what: 'the VMM allocates a nested HWPT from the guest DTE with a new guest DomainID and replaces the attachment',
      // A new gDomID, not the same data again: nested_attach_device only rewrites and flushes the
      // DTE, and the same gDomID maps to the same (ref-counted) hDomID, whose IOTLB entries nothing
      // upstream drops. A new gDomID gets a new hDomID with nothing cached.
      apply(ctx) {
        const fresh = ctx.viommu.allocNested(ctx.device, stages.get(ctx.stage1.data.bytes)!.withDomainId(nextGuestDomainId()));
        ctx.device.attach(fresh);
        return fresh;
      },
    },
    pageFault: {
      // A guest miss at `addr` with a PASID: the IOMMU logs a PPR, the driver reports it to the
      // FAULT queue; `check` maps the page (nothing cached for it) before the suite answers
      // SUCCESS, the device retries and completes, and COMPLETE_PPR_REQUEST carried the code.
      provoke: async (ctx, addr) => {
        await ctx.host.device(ctx.deviceName).dma.read(addr, 4, { pasid: PRI_PASID });
        const drv = ctx.host.driver('ivhd0') as ReturnType<typeof amdVi>;
        const last = drv.pprResponses.at(-1)!;
        expectEqual(last.slice(0, 2), [0x0310, PRI_PASID], 'the COMPLETE_PPR_REQUEST\'s [DeviceID, PASID]');
        return last[3]!;
      },
      check: (g, ctx) => {
        expectEqual(g.faults.map((r) => [r.pasid, r.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID]), [[PRI_PASID, U.IOMMU_PGFAULT_FLAGS_PASID_VALID]], 'the page requests\' [PASID, PASID_VALID]');
        ctx.stage1.map!(Number(g.faults[0]!.addr), ctx.guest.base + 0x10_0000);
      },
    },
  };
}

/** The kit with the default options (`nested: true`, no experimental hardware vIOMMU). */
export const amdViKit = amdKit();

/** Every kit the backend proves itself with, in the order its tests and `viommu conformance` run them. */
export const complianceKits: readonly AnyComplianceKit[] = [amdViKit];
