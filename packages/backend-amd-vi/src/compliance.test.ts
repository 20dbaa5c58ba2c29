// The compliance suite on the AMD-Vi backend (the kit is in ./compliance-kit.ts, which `viommu
// conformance` runs too), a check that the kit's refresh is what drops the stale page, and the
// upstream default's boundary.

import { describe, expect, it } from '@jest/globals';
import { GuestMemory, buildFlow, errnoOf, remapGuestPage, runComplianceSuite } from '@viommu/backend-compliance';
import { Iommufd } from '@viommu/client';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { GUEST_DEV_ID, amdViKit, complianceKits } from './compliance-kit.js';
import { amdVi } from './driver/driver.js';

for (const kit of complianceKits) runComplianceSuite(kit);

describe('the AMD-Vi kit is a real check', () => {
  it('re-attaching, or a nested HWPT from the same guest DTE (same gDomID, same hDomID), keeps the stale page; the kit\'s refresh drops it', async () => {
    const f = buildFlow(amdViKit);
    const read = await remapGuestPage(f);
    f.device.attach(f.nested);
    expect(await read()).toBe('old page');
    f.device.attach(f.viommu.allocNested(f.device, f.stage1.data));
    expect(await read()).toBe('old page');
    amdViKit.refresh!.apply(f);
    expect(await read()).toBe('new page');
    f.iommufd.teardown();
  });
});

describe('the default (no options) is still the upstream 7.2.13 boundary', () => {
  it('GET_HW_INFO AMD; a destroy-only vIOMMU: nested HWPT (on it or on the parent), HWPT_INVALIDATE and HW queue EOPNOTSUPP', () => {
    const host = createSimHost({ iommus: [amdVi({ name: 'ivhd0' })], devices: [{ name: 'nic0', iommu: 'ivhd0', rid: 0x0310, pasidBits: 8, pri: true }] });
    const proc = host.spawn();
    const fd = Iommufd.open(proc);
    const device = fd.bindDevice(host.device('nic0').path);
    expect(device.hwInfo().type).toBe(U.IOMMU_HW_INFO_TYPE_AMD);
    const ram = proc.memory.alloc(amdViKit.guestRam.bytes);
    const ioas = fd.allocIoas();
    ioas.map(ram.addr, amdViKit.guestRam.bytes, { iova: BigInt(amdViKit.guestRam.ipa) });
    const s2 = ioas.allocNestParent(device);
    const viommu = fd.allocViommu({ type: 0x1234, device, parent: s2 });
    viommu.allocVdevice(device, GUEST_DEV_ID);
    const stage1 = amdViKit.buildStage1(new GuestMemory(amdViKit.guestRam.ipa, ram.bytes), 0x1234_5000, amdViKit.guestRam.ipa + 0x10_0000);
    const before = fd.objects.length;
    expect(errnoOf(() => viommu.allocNested(device, stage1.data))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => s2.allocNested(device, stage1.data))).toBe('EOPNOTSUPP');
    expect(viommu.invalidate({ type: 0, entryLen: 16, entries: [new Uint8Array(16)] })).toMatchObject({ ok: false, handled: 0, error: { code: 'EOPNOTSUPP' } });
    expect(errnoOf(() => viommu.allocHwQueue({ type: 1, index: 0, iova: BigInt(amdViKit.guestRam.ipa), length: 4096 }))).toBe('EOPNOTSUPP');
    expect(fd.objects.length).toBe(before);
    // A vEVENTQ is iommufd's own object (no driver hook in veventq alloc): it is created, and the
    // driver never reports into it.
    expect(viommu.allocVeventq(U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 4).kind).toBe('VEVENTQ');
    fd.teardown();
    proc.exit();
    expect(host.leaks).toEqual([]);
  });
});
