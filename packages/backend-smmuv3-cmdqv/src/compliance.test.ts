// The compliance suite on the ARM SMMUv3 backend (plain SMMUv3, no CMDQV): the guest's stage-1 is
// a VMSAv8-64 table and a CD in guest RAM, the nested HWPT carries the vSTE words, invalidation is
// the guest's own commands on the vIOMMU, and a translation fault comes back as a vEVENT with the
// guest's StreamID.

import { expect } from '@jest/globals';
import { runComplianceSuite, type ComplianceKit, type GuestMemory } from '@viommu/backend-compliance';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import {
  CMDQ_OP_TLBI_NH_ALL, STE_CFG_S1_TRANS, TableBuilder, encodeCd, encodeCommand, encodeSte, s1LeafAttrs, s1StartLevel,
  smmuv3Cmdqv, type TableMemory,
} from './index.js';

const ASID = 0x42;
const UNMAPPED_IOVA = 0x9999_0000;

function tablesIn(guest: GuestMemory): TableMemory {
  return { readU32: (ipa) => guest.readU32(ipa), writeU32: (ipa, v) => guest.writeU32(ipa, v), allocTable: (bytes) => guest.alloc(bytes, Math.max(bytes, 64)) };
}

/** Two SMMUs (`opts` for both), nic0 behind smmu0 and nic1 behind smmu1 as the foreign device. */
function twoSmmus(opts: { cmdqv?: false }) {
  return {
    host: createSimHost({
      iommus: [smmuv3Cmdqv({ name: 'smmu0', ...opts }), smmuv3Cmdqv({ name: 'smmu1', ...opts })],
      devices: [
        { name: 'nic0', iommu: 'smmu0', rid: 0x100, pasidBits: 8 },
        { name: 'nic1', iommu: 'smmu1', rid: 0x200 },
      ],
    }),
    iommu: 'smmu0',
    device: 'nic0',
    foreignDevice: 'nic1',
  };
}

export const smmuv3Kit: ComplianceKit = {
  name: 'ARM SMMUv3',
  createHost: () => twoSmmus({ cmdqv: false }),
  // Clear of the software MSI window at 0x800_0000.
  guestRam: { ipa: 0x4000_0000, bytes: 2 << 20 },
  hwInfoType: U.IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  viommu: { type: U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3 },
  virtId: 0x7n,
  buildStage1(guest, iova, ipa) {
    const s1 = new TableBuilder(tablesIn(guest), 12, 48, s1StartLevel(12, 48));
    s1.map(iova, ipa, 4096, s1LeafAttrs({ ap: 1 }));
    const cdTable = guest.alloc(64, 64);
    guest.write(cdTable, encodeCd({ v: true, aa64: true, t0sz: 16, tg0: 0, ips: 5, r: true, a: true, aset: true, epd1: true, asid: ASID, ttb0: s1.root }));
    const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cdTable }).subarray(0, 16);
    return {
      data: { type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: vste.slice() },
      map(va, pa) {
        s1.unmap(va, 4096);
        s1.map(va, pa, 4096, s1LeafAttrs({ ap: 1 }));
      },
    };
  },
  invalidation: {
    target: 'viommu',
    type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
    entryLen: 16,
    flushAll: () => [encodeCommand({ opcode: CMDQ_OP_TLBI_NH_ALL })],
    // CMD_SYNC is the guest's to issue, not the host's to forward: the kernel refuses it (EIO).
    bad: () => ({ entry: encodeCommand({ opcode: 0x46 }), errno: 'EIO' }),
  },
  vevent: {
    type: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    provoke: async (ctx) => {
      await expect(ctx.host.device(ctx.deviceName).dma.read(BigInt(UNMAPPED_IOVA), 4)).rejects.toMatchObject({ code: 'EFAULT' });
    },
    check: (payload, ctx) => {
      const evt = U.iommu_vevent_arm_smmuv3.decode(payload).evt;
      expect(Number(evt[0]! & 0xffn)).toBe(0x10); // F_TRANSLATION
      expect(evt[0]! >> 32n).toBe(ctx.vdevice.virtId); // the guest's StreamID, not the physical one
      expect(evt[2]).toBe(BigInt(UNMAPPED_IOVA)); // the input address
    },
  },
};

runComplianceSuite(smmuv3Kit);

// The same SMMU with the Tegra241 CMDQV extension: the vIOMMU takes a VINTF (16 bytes of vendor
// data in, its mmap offset out) and offers LVCMDQs as HW queues on guest RAM.
export const tegra241Kit: ComplianceKit = {
  ...smmuv3Kit,
  name: 'ARM SMMUv3 + Tegra241 CMDQV',
  createHost: () => twoSmmus({}),
  viommu: { type: U.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, data: () => new Uint8Array(U.iommu_viommu_tegra241_cmdqv.size) },
  hwQueue: { type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, length: 4096, count: 2 },
};

runComplianceSuite(tegra241Kit);
