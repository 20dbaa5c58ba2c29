import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { call, errnoOf } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';

function setup() {
  const drv = simpleDriver({ name: 'iommu0', dirtyTracking: true, hwInfo: { type: U.IOMMU_HW_INFO_TYPE_INTEL_VTD, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) } });
  const host = createSimHost({ iommus: [drv], devices: [{ name: 'nic0', iommu: 'iommu0', rid: 0x100, pasidBits: 20 }, { name: 'nic1', iommu: 'iommu0', rid: 0x101 }] });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  return { drv, host, proc, fd };
}

function bind(proc: ReturnType<typeof setup>['proc'], path: string, iommufd: number) {
  const dfd = proc.open(path);
  const b = call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd });
  return { dfd, devId: b.out_devid };
}

describe('device flow: bind, attach to an IOAS, DMA, detach, close', () => {
  it('translates device DMA through an automatic domain and tears everything down', async () => {
    const { drv, host, proc, fd } = setup();
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    expect(ioas).toBe(1);
    const buf = proc.memory.alloc(8192);
    buf.bytes.set([0xde, 0xad, 0xbe, 0xef], 4096);
    const map = call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
      ioas_id: ioas,
      user_va: buf.addr,
      length: 8192n,
      iova: 0x100000n,
    });
    expect(map.iova).toBe(0x100000n);

    const { dfd, devId } = bind(proc, host.device('nic0').path, fd);
    expect(devId).toBe(2);
    const at = call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas });
    expect(at.pt_id).toBe(3); // the automatic HWPT_PAGING
    expect(drv.liveDomains.size).toBe(1);

    const got = await host.device('nic0').dma.read(0x101000n, 4);
    expect([...got]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    await host.device('nic0').dma.write(0x100010n, new Uint8Array([7, 7]));
    expect([...buf.bytes.subarray(0x10, 0x12)]).toEqual([7, 7]);
    await expect(host.device('nic0').dma.read(0x200000n, 4)).rejects.toMatchObject({ code: 'EFAULT', reason: 'not mapped' });

    // The auto HWPT, the device and the IOAS are in use.
    expect(errnoOf(() => call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 3 }))).toBe('EBUSY');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: devId }))).toBe('EBUSY');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: ioas }))).toBe('EBUSY');

    // A second device reuses the automatic domain.
    const second = bind(proc, host.device('nic1').path, fd);
    expect(call(proc, second.dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas }).pt_id).toBe(3);
    expect(drv.liveDomains.size).toBe(1);

    call(proc, dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
    call(proc, second.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
    // The last detach destroyed the automatic HWPT: its ID is free again.
    expect(errnoOf(() => call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 3 }))).toBe('ENOENT');
    expect(drv.liveDomains.size).toBe(0);

    // Closing /dev/iommu while devices are bound destroys nothing; closing the devices releases it.
    proc.close(fd);
    expect(host.contexts.size).toBe(1);
    proc.close(dfd);
    proc.close(second.dfd);
    expect(host.contexts.size).toBe(0);
  });

  it('HWPT_ALLOC paging, GET_HW_INFO and dirty tracking', () => {
    const { proc, fd, host } = setup();
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    const { devId } = bind(proc, host.device('nic0').path, fd);
    const hw = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING });
    expect(hw.out_hwpt_id).toBe(3);
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: 99 }))).toBe('EINVAL');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: 99, pt_id: ioas }))).toBe('ENOENT');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: 1 << 7 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_FAULT_ID_VALID | U.IOMMU_HWPT_ALLOC_NEST_PARENT }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, data_len: 8 }))).toBe('EINVAL');

    const data = proc.memory.alloc(4096);
    data.bytes.fill(0xaa);
    const info = call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, data_len: 16, data_uptr: data.addr });
    expect(info.out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_INTEL_VTD);
    expect(info.data_len).toBe(8);
    expect(info.out_max_pasid_log2).toBe(20);
    expect(info.out_capabilities).toBe(BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING | U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED));
    expect([...data.bytes.subarray(0, 17)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa]);
    expect(errnoOf(() => call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, flags: U.IOMMU_HW_INFO_FLAG_INPUT_TYPE, in_data_type: U.IOMMU_HW_INFO_TYPE_AMD }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, __reserved: [0, 1, 0] }))).toBe('EOPNOTSUPP');

    call(proc, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: 3, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: ioas }))).toBe('ENOENT');
    call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 3 });
  });
});
