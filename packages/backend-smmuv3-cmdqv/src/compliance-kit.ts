// The compliance kits of the ARM SMMUv3 backend (@viommu/backend-smmuv3-cmdqv/compliance-kit), and
// the guest-side pieces other runners reuse (the harness's workload): the guest's stage-1 is a
// VMSAv8-64 table and a CD in guest RAM, the nested HWPT carries the vSTE words, invalidation is
// the guest's own commands on the vIOMMU, and a translation fault comes back as a vEVENT with the
// guest's StreamID. Jest-free: `viommu conformance` runs these kits in-process.

import { check, expectRejects, type AnyComplianceKit, type ComplianceKit, type GuestMemory, type GuestStage1 } from '@viommu/backend-compliance/testing';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import {
  CMDQ_OP_TLBI_NH_ALL, STE_CFG_S1_TRANS, TableBuilder, encodeCd, encodeCommand, encodeSte, s1LeafAttrs, s1StartLevel,
  smmuv3Cmdqv, type TableMemory,
} from './index.js';

/** The ASID of the kit's single guest context. */
const ASID = 0x42;
/** An IOVA the kit's stage-1 never maps: a DMA there is a guest translation fault. */
const UNMAPPED_IOVA = 0x9999_0000;
const EVT_ID_TRANSLATION_FAULT = 0x10;

/** Guest RAM as the page-table builder's table memory (tables aligned to their size, at least 64 bytes). */
function tablesIn(guest: GuestMemory): TableMemory {
  return { readU32: (ipa) => guest.readU32(ipa), writeU32: (ipa, v) => guest.writeU32(ipa, v), allocTable: (bytes) => guest.alloc(bytes, Math.max(bytes, 64)) };
}

/**
 * A guest's stage-1 context in guest RAM, empty: a 4 KiB-granule, 48-bit VMSAv8-64 table and the CD
 * pointing at it with `asid`; the nested HWPT data is the vSTE (S1 translate, the CD as context
 * pointer). `map` replaces one page's leaf and invalidates nothing.
 */
export function smmuv3GuestStage1(guest: GuestMemory, asid: number): Required<GuestStage1> {
  const s1 = new TableBuilder(tablesIn(guest), 12, 48, s1StartLevel(12, 48));
  const cd = guest.alloc(64, 64);
  guest.write(cd, encodeCd({ v: true, aa64: true, t0sz: 16, tg0: 0, ips: 5, r: true, a: true, aset: true, epd1: true, asid, ttb0: s1.root }));
  const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cd }).slice(0, 16);
  return {
    data: { type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, bytes: vste },
    map(iova, ipa) {
      s1.unmap(iova, 4096);
      s1.map(iova, ipa, 4096, s1LeafAttrs({ ap: 1 }));
    },
  };
}

/**
 * What is wrong with a vEVENT payload that should report an F_TRANSLATION of `iova` from the device
 * the guest knows as `vsid` (the vSID, not the physical StreamID), or undefined when nothing is.
 */
export function translationFaultProblem(payload: Uint8Array, vsid: bigint, iova: number): string | undefined {
  const evt = U.iommu_vevent_arm_smmuv3.decode(payload).evt;
  if (Number(evt[0]! & 0xffn) !== EVT_ID_TRANSLATION_FAULT) return `event id 0x${(evt[0]! & 0xffn).toString(16)}, expected F_TRANSLATION`;
  if (evt[0]! >> 32n !== vsid) return `StreamID 0x${(evt[0]! >> 32n).toString(16)}, expected the vSID 0x${vsid.toString(16)}`;
  if (evt[2] !== BigInt(iova)) return `input address 0x${evt[2]!.toString(16)}, expected 0x${iova.toString(16)}`;
  return undefined;
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

/** Plain SMMUv3 (no CMDQV). */
export const smmuv3Kit: ComplianceKit = {
  name: 'ARM SMMUv3',
  createHost: () => twoSmmus({ cmdqv: false }),
  // Clear of the software MSI window at 0x800_0000.
  guestRam: { ipa: 0x4000_0000, bytes: 2 << 20 },
  hwInfoType: U.IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  viommu: { type: U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3 },
  virtId: 0x7n,
  buildStage1(guest, iova, ipa) {
    const s1 = smmuv3GuestStage1(guest, ASID);
    s1.map(iova, ipa);
    return s1;
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
    provoke: (ctx) => expectRejects(ctx.host.device(ctx.deviceName).dma.read(BigInt(UNMAPPED_IOVA), 4), 'EFAULT', 'DMA to an IOVA the stage-1 does not map'),
    check: (payload, ctx) => {
      const problem = translationFaultProblem(payload, ctx.vdevice.virtId, UNMAPPED_IOVA);
      check(problem === undefined, `the vEVENT: ${problem}`);
    },
  },
};

/**
 * The same SMMU with the Tegra241 CMDQV extension: the vIOMMU takes a VINTF (16 bytes of vendor
 * data in, its mmap offset out) and offers LVCMDQs as HW queues on guest RAM.
 */
export const tegra241Kit: ComplianceKit = {
  ...smmuv3Kit,
  name: 'ARM SMMUv3 + Tegra241 CMDQV',
  createHost: () => twoSmmus({}),
  viommu: { type: U.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, data: () => new Uint8Array(U.iommu_viommu_tegra241_cmdqv.size) },
  hwQueue: { type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, length: 4096, count: 2 },
};

/** Every kit the backend proves itself with, in the order its tests and `viommu conformance` run them. */
export const complianceKits: readonly AnyComplianceKit[] = [smmuv3Kit, tegra241Kit];
