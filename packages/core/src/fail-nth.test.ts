// fail_nth sweeps (in the spirit of tools/testing/selftests/iommu/iommufd_fail_nth.c): run a
// scenario with the Nth failure point failing, for N = 1, 2, ... until a run completes untouched;
// after each run every error must be an errno, the invariants must hold, and closing the process
// must free every object, domain and binding.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { isErrnoError } from '@viommu/uapi';
import { createSimHost } from './host/sim-host.js';
import { checkAllReleased, checkInvariants } from './invariants.js';
import type { SimProcess } from './process/sim-process.js';
import { call } from './testing/harness.js';
import { simpleDriver } from './testing/simple-driver.js';

type Scenario = (proc: SimProcess, paths: string[]) => Promise<void> | void;

async function sweep(scenario: Scenario): Promise<number> {
  for (let n = 1; n < 10000; n++) {
    const drv = simpleDriver({ name: 'iommu0', dirtyTracking: true, reserved: [{ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' }] });
    const host = createSimHost({ iommus: [drv], devices: [{ name: 'd0', iommu: 'iommu0', rid: 1, pasidBits: 8 }, { name: 'd1', iommu: 'iommu0', rid: 2 }] });
    const proc = host.spawn();
    const frames = host.physical.allocatedFrameCount;
    host.failNth.arm(n);
    try {
      await scenario(proc, [host.device('d0').path, host.device('d1').path]);
    } catch (e) {
      if (!isErrnoError(e)) throw e;
      if (!host.failNth.fired) throw e; // an error that was not injected is a scenario bug
    }
    const fired = host.failNth.fired;
    host.failNth.disarm();
    checkInvariants(host);
    proc.exit();
    checkAllReleased(host);
    expect(drv.liveDomains.size).toBe(0);
    expect(drv.attachments.size).toBe(0);
    // Only the process's own user memory remains allocated.
    expect(host.physical.allocatedFrameCount - frames).toBe(proc.memory.list().reduce((a, m) => a + m.length / 4096, 0));
    if (!fired) return n;
  }
  throw new Error('sweep did not converge');
}

const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;

describe('fail_nth', () => {
  it('basic: IOAS, map, bind, auto domain, DMA, replace, unmap, destroy', async () => {
    const points = await sweep(async (proc, paths) => {
      const fd = proc.open('/dev/iommu');
      const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
      const buf = proc.memory.alloc(64 * 1024);
      call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, user_va: buf.addr, length: 32768n, iova: 0x10000n });
      const ranges = proc.memory.alloc(4096);
      call(proc, fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 0, allowed_iovas: ranges.addr });
      const dfd = proc.open(paths[0]!);
      const dev = call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }).out_devid;
      call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas });
      call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: RW, ioas_id: ioas, user_va: buf.addr + 32768n, length: 32768n });
      const d1 = proc.open(paths[1]!);
      call(proc, d1, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd });
      call(proc, d1, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas });
      const hwpt = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING | U.IOMMU_HWPT_ALLOC_PASID }).out_hwpt_id;
      call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: hwpt });
      call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 3, pt_id: hwpt });
      call(proc, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
      const data = proc.memory.alloc(4096);
      call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: dev, data_len: 64, data_uptr: data.addr });
      const ioas2 = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
      call(proc, fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, { flags: RW | U.IOMMU_IOAS_MAP_FIXED_IOVA, dst_ioas_id: ioas2, src_ioas_id: ioas, length: 32768n, dst_iova: 0x10000n, src_iova: 0x10000n });
      call(proc, d1, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas2 });
      call(proc, fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: 0n, length: (1n << 64n) - 1n });
      call(proc, dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
      proc.close(d1);
      call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: ioas2 });
    });
    // The sweep really exercised failure points along the way.
    expect(points).toBeGreaterThan(10);
  });

  it('closing the iommufd first, devices afterwards, at every failure point', async () => {
    await sweep((proc, paths) => {
      const fd = proc.open('/dev/iommu');
      const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
      const dfd = proc.open(paths[0]!);
      call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd });
      call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas });
      proc.close(fd);
      proc.close(dfd);
    });
  });
});
