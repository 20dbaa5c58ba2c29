// ARM SMMUv3 with the NVIDIA Tegra241 CMDQV extension (@viommu/backend-smmuv3-cmdqv). The guest's
// stage-1 is a VMSAv8-64 table and a context descriptor in guest RAM, the nested HWPT carries the
// vSTE words, the IOMMU caches what it walked until the guest's TLBI reaches it — through
// HWPT_INVALIDATE, or through a VCMDQ the guest drives via the mmapped VINTF page with no ioctl —
// and a translation fault comes back as a vEVENT with the guest's StreamID.

import {
  CMDQ_OP_TLBI_NH_ASID, STE_CFG_S1_TRANS, TableBuilder, VCMDQ_CONFIG, VCMDQ_CONS, VCMDQ_EN, VCMDQ_PROD,
  encodeCd, encodeCommand, encodeSte, s1LeafAttrs, s1StartLevel, smmuv3Cmdqv, type TableMemory,
} from '@viommu/backend-smmuv3-cmdqv';
import type { Viommu } from '@viommu/client';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import type { GuestMemory } from '@viommu/backend-compliance/testing';
import { FAULT_RESPONSE_TIMEOUT_MS, type VendorKit, type WorkloadContext } from '../kit.js';

/** An IOVA no device's stage-1 maps: a DMA there is a guest translation fault (F_TRANSLATION). */
export const UNMAPPED_IOVA = 0x7777_0000;
const EVT_ID_TRANSLATION_FAULT = 0x10;
const CMD_BYTES = 16;

function tablesIn(guest: GuestMemory): TableMemory {
  return { readU32: (ipa) => guest.readU32(ipa), writeU32: (ipa, v) => guest.writeU32(ipa, v), allocTable: (bytes) => guest.alloc(bytes, Math.max(bytes, 64)) };
}

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
      // Clear of the software MSI window at 0x800_0000.
      guestRamIpa: 0x4000_0000,
      hwInfoType: U.IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
      viommuRequest: () => ({ type: U.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, data: new Uint8Array(U.iommu_viommu_tegra241_cmdqv.size) }),
      afterViommu(viommu) {
        const out = U.iommu_viommu_tegra241_cmdqv.decode(viommu.data!);
        const page = viommu.mmap(out.out_vintf_mmap_offset, Number(out.out_vintf_mmap_length));
        vintf.set(viommu.id, { regs: new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength), prod: 0 });
      },
      virtId: (i) => BigInt(0x10 + i),
      buildStage1(guest, i) {
        const s1 = new TableBuilder(tablesIn(guest), 12, 48, s1StartLevel(12, 48));
        const cd = guest.alloc(64, 64);
        guest.write(cd, encodeCd({ v: true, aa64: true, t0sz: 16, tg0: 0, ips: 5, r: true, a: true, aset: true, epd1: true, asid: asidOf(i), ttb0: s1.root }));
        const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cd }).slice(0, 16);
        return {
          data: { type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: vste },
          map(iova, ipa) {
            s1.unmap(iova, 4096);
            s1.map(iova, ipa, 4096, s1LeafAttrs({ ap: 1 }));
          },
        };
      },
      invalidation: {
        target: 'viommu',
        type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
        entryLen: CMD_BYTES,
        flush: (_ctx, dev) => [encodeCommand({ opcode: CMDQ_OP_TLBI_NH_ASID, asid: asidOf(dev.index) })],
      },
      hwQueue: {
        type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
        length: 4096,
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
        type: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
        provoke: async (ctx, dev) => {
          const refused = await ctx.host.device(dev.name).dma.read(BigInt(UNMAPPED_IOVA), 4).then(() => false, () => true);
          if (!refused) throw new Error(`DMA to unmapped IOVA 0x${UNMAPPED_IOVA.toString(16)} succeeded`);
        },
        check: (payload, dev) => {
          const evt = U.iommu_vevent_arm_smmuv3.decode(payload).evt;
          if (Number(evt[0]! & 0xffn) !== EVT_ID_TRANSLATION_FAULT) return `event id 0x${(evt[0]! & 0xffn).toString(16)}, expected F_TRANSLATION`;
          if (evt[0]! >> 32n !== dev.vdevice.virtId) return `StreamID 0x${(evt[0]! >> 32n).toString(16)}, expected the vSID 0x${dev.vdevice.virtId.toString(16)}`;
          if (evt[2] !== BigInt(UNMAPPED_IOVA)) return `input address 0x${evt[2]!.toString(16)}`;
          return undefined;
        },
      },
    };
  },
};

