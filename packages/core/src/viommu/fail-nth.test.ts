// fail_nth over the vIOMMU part of the kernel's basic_fail_nth.device scenario
// (tools/testing/selftests/iommu/iommufd_fail_nth.c) on the simulated host and the selftest mock:
// the Nth failure point fails, for N = 1, 2, ... until a run completes untouched. After each run
// every error is an injected errno, the core's invariants hold, and exiting the process frees
// every object, binding and mmap.

import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { isErrnoError } from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { checkAllReleased, checkInvariants } from '../invariants.js';
import { mockIommu } from '../selftest/index.js';
import { Kit } from './scenario-kit.js';

const PAGE = 4096;

async function sweep(scenario: (k: Kit, iova: bigint) => Promise<void> | void): Promise<{ runs: number; points: Set<string> }> {
  const points = new Set<string>();
  for (let n = 1; n < 1000; n++) {
    const host = createSimHost({ iommus: [mockIommu()] });
    const p = host.spawn();
    const k = new Kit(p, p.open('/dev/iommu'));
    // As in the kernel test, the IOAS and its mapping are made before injection starts.
    const ioas = k.ioasAlloc();
    const buffer = p.memory.alloc(PAGE);
    const iova = k.ioasMap(ioas, buffer.addr, PAGE, BigInt(U.MOCK_APERTURE_START));
    host.failNth.arm(n);
    try {
      await scenario(k, iova);
    } catch (e) {
      if (!isErrnoError(e) || !host.failNth.fired) throw e;
    }
    const fired = host.failNth.fired;
    if (host.failNth.firedAt) points.add(host.failNth.firedAt);
    host.failNth.disarm();
    checkInvariants(host);
    p.exit();
    checkAllReleased(host);
    if (!fired) return { runs: n, points };
  }
  throw new Error('sweep did not converge');
}

describe('fail_nth over the vIOMMU family', () => {
  it('basic_fail_nth.device, vIOMMU part: every failure unwinds and exit releases everything', async () => {
    const { runs, points } = await sweep(async (k, iova) => {
      const ioasId = 1; // the IOAS made before injection started
      const md = k.mockDomain(ioasId, U.MOCK_FLAGS_DEVICE_PASID);
      const s2 = k.hwptAlloc(md.idevId, ioasId, U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_PASID);
      const data = k.p.memory.alloc(PAGE);
      const viommu = k.viommuAlloc(md.idevId, s2, U.IOMMU_VIOMMU_TYPE_SELFTEST, { uptr: data.addr, len: U.iommu_viommu_selftest.size });
      // (virt_id 0 as in the kernel test would raise no events: the mock treats 0 as no vDEVICE.)
      k.vdeviceAlloc(viommu, md.idevId, 0x99);
      k.hwQueueAlloc(viommu, 0, iova, PAGE);
      const fault = k.faultAlloc();
      k.p.close(fault.fd);
      const nested = k.hwptAllocNested(md.idevId, s2, U.IOMMU_HWPT_FAULT_ID_VALID, fault.id);
      const q = k.veventqAlloc(viommu, 2);
      const nestedV = k.hwptAllocNested(md.idevId, viommu);
      k.mockDomainReplace(md.stdevId, nestedV);
      k.triggerVevent(md.idevId);
      expect(k.p.read(q.fd, new Uint8Array(64))).toBeGreaterThan(0);
      k.p.close(q.fd);
      const inv = k.invalidate(viommu, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, 12, 1, U.iommu_viommu_invalidate_selftest.encode({ vdev_id: 0x99 }));
      if (inv.error) throw inv.error;
      const m = k.p.mmap(k.fd, Number(U.iommu_viommu_selftest.get(data.bytes, 'out_mmap_length')), U.iommu_viommu_selftest.get(data.bytes, 'out_mmap_offset'));
      void m;
      k.mockDomainReplace(md.stdevId, nested);
    });
    // The sweep reached the family's own failure points, not only the object IDs.
    expect(runs).toBeGreaterThan(15);
    for (const p of ['vdevice:xa_insert', 'veventq:anon_inode_getfile', 'fault:anon_inode_getfile', 'hw_queue:kvzalloc pages']) expect(points).toContain(p);
  });

  it('nested HWPTs on a parent: invalidation, replace, fault delivery and response', async () => {
    const { runs } = await sweep((k) => {
      const md = k.mockDomain(1);
      const parent = k.hwptAlloc(md.idevId, 1, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
      const fault = k.faultAlloc();
      const nested = k.hwptAllocNested(md.idevId, parent);
      const iopf = k.hwptAllocNested(md.idevId, parent, U.IOMMU_HWPT_FAULT_ID_VALID, fault.id);
      const inv = k.invalidate(nested, U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 8, 1, U.iommu_hwpt_invalidate_selftest.encode({ flags: U.IOMMU_TEST_INVALIDATE_FLAG_ALL }));
      if (inv.error) throw inv.error;
      k.mockDomainReplace(md.stdevId, nested);
      k.mockDomainReplace(md.stdevId, iopf);
      k.triggerIopf(md.idevId, 0x1);
      const rec = new Uint8Array(40);
      if (k.p.read(fault.fd, rec) === 40) k.p.write(fault.fd, U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.get(rec, 'cookie'), code: 0 }));
      k.triggerIopf(md.idevId, 0); // left pending: answered INVALID by the teardown
      k.mockDomainReplace(md.stdevId, 1);
      k.destroy(nested);
    });
    expect(runs).toBeGreaterThan(5);
  });

  it('vEVENTQ overflow and reads, vDEVICE tombstone on unbind', async () => {
    const { runs } = await sweep((k) => {
      const md = k.mockDomain(1);
      const s2 = k.hwptAlloc(md.idevId, 1, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
      const viommu = k.viommuAlloc(md.idevId, s2);
      const nested = k.hwptAllocNested(md.idevId, viommu);
      const q = k.veventqAlloc(viommu, 2);
      k.vdeviceAlloc(viommu, md.idevId, 0x88);
      k.mockDomainReplace(md.stdevId, nested);
      for (let i = 0; i < 3; i++) k.triggerVevent(md.idevId);
      k.p.read(q.fd, new Uint8Array(64));
      k.mockDomainReplace(md.stdevId, 1);
      k.destroy(md.stdevId); // unbinds the mock device: its vDEVICE becomes a tombstone
    });
    expect(runs).toBeGreaterThan(5);
  });

  it('HW queues in index order, destroyed in descending order', async () => {
    const { runs } = await sweep((k, iova) => {
      const md = k.mockDomain(1);
      const s2 = k.hwptAlloc(md.idevId, 1, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
      const viommu = k.viommuAlloc(md.idevId, s2);
      const q0 = k.hwQueueAlloc(viommu, 0, iova, PAGE);
      const q1 = k.hwQueueAlloc(viommu, 1, iova + BigInt(PAGE / 2), PAGE / 2);
      k.destroy(q1);
      k.destroy(q0);
      k.ioasUnmap(1, iova, PAGE);
    });
    expect(runs).toBeGreaterThan(5);
  });
});
