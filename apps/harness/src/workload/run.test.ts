// The workload on every vendor, and proof that its checks catch a broken IOMMU: a translation
// shifted by one page, an invalidation that never reaches the IOTLB, a vEVENT with the wrong ID.
import { describe, expect, it } from '@jest/globals';
import { CMDQ_OP_TLBI_NH_ASID, encodeCommand } from '@viommu/backend-smmuv3-cmdqv';
import type { DriverV1 } from '@viommu/core';
import type { VendorSession } from './kit.js';
import { vendorKits } from './kits/index.js';
import { mockKit } from './kits/mock.js';
import { smmuv3Kit } from './kits/smmuv3.js';
import { DEFAULT_SHAPE, best, defaultRounds, guestRamFor, runVendor, type VendorResult } from './run.js';

const SMALL = { devices: 3, viommus: 2, pagesPerDevice: 4, guestRamBytes: 0 };

function failed(r: VendorResult): string[] {
  return r.checks.filter((c) => !c.ok).map((c) => c.name);
}

/** The driver behind every device of the session (one IOMMU instance per vendor host). */
function driverOf(s: VendorSession): DriverV1 {
  return s.host.driver(s.host.device(s.devices[0]!).driver.name);
}

describe('the VM workload', () => {
  it.each(vendorKits.map((k) => [k.id, k] as const))('passes every check on %s with verified data', async (_id, kit) => {
    const r = await runVendor(kit, { shape: SMALL, rounds: 1 });
    expect(failed(r)).toEqual([]);
    expect(r.ok).toBe(true);
    // 12 verified reads, 3 writes, the throughput pass (12), and 2 reads per remap where the stage-1 is walked.
    const remapReads = r.supports.stage1Walk ? 2 * 3 * (r.supports.hwQueueInvalidation ? 2 : 1) : 0;
    expect(r.counters.translations).toBe(12 + 3 + 12 + remapReads);
    // One entry per device in the staleness check and per timed pass (one with --rounds 1); a vendor
    // without guest invalidation (AMD-Vi upstream) refreshes instead: no HWPT_INVALIDATE entries.
    expect(r.counters.invalidations.ioctl).toBe(r.supports.guestInvalidation ? 3 + 3 : 0);
    expect(r.throughput.invalidationsPerSec).toBeGreaterThan(0);
    expect(r.counters.staleObserved).toBe(r.supports.hwQueueInvalidation ? 6 : 3);
    expect(r.counters.events).toBe(r.supports.vevents ? 3 : 0);
    expect(r.counters.faults).toBe(r.supports.iopf ? 3 : 0);
    expect(r.memory.guestRamBytes).toBe(guestRamFor(SMALL));
    expect(r.memory.hostPhysicalBytes).toBeGreaterThanOrEqual(r.memory.guestRamBytes);
  });

  it('fails when the IOMMU translates to the wrong page', async () => {
    for (const kit of [mockKit, smmuv3Kit]) {
      const r = await runVendor(kit, {
        shape: SMALL,
        rounds: 1,
        onOpen: (s) => {
          const d = driverOf(s);
          const translate = d.translate.bind(d);
          d.translate = (dev, pasid, iova, access, out) => {
            const rc = translate(dev, pasid, iova, access, out);
            if (rc === 0) out.pa += 4096; // a corrupted translation: the neighbouring frame
            return rc;
          };
        },
      });
      expect(r.ok).toBe(false);
      expect(failed(r)).toContain('DMA reads through nested translation return the guest data');
      expect(r.checks.find((c) => c.name.startsWith('DMA reads'))!.detail).toMatch(/^12\/12 pages wrong/);
    }
  });

  it('fails when an invalidation does not reach the IOTLB', async () => {
    const r = await runVendor(smmuv3Kit, {
      shape: SMALL,
      rounds: 1,
      onOpen: (s) => {
        // The guest's TLBI names an ASID nobody uses: accepted and handled, but nothing of this device is dropped.
        Object.assign(s, { invalidation: { ...s.invalidation, flush: () => [encodeCommand({ opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x7fff })] } });
      },
    });
    expect(failed(r)).toContain('HWPT_INVALIDATE drops it');
    expect(r.ok).toBe(false);
  });

  it('fails when a vEVENT names the wrong device', async () => {
    const bad = await runVendor(mockKit, {
      shape: SMALL,
      rounds: 1,
      onOpen: (s) => {
        const ve = s.vevent!;
        Object.assign(s, { vevent: { ...ve, check: (p: Uint8Array, dev: never) => ve.check(p, { ...(dev as object), vdevice: { virtId: 0x999n } } as never) } });
      },
    });
    expect(failed(bad)).toContain('vEVENTs reach the guest with its own device IDs');
  });

  it('takes rates from the fastest round, so cold or stalled rounds do not move them', () => {
    expect(best([])).toBe(0);
    expect(best([5, 1.5, 400])).toBe(1.5);
    // About 16k timed page reads by default, 2 to 256 passes.
    expect(defaultRounds(DEFAULT_SHAPE)).toBe(256);
    expect(defaultRounds({ devices: 64, viommus: 8, pagesPerDevice: 64, guestRamBytes: 0 })).toBe(4);
    expect(defaultRounds({ devices: 1000, viommus: 64, pagesPerDevice: 16, guestRamBytes: 0 })).toBe(2);
  });

  it('sizes guest RAM for the tables and data, and honours a larger request', () => {
    expect(guestRamFor({ devices: 1, viommus: 1, pagesPerDevice: 1, guestRamBytes: 0 }) % (2 << 20)).toBe(0);
    expect(guestRamFor({ devices: 1, viommus: 1, pagesPerDevice: 1, guestRamBytes: 64 << 20 })).toBe(64 << 20);
    expect(guestRamFor({ devices: 1000, viommus: 64, pagesPerDevice: 16, guestRamBytes: 0 })).toBeGreaterThan(1000 * 17 * 4096);
  });
});
