// fail_nth sweep over the VT-d nested flow: inject a failure at every failure point in turn (core
// object allocations and the driver's own: domain, nested domain, hw_info, attach) and check each
// run either completes or fails with the injected errno, and that closing the files gives every
// physical frame back and leaks no object.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { GUEST_RW, call, createRig } from './testing/rig.js';

function scenario(r: ReturnType<typeof createRig>): Promise<Uint8Array> {
  const info = r.proc.memory.alloc(24);
  call(r.proc, r.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: r.devId, data_len: 24, data_uptr: info.addr });
  const s2 = r.nestParent();
  const gt = r.guestTable();
  const page = r.galloc(4096);
  r.write(page, 'fail_nth ok');
  gt.map(0x1000, page, 4096, GUEST_RW);
  const fault = call(r.proc, r.fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc);
  const nested = r.nested(s2, { pgtbl_addr: BigInt(gt.root) }, U.IOMMU_HWPT_ALLOC_PASID, fault.out_fault_id);
  r.attach(nested);
  call(r.proc, r.dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 9, pt_id: nested });
  const inv = r.invalidate(nested, [{ addr: 0n, npages: (1n << 64n) - 1n }]);
  if (inv.error) throw Object.assign(new Error(inv.error), { code: inv.error });
  return r.host.device('nic0').dma.read(0x1000n, 11);
}

/** A rig whose process allocations are counted, so frames the driver or core keep can be told apart. */
function countedRig(): { r: ReturnType<typeof createRig>; base: number; userFrames: () => number } {
  const r = createRig();
  const base = r.host.physical.allocatedFrameCount;
  let user = 0;
  const alloc = r.proc.memory.alloc.bind(r.proc.memory);
  r.proc.memory.alloc = (length: number) => {
    user += Math.ceil(length / 4096);
    return alloc(length);
  };
  return { r, base, userFrames: () => user };
}

/** Closes every file and unplugs the device: returns the frames left beyond the process's own memory. */
function teardown(c: ReturnType<typeof countedRig>): number {
  c.r.proc.exit(); // closes every fd (the fault fd holds the iommufd context too)
  c.r.host.removeDevice('nic0');
  return c.r.host.physical.allocatedFrameCount - c.base - c.userFrames();
}

describe('fail_nth over the nested flow', () => {
  it('every injected failure fails cleanly and leaves nothing behind', async () => {
    const ref = countedRig();
    expect(new TextDecoder().decode(await scenario(ref.r))).toBe('fail_nth ok');
    // Unplugging frees the device's PASID directory, which the rig allocated before counting began.
    expect(teardown(ref)).toBe(-1);
    let n = 1;
    for (;; n++) {
      const c = countedRig();
      c.r.host.failNth.arm(n);
      let failed: string | undefined;
      try {
        await scenario(c.r);
      } catch (e) {
        failed = (e as { code?: string }).code;
      }
      const fired = c.r.host.failNth.fired;
      c.r.host.failNth.disarm();
      if (fired) expect([n, c.r.host.failNth.firedAt, failed]).toEqual([n, c.r.host.failNth.firedAt, 'ENOMEM']);
      expect([n, c.r.host.failNth.firedAt, teardown(c)]).toEqual([n, c.r.host.failNth.firedAt, -1]);
      expect(c.r.host.leaks).toEqual([]);
      if (!fired) break;
    }
    expect(n).toBeGreaterThan(10); // 15 points at the time of writing
  });
});
