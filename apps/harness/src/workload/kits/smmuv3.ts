// ARM SMMUv3 with the NVIDIA Tegra241 CMDQV extension (@viommu/backend-smmuv3-cmdqv). The guest's
// stage-1 is a VMSAv8-64 table and a context descriptor in guest RAM, the nested HWPT carries the
// vSTE words, the IOMMU caches what it walked until the guest's TLBI reaches it — through
// HWPT_INVALIDATE, or through a VCMDQ the guest drives via the mmapped VINTF page with no ioctl —
// and a translation fault comes back as a vEVENT with the guest's StreamID. The guest-side formats
// (stage-1 table, CD, vSTE, the F_TRANSLATION check) and the vendor constants are the backend's
// compliance kit's; what is here is the workload's: a CMDQV sized for the shape, a guest ASID per
// device, and the guest driving a VCMDQ through the mmapped VINTF page.

import { CMDQ_OP_TLBI_NH_ASID, VCMDQ_CONFIG, VCMDQ_CONS, VCMDQ_EN, VCMDQ_PROD, encodeCommand, smmuv3Cmdqv } from '@viommu/backend-smmuv3-cmdqv';
import { smmuv3GuestStage1, tegra241Kit as compliance, translationFaultProblem } from '@viommu/backend-smmuv3-cmdqv/compliance-kit';
import type { Viommu } from '@viommu/client';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { vendorBasics, viommuRequestOf } from './shared.js';
import { FAULT_RESPONSE_TIMEOUT_MS, type VendorKit, type WorkloadContext } from '../kit.js';

/** An IOVA no device's stage-1 maps: a DMA there is a guest translation fault (F_TRANSLATION). */
export const UNMAPPED_IOVA = 0x7777_0000;
const CMD_BYTES = compliance.invalidation!.entryLen;

const log2Ceil = (n: number) => Math.ceil(Math.log2(Math.max(2, n)));

/** The guest's ASID for device `i` (16 bits; 0 is left unused). */
const asidOf = (i: number) => (i % 0xffff) + 1;

export const smmuv3Kit: VendorKit = {
  id: 'smmuv3',
  title: 'ARM SMMUv3 + Tegra241 CMDQV',
  open(shape) {
    // Size the CMDQV so every vIOMMU gets a VINTF and every vDEVICE a SID slot (the defaults are
    // Grace's: 16 VINTFs, 16 SIDs per VM), and the host StreamID space for the devices.
    const perViommu = Math.ceil(shape.devices / shape.viommus);
    const driver = smmuv3Cmdqv({
      name: 'smmu0',
      cmdqv: { vintfLog2: Math.max(4, log2Ceil(shape.viommus + 1)), sidPerVmLog2: Math.max(4, log2Ceil(perViommu)) },
    });
    const devices = Array.from({ length: shape.devices }, (_, i) => `nic${i}`);
    const host = createSimHost({
      iommus: [driver],
      devices: devices.map((name, i) => ({ name, iommu: 'smmu0', rid: 0x100 + i, pasidBits: 0, ats: true })),
      faultResponseTimeoutMs: FAULT_RESPONSE_TIMEOUT_MS,
    });
    /** The mmapped VINTF page of each vIOMMU, and the guest's PROD counter of its queue 0. */
    const vintf = new Map<number, { regs: DataView; prod: number }>();

    return {
      host,
      devices,
      ...vendorBasics(compliance),
      viommuRequest: viommuRequestOf(compliance),
      afterViommu(viommu) {
        const out = U.iommu_viommu_tegra241_cmdqv.decode(viommu.data!);
        const page = viommu.mmap(out.out_vintf_mmap_offset, Number(out.out_vintf_mmap_length));
        vintf.set(viommu.id, { regs: new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength), prod: 0 });
      },
      virtId: (i) => BigInt(0x10 + i),
      buildStage1: (guest, i) => smmuv3GuestStage1(guest, asidOf(i)),
      invalidation: {
        target: 'viommu',
        type: compliance.invalidation!.type,
        entryLen: CMD_BYTES,
        flush: (_ctx, dev) => [encodeCommand({ opcode: CMDQ_OP_TLBI_NH_ASID, asid: asidOf(dev.index) })],
      },
      hwQueue: {
        type: compliance.hwQueue!.type,
        length: compliance.hwQueue!.length,
        submit(ctx: WorkloadContext, viommu: Viommu, queueIpa: number, entries) {
          const q = vintf.get(viommu.id);
          if (!q) throw new Error(`no VINTF page mapped for ${viommu.label}`);
          const slots = 4096 / CMD_BYTES;
          // PROD/CONS carry the index and, one bit above it, the wrap flag: count modulo 2 * slots.
          for (const e of entries) {
            ctx.guest.write(queueIpa + (q.prod % slots) * CMD_BYTES, e);
            q.prod = (q.prod + 1) % (2 * slots);
          }
          q.regs.setUint32(VCMDQ_CONFIG, VCMDQ_EN, true); // queue 0 of the VINTF: log2 size from the ALLOC length
          const before = q.regs.getUint32(VCMDQ_CONS, true);
          q.regs.setUint32(VCMDQ_PROD, q.prod, true);
          driver.cmdqv!.service(); // the hardware noticing the PROD write (what the doorbell triggers)
          const after = q.regs.getUint32(VCMDQ_CONS, true);
          return (after - before + 2 * slots) % (2 * slots);
        },
      },
      vevent: {
        type: compliance.vevent!.type,
        provoke: async (ctx, dev) => {
          const refused = await ctx.host.device(dev.name).dma.read(BigInt(UNMAPPED_IOVA), 4).then(() => false, () => true);
          if (!refused) throw new Error(`DMA to unmapped IOVA 0x${UNMAPPED_IOVA.toString(16)} succeeded`);
        },
        check: (payload, dev) => translationFaultProblem(payload, dev.vdevice.virtId, UNMAPPED_IOVA),
      },
    };
  },
};

