// End to end through the simulated host and the iommufd uAPI, as a VMM drives a Grace-like guest:
// bind, nest parent, Tegra241 vIOMMU, vDEVICE, nested HWPT from the guest STE, DMA through the
// guest's tables in its RAM, HWPT_INVALIDATE, a VCMDQ the guest drives through the mmapped page,
// and a vEVENT.
import { describe, expect, it } from '@jest/globals';
import { call, createVmmRig, errno } from '@viommu/backend-compliance';
import * as U from '@viommu/uapi';
import { VCMDQ_CONFIG, VCMDQ_CONS, VCMDQ_PROD } from './cmdqv/cmdqv.js';
import { smmuv3Cmdqv } from './driver/driver.js';
import { encodeCd } from './formats/cd.js';
import { CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA, encodeCommand } from './formats/command.js';
import { EVT_ID_TRANSLATION_FAULT, decodeEvent } from './formats/event.js';
import { STE_CFG_S1_TRANS, encodeSte } from './formats/ste.js';
import { TableBuilder, s1LeafAttrs } from './pgtable/builder.js';
import { guestRam } from './testing/guest-ram.js';

const RAM_IPA = 0x4000_0000;
const RAM_BYTES = 4 << 20;
const VSID = 0x10;

describe('a nested guest on SMMUv3 + Tegra241 CMDQV through iommufd', () => {
  it('runs the VMM flow end to end', async () => {
    // The VMM: /dev/iommu, guest RAM mapped at IPA RAM_IPA in the IOAS (the nest parent's stage 2),
    // and the device bound.
    const { drv, host, proc, fd, ram, ioas, dfd, devId } = createVmmRig({
      driver: smmuv3Cmdqv({ name: 'smmu0' }),
      devices: [{ name: 'nic0', rid: 0x100, pasidBits: 0, ats: true }],
      ramGpa: RAM_IPA,
      ramBytes: RAM_BYTES,
    });
    // The guest's own allocator over its RAM (its tables aligned to their size).
    const { alloc: galloc, tables } = guestRam(ram.bytes, RAM_IPA);
    const gtables = new TableBuilder(tables, 12, 48, 0);

    // GET_HW_INFO: the raw IDRs, and the CMDQV info when asked for it.
    const info = proc.memory.alloc(64);
    const hw = call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, data_len: 64, data_uptr: info.addr });
    expect(hw.out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    expect(hw.data_len).toBe(40);
    expect(U.iommu_hw_info_arm_smmuv3.decode(info.bytes.subarray(0, 40)).idr).toEqual([...drv.smmu.idr]);
    const cq = call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, {
      dev_id: devId, flags: U.IOMMU_HW_INFO_FLAG_INPUT_TYPE, in_data_type: U.IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, data_len: 64, data_uptr: info.addr,
    });
    expect([cq.out_data_type, cq.data_len]).toEqual([U.IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, 8]);

    // Stage 2 and the vIOMMU. The type is checked before the parent (get_viommu_size first).
    expect(errno(() => call(proc, fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: 3, dev_id: devId, hwpt_id: 999 }))).toBe('EOPNOTSUPP');
    expect(errno(() => call(proc, fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: 1, dev_id: devId, hwpt_id: 999 }))).toBe('ENOENT');
    const s2 = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id;
    const vdata = proc.memory.alloc(16);
    const viommu = call(proc, fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, {
      type: U.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, dev_id: devId, hwpt_id: s2, data_len: 16, data_uptr: vdata.addr,
    }).out_viommu_id;
    const out = U.iommu_viommu_tegra241_cmdqv.decode(vdata.bytes);
    expect(out.out_vintf_mmap_length).toBe(0x10000n);
    call(proc, fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: viommu, dev_id: devId, virt_id: BigInt(VSID) });
    const vq = call(proc, fd, U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: viommu, type: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventq_depth: 8 });

    // The guest's stage 1 and CD in its RAM, then the nested HWPT from its STE.
    const data = galloc(4096);
    ram.bytes.set(new TextEncoder().encode('guest data'), data - RAM_IPA);
    gtables.map(0x1234_5000, data, 4096, s1LeafAttrs({ ap: 1 }));
    const cd = galloc(64, 64);
    ram.bytes.set(encodeCd({ v: true, aa64: true, t0sz: 16, ips: 5, r: true, a: true, epd1: true, asid: 0x42, ttb0: gtables.root }), cd - RAM_IPA);
    const ste = proc.memory.alloc(16);
    ste.bytes.set(encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cd }).subarray(0, 16));
    const bad = proc.memory.alloc(16);
    bad.bytes.set(encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cd, mev: true }).subarray(0, 16));
    expect(errno(() => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      dev_id: devId, pt_id: viommu, data_type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16, data_uptr: bad.addr,
    }))).toBe('EIO');
    const nested = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      dev_id: devId, pt_id: viommu, data_type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16, data_uptr: ste.addr,
    }).out_hwpt_id;
    call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: nested });

    const nic = host.device('nic0');
    expect(new TextDecoder().decode(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');

    // Remap in the guest: stale until the guest's TLBI reaches the hardware.
    const moved = galloc(4096);
    ram.bytes.set(new TextEncoder().encode('moved data'), moved - RAM_IPA);
    gtables.unmap(0x1234_5000, 4096);
    gtables.map(0x1234_5000, moved, 4096, s1LeafAttrs({ ap: 1 }));
    expect(new TextDecoder().decode(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    const cmds = proc.memory.alloc(32);
    cmds.bytes.set(encodeCommand({ opcode: CMDQ_OP_TLBI_NH_VA, asid: 0x42, addr: 0x1234_5000, leaf: true }));
    cmds.bytes.set(encodeCommand({ opcode: 0x03, sid: VSID }), 16); // CFGI_STE: not accepted
    const inv = U.iommu_hwpt_invalidate.encode({ hwpt_id: viommu, data_uptr: cmds.addr, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entry_len: 16, entry_num: 2 });
    expect(errno(() => proc.ioctl(fd, U.IOMMU_HWPT_INVALIDATE, inv))).toBe('EIO');
    expect(U.iommu_hwpt_invalidate.decode(inv).entry_num).toBe(1);
    expect(new TextDecoder().decode(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data'); // converted, never issued
    inv.set(U.iommu_hwpt_invalidate.encode({ hwpt_id: viommu, data_uptr: cmds.addr, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entry_len: 16, entry_num: 1 }));
    proc.ioctl(fd, U.IOMMU_HWPT_INVALIDATE, inv);
    expect(new TextDecoder().decode(await nic.dma.read(0x1234_5000n, 10))).toBe('moved data');
    const empty = U.iommu_hwpt_invalidate.encode({ hwpt_id: viommu, data_uptr: cmds.addr, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entry_len: 16, entry_num: 0 });
    expect(errno(() => proc.ioctl(fd, U.IOMMU_HWPT_INVALIDATE, empty))).toBe('EINVAL');

    // A VCMDQ in guest RAM, driven through the mmapped VINTF page: no ioctl per command.
    const qIpa = galloc(4096, 4096);
    call(proc, fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, {
      viommu_id: viommu, type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 0, nesting_parent_iova: BigInt(qIpa), length: 4096n,
    });
    const page = proc.mmap(fd, 0x10000, out.out_vintf_mmap_offset);
    const regs = new DataView(page.bytes.buffer, page.bytes.byteOffset, 0x10000);
    gtables.unmap(0x1234_5000, 4096);
    gtables.map(0x1234_5000, data, 4096, s1LeafAttrs({ ap: 1 }));
    expect(new TextDecoder().decode(await nic.dma.read(0x1234_5000n, 10))).toBe('moved data');
    ram.bytes.set(encodeCommand({ opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 }), qIpa - RAM_IPA);
    regs.setUint32(VCMDQ_CONFIG, 1, true);
    regs.setUint32(VCMDQ_PROD, 1, true);
    drv.cmdqv!.service(); // the hardware noticing the PROD write (a doorbell does this on Atomics.notify)
    expect(regs.getUint32(VCMDQ_CONS, true)).toBe(1);
    expect(new TextDecoder().decode(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');

    // A guest-stage-1 fault becomes a vEVENT with the guest's StreamID.
    await expect(nic.dma.read(0x7777_0000n, 4)).rejects.toMatchObject({ code: 'EFAULT' });
    const rbuf = new Uint8Array(64);
    const n = proc.read(vq.out_veventq_fd, rbuf);
    expect(n).toBe(8 + 32);
    const evt = decodeEvent(rbuf.subarray(8, 40));
    expect(evt).toMatchObject({ id: EVT_ID_TRANSLATION_FAULT, sid: VSID, inputAddr: 0x7777_0000 });
  });
});
