// The client on the SMMUv3 backend with Tegra241 CMDQV: vendor data written back by VIOMMU_ALLOC
// (the VINTF's mmap offset), the VINTF page mapped through the iommufd, LVCMDQs as HW queues in
// ascending order, and teardown undoing the mmap and the queues; plus GET_HW_INFO and IOVA ranges.

import { describe, expect, it } from '@jest/globals';
import { Iommufd } from '@viommu/client';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { smmuv3Cmdqv } from './index.js';

function boot() {
  const host = createSimHost({ iommus: [smmuv3Cmdqv({ name: 'smmu0' })], devices: [{ name: 'nic0', iommu: 'smmu0', rid: 0x100, pasidBits: 8 }] });
  const proc = host.spawn();
  const iommufd = Iommufd.open(proc);
  const nic = iommufd.bindDevice(host.device('nic0').path);
  return { host, proc, iommufd, nic };
}

describe('@viommu/client on SMMUv3 + Tegra241 CMDQV', () => {
  it('reports GET_HW_INFO for the default and the requested type', () => {
    const { iommufd, nic } = boot();
    const smmu = nic.hwInfo();
    expect(smmu.type).toBe(U.IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    expect(smmu.data.length).toBe(U.iommu_hw_info_arm_smmuv3.size);
    expect(smmu.maxPasidLog2).toBe(8);
    const cmdqv = nic.hwInfo({ type: U.IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV });
    expect(cmdqv.type).toBe(U.IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV);
    expect(U.iommu_hw_info_tegra241_cmdqv.decode(cmdqv.data).version).toBe(1);
    expect(() => nic.hwInfo({ type: U.IOMMU_HW_INFO_TYPE_INTEL_VTD })).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP', op: 'hwInfo' }));
    iommufd.teardown();
  });

  it('lists the IOVA ranges with the device\'s software MSI window carved out once attached', () => {
    const { iommufd, nic } = boot();
    const ioas = iommufd.allocIoas();
    expect(ioas.iovaRanges().ranges).toEqual([{ start: 0n, last: (1n << 64n) - 1n }]);
    nic.attach(ioas);
    const { ranges } = ioas.iovaRanges();
    // The SMMU's MSI window (0x800_0000 + 1 MiB) is reserved: the ranges stop below it and resume after.
    expect(ranges[0]).toEqual({ start: 0n, last: 0x7ff_ffffn });
    expect(ranges[1]!.start).toBe(0x810_0000n);
    iommufd.teardown();
  });

  it('maps the VINTF page at the offset VIOMMU_ALLOC wrote back, runs LVCMDQs, and undoes both on teardown', () => {
    const { host, proc, iommufd, nic } = boot();
    const ram = proc.memory.alloc(64 * 1024);
    const ioas = iommufd.allocIoas();
    ioas.map(ram.addr, ram.bytes.length, { iova: 0x4000_0000n });
    const s2 = ioas.allocNestParent(nic);
    const viommu = iommufd.allocViommu({ type: U.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, device: nic, parent: s2, data: new Uint8Array(16) });
    const out = U.iommu_viommu_tegra241_cmdqv.decode(viommu.data!);
    expect(out.out_vintf_mmap_length).toBe(0x10000n);
    const page0 = viommu.mmap(out.out_vintf_mmap_offset, Number(out.out_vintf_mmap_length));
    expect(page0.bytes.length).toBe(0x10000);
    // While mapped, the page holds the vIOMMU: a bare IOMMU_DESTROY is EBUSY (Viommu.destroy unmaps first).
    expect(() => iommufd.call('destroy', viommu.label, U.IOMMU_DESTROY, U.iommu_destroy, { id: viommu.id })).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    viommu.allocHwQueue({ type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 0, iova: 0x4000_0000n, length: 4096 });
    // Index 2 before index 1: the kernel's EIO for out-of-order LVCMDQs.
    expect(() => viommu.allocHwQueue({ type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 2, iova: 0x4000_1000n, length: 4096 }))
      .toThrow(expect.objectContaining({ code: 'EIO', op: 'allocHwQueue' }));
    viommu.allocHwQueue({ type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 1, iova: 0x4000_1000n, length: 4096 });
    iommufd.teardown();
    expect(host.contexts.size).toBe(0);
    expect(host.leaks).toEqual([]);
  });
});
