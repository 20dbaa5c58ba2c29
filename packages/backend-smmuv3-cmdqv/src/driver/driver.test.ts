import { describe, expect, it } from '@jest/globals';
import { errnoOf } from '@viommu/backend-compliance';
import { DMA_READ, DMA_WRITE, DOMAIN_NEST_PARENT, NO_PASID, TRANSLATE_FAULT, TRANSLATE_OK, type Translation } from '@viommu/core';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, iommu_hw_info_arm_smmuv3, iommu_hw_info_tegra241_cmdqv,
  iommu_viommu_tegra241_cmdqv,
} from '@viommu/uapi';
import {
  CMDQ_OP_ATC_INV, CMDQ_OP_CFGI_CD, CMDQ_OP_CFGI_STE, CMDQ_OP_CMD_SYNC, CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA,
  CMDQ_OP_TLBI_NSNH_ALL, CMDQ_OP_TLBI_S12_VMALL, encodeCommand,
} from '../formats/command.js';
import { EVT_ID_TRANSLATION_FAULT, decodeEvent } from '../formats/event.js';
import { STE_CFG_S1_TRANS, encodeSte } from '../formats/ste.js';
import { s1LeafAttrs } from '../pgtable/builder.js';
import { FakeHost, FakeViommuCore } from '../testing/fake-core.js';
import { Guest } from '../testing/rig.js';
import { type NestParentDomain, NestedDomain, Stage1PagingDomain } from './domains.js';
import { smmuv3Cmdqv, type Smmuv3CmdqvOptions } from './driver.js';
import type { SmmuMaster } from './master.js';
import type { Vsmmu } from './vsmmu.js';

const RAM_IPA = 0x4000_0000;
const VSID = 0x7;

function le64(...dwords: bigint[]): Uint8Array {
  const out = new Uint8Array(dwords.length * 8);
  const view = new DataView(out.buffer);
  dwords.forEach((d, i) => view.setBigUint64(i * 8, d, true));
  return out;
}

function setup(options: Partial<Smmuv3CmdqvOptions> = {}) {
  const host = new FakeHost();
  const drv = smmuv3Cmdqv({ name: 'smmu0', ...options });
  drv.probe(host);
  const dev = drv.probeDevice({ name: 'nic0', rid: 0x100, pasidBits: 20, pri: true, ats: true }) as SmmuMaster;
  return { host, drv, dev };
}

/** A nest parent, a vIOMMU on it, and a guest whose RAM sits behind the parent. */
function withViommu(type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3, options: Partial<Smmuv3CmdqvOptions> = {}) {
  const s = setup(options);
  const s2 = s.drv.allocPagingDomain(s.dev, DOMAIN_NEST_PARENT) as NestParentDomain;
  const guest = new Guest(s.host.physical, RAM_IPA, 4 << 20, s2.config.vmid, { domain: s2 });
  const core = new FakeViommuCore(10, type, s2);
  const data = type === IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV ? s.host.userData(type, new Uint8Array(16)) : s.host.userData(0, new Uint8Array(0));
  const viommu = s.drv.viommuInit({ type, dev: s.dev, parent: s2, data, core }) as Vsmmu;
  return { ...s, s2, guest, core, viommu, data };
}

/** The guest's stage-1: IOVA 0x1234_5000 → a data page in guest RAM, CD table with CD 0, vSTE words. */
function guestS1(g: Guest, asid = 0x42) {
  const s1 = g.s1Table();
  const data = g.alloc(4096);
  s1.map(0x1234_5000, data, 4096, s1LeafAttrs({ ap: 1 }));
  const cdTable = g.cdTable();
  g.writeCd(cdTable, 0, g.cdFor(s1, asid));
  const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cdTable }).subarray(0, 16);
  return { s1, data, cdTable, vste };
}

function dma(drv: ReturnType<typeof smmuv3Cmdqv>, dev: SmmuMaster, iova: number, n: number): string {
  const out: Translation = { pa: 0, length: 0, reason: '' };
  const rc = drv.translate(dev, NO_PASID, iova, DMA_READ, out);
  if (rc !== TRANSLATE_OK) return `fault:${out.reason}`;
  return new TextDecoder().decode(drv.host.physical.read(out.pa, new Uint8Array(n)));
}

function invalidate(s: ReturnType<typeof withViommu>, ...cmds: Parameters<typeof encodeCommand>[0][]) {
  const array = s.host.userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, 16, cmds.map((c) => encodeCommand(c)));
  let err: string | undefined;
  try {
    s.viommu.cacheInvalidate(array);
  } catch (e) {
    err = (e as { code: string }).code;
  }
  return { err, done: array.entryNum };
}

describe('GET_HW_INFO', () => {
  it('reports the raw ID registers as iommu_hw_info_arm_smmuv3 for DEFAULT and ARM_SMMUV3', () => {
    const { drv, dev } = setup();
    const info = drv.hwInfo(dev, 0);
    expect(info.type).toBe(2);
    const d = iommu_hw_info_arm_smmuv3.decode(info.data);
    expect(d.flags).toBe(0);
    expect(d.idr).toEqual([...drv.smmu.idr]);
    expect(d.idr[0]! & 3).toBe(3); // S1P | S2P
    expect((d.idr[0]! >>> 2) & 3).toBe(2); // TTF AArch64
    expect(d.idr[1]! & 0x3f).toBe(16); // SIDSIZE
    expect((d.idr[5]! >>> 4) & 7).toBe(7); // GRAN4K/16K/64K
    expect(d.iidr).toBe(drv.smmu.readReg(0x18));
    expect(d.aidr).toBe(2);
    expect(drv.hwInfo(dev, 2).data).toEqual(info.data);
  });

  it('reports Tegra241 CMDQV only when asked, and EOPNOTSUPP otherwise', () => {
    const { drv, dev } = setup();
    const info = drv.hwInfo(dev, IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV);
    expect(info.type).toBe(3);
    expect(iommu_hw_info_tegra241_cmdqv.decode(info.data)).toEqual({ flags: 0, version: 1, log2vcmdqs: 3, log2vsids: 4, __reserved: 0 });
    expect(errnoOf(() => drv.hwInfo(dev, IOMMU_HW_INFO_TYPE_INTEL_VTD))).toBe('EOPNOTSUPP');
    const plain = setup({ cmdqv: false });
    expect(errnoOf(() => plain.drv.hwInfo(plain.dev, IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV))).toBe('EOPNOTSUPP');
  });
});

describe('paging domains', () => {
  it('accepts exactly the kernel flag combinations', () => {
    const { drv, dev, host } = setup();
    expect(drv.allocPagingDomain(dev, 0)).toBeInstanceOf(Stage1PagingDomain);
    expect(drv.allocPagingDomain(dev, IOMMU_HWPT_ALLOC_NEST_PARENT).nestParent).toBe(true);
    expect(errnoOf(() => drv.allocPagingDomain(dev, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => drv.allocPagingDomain(dev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => drv.allocPagingDomain(dev, 1 << 2))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => drv.allocPagingDomain(dev, 0, host.userData(0, new Uint8Array(0))))).toBe('EOPNOTSUPP');
    const noNest = setup({ nesting: false });
    expect(errnoOf(() => noNest.drv.allocPagingDomain(noNest.dev, IOMMU_HWPT_ALLOC_NEST_PARENT))).toBe('EOPNOTSUPP');
  });

  it('translates DMA through an attached stage-1 domain and invalidates on unmap', () => {
    const { drv, dev, host } = setup();
    const d = drv.allocPagingDomain(dev, 0);
    const page = host.physical.allocRun(1).firstFrame * 4096;
    host.physical.write(page, new TextEncoder().encode('stage one'));
    d.map(0x10000n, BigInt(page), 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    expect(dma(drv, dev, 0x10000, 9)).toBe('stage one');
    d.unmap(0x10000n, 4096n);
    expect(dma(drv, dev, 0x10000, 9)).toBe('fault:F_TRANSLATION');
    drv.attach(dev, NO_PASID, null);
    expect(dma(drv, dev, 0x10000, 9)).toBe('fault:ABORT');
  });

  it('stage-1 domains at PASIDs go through the device CD table; non-PASID traffic is blocked without a RID domain', () => {
    const { drv, dev, host } = setup();
    const a = drv.allocPagingDomain(dev, 0);
    const b = drv.allocPagingDomain(dev, 0);
    const pa = host.physical.allocRun(2).firstFrame * 4096;
    host.physical.write(pa, new TextEncoder().encode('A'));
    host.physical.write(pa + 4096, new TextEncoder().encode('B'));
    a.map(0x5000n, BigInt(pa), 4096n, 3);
    b.map(0x5000n, BigInt(pa + 4096), 4096n, 1);
    drv.attach(dev, 3, b);
    const out: Translation = { pa: 0, length: 0, reason: '' };
    expect(drv.translate(dev, 3, 0x5000, DMA_READ, out)).toBe(TRANSLATE_OK);
    expect(out.pa).toBe(pa + 4096);
    expect(drv.translate(dev, 3, 0x5000, DMA_WRITE, out)).toBe(TRANSLATE_FAULT);
    expect(out.reason).toBe('F_PERMISSION');
    expect(dma(drv, dev, 0x5000, 1)).toBe('fault:F_STREAM_DISABLED');
    drv.attach(dev, NO_PASID, a);
    expect(dma(drv, dev, 0x5000, 1)).toBe('A');
    expect(drv.translate(dev, 3, 0x5000, DMA_READ, out) === TRANSLATE_OK && out.pa).toBe(pa + 4096);
    // A stage-2 RID domain cannot coexist with PASIDs (EBUSY), nor a PASID with a stage-2 RID (EINVAL).
    const s2 = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT);
    expect(errnoOf(() => drv.attach(dev, NO_PASID, s2))).toBe('EBUSY');
    drv.attach(dev, 3, null);
    expect(drv.translate(dev, 3, 0x5000, DMA_READ, out)).toBe(TRANSLATE_FAULT);
    drv.attach(dev, NO_PASID, s2);
    expect(errnoOf(() => drv.attach(dev, 4, b))).toBe('EINVAL');
  });

  it('unmapping the nest parent reaches the nested translation (S2 TLBI + NH_ALL)', () => {
    const s = withViommu();
    const g = guestS1(s.guest);
    s.guest.write(g.data, new TextEncoder().encode('payload'));
    s.core.vdevs.set(BigInt(VSID), s.dev);
    s.drv.attach(s.dev, NO_PASID, s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, g.vste)));
    expect(dma(s.drv, s.dev, 0x1234_5000, 7)).toBe('payload');
    s.s2.unmap(BigInt(g.data), 4096n);
    expect(dma(s.drv, s.dev, 0x1234_5000, 7)).toBe('fault:F_TRANSLATION');
  });
});

describe('VIOMMU_ALLOC', () => {
  it('rejects unsupported types, foreign parents and missing nesting', () => {
    const { drv, dev, host } = setup();
    const s2 = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT);
    const none = host.userData(0, new Uint8Array(0));
    const core = new FakeViommuCore(1, 3, s2);
    expect(errnoOf(() => drv.viommuInit({ type: 3, dev, parent: s2, data: none, core }))).toBe('EOPNOTSUPP');
    const other = setup();
    const foreign = other.drv.allocPagingDomain(other.dev, DOMAIN_NEST_PARENT);
    expect(errnoOf(() => drv.viommuInit({ type: 1, dev, parent: foreign, data: none, core }))).toBe('EINVAL');
    const plain = setup({ cmdqv: false });
    const ps2 = plain.drv.allocPagingDomain(plain.dev, DOMAIN_NEST_PARENT);
    expect(errnoOf(() => plain.drv.viommuInit({ type: 2, dev: plain.dev, parent: ps2, data: none, core }))).toBe('EOPNOTSUPP');
  });

  it('holds the parent VMID', () => {
    const s = withViommu();
    expect(s.viommu.vmid).toBe(s.s2.config.vmid);
  });

  it('TEGRA241_CMDQV: data required and exactly 16 bytes, out fields written, VINTFs run out with ENOSPC', () => {
    const { drv, dev, host } = setup({ cmdqv: { vintfLog2: 1, vcmdqLog2: 2 } });
    const s2 = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT);
    const core = new FakeViommuCore(1, 2, s2);
    const T = IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV;
    const init = (data: ReturnType<FakeHost['userData']>) => drv.viommuInit({ type: T, dev, parent: s2, data, core });
    expect(errnoOf(() => init(host.userData(T, new Uint8Array(0))))).toBe('EINVAL');
    expect(errnoOf(() => init(host.userData(T, new Uint8Array(8))))).toBe('EINVAL');
    expect(errnoOf(() => init(host.userData(T, new Uint8Array(24))))).toBe('EINVAL');
    const data = host.userData(T, new Uint8Array(16));
    init(data);
    const out = iommu_viommu_tegra241_cmdqv.decode(host.user.read(data.uptr, 16));
    expect(out.out_vintf_mmap_length).toBe(0x10000n);
    expect(core.mmaps.get(out.out_vintf_mmap_offset)).toEqual({ pa: drv.cmdqv!.vintfs[1]!.page0Pa, length: 0x10000 });
    expect(drv.cmdqv!.vintfs[1]!.vmid).toBe((s2 as NestParentDomain).config.vmid);
    // Two VINTFs: VINTF0 is the host's, VINTF1 is taken.
    expect(errnoOf(() => init(host.userData(T, new Uint8Array(16))))).toBe('ENOSPC');
  });
});

describe('nested HWPT from a guest STE', () => {
  const ok = (s: ReturnType<typeof withViommu>, ste: Uint8Array, flags = 0) =>
    errnoOf(() => s.viommu.allocNested(s.dev, flags, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, ste)));

  it.each([
    ['S1ContextPtr, S1CDMax, S1Fmt, S1DSS, S1CIR/COR/CSH, S1STALLD', le64(0xf800_0000_0000_0fcbn | (1n << 4n), 0xffn | (1n << 27n)), undefined],
    ['EATS = 1 (full ATS)', le64(0xbn, 1n << 28n), undefined],
    ['MEV in dword1 (not allowed)', le64(0xbn, 1n << 19n), 'EIO'],
    ['S2VMID-range bits in dword0 [58:52]', le64(0xbn | (1n << 52n), 0n), 'EIO'],
    ['STRW in dword1', le64(0xbn, 2n << 30n), 'EIO'],
    ['Config = S2 translate', le64(1n | (6n << 1n), 0n), 'EIO'],
    ['Config = nested', le64(1n | (7n << 1n), 0n), 'EIO'],
    ['Config = 1 (reserved)', le64(1n | (1n << 1n), 0n), 'EIO'],
    ['EATS = 2 (split)', le64(0xbn, 2n << 28n), 'EIO'],
    ['EATS = 3', le64(0xbn, 3n << 28n), 'EIO'],
    ['V = 0 with any bits (zeroed, accepted)', le64(0xffff_ffff_ffff_fffen, 0xffff_ffff_ffff_ffffn), undefined],
  ])('%s', (_n, ste, expected) => {
    expect(ok(withViommu(), ste)).toBe(expected);
  });

  it('stores the vSTE without EATS and zeroes an invalid one', () => {
    const s = withViommu();
    const n = s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, le64(0xbn, (1n << 28n) | 3n)));
    expect([...n.ste]).toEqual([0xb, 0, 3, 0]);
    expect(n.enableAts).toBe(true);
    const z = s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, le64(0xen, 5n)));
    expect([...z.ste]).toEqual([0, 0, 0, 0]);
  });

  it('checks flags, data type and length', () => {
    const s = withViommu();
    expect(ok(s, le64(0xbn, 0n), 8)).toBe('EOPNOTSUPP');
    expect(ok(s, new Uint8Array(8))).toBe('EINVAL');
    expect(ok(s, new Uint8Array(24))).toBe('EINVAL');
    expect(errnoOf(() => s.viommu.allocNested(s.dev, 0, s.host.userData(1, le64(0xbn, 0n))))).toBe('EINVAL');
  });

  it('translate needs a vDEVICE at attach (ENOENT); abort and bypass do not', () => {
    const s = withViommu();
    const g = guestS1(s.guest);
    const mk = (ste: Uint8Array) => s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, ste));
    expect(errnoOf(() => s.drv.attach(s.dev, NO_PASID, mk(g.vste)))).toBe('ENOENT');
    s.drv.attach(s.dev, NO_PASID, mk(le64(1n | (4n << 1n), 0n)));
    // Bypass = stage 2 only: the IPA is the IOVA.
    s.guest.write(RAM_IPA, new TextEncoder().encode('ipa'));
    expect(dma(s.drv, s.dev, RAM_IPA, 3)).toBe('ipa');
    s.drv.attach(s.dev, NO_PASID, mk(le64(1n, 0n)));
    expect(dma(s.drv, s.dev, RAM_IPA, 3)).toBe('fault:ABORT');
  });

  it('installs V | Config = nested | guest bits | MEV and walks the guest tables end to end', () => {
    const s = withViommu();
    const g = guestS1(s.guest);
    s.guest.write(g.data + 8, new TextEncoder().encode('nested ok'));
    s.core.vdevs.set(BigInt(VSID), s.dev);
    const n = s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, g.vste));
    s.drv.attach(s.dev, NO_PASID, n);
    expect(n).toBeInstanceOf(NestedDomain);
    expect(dma(s.drv, s.dev, 0x1234_5008, 9)).toBe('nested ok');
    const out: Translation = { pa: 0, length: 0, reason: '' };
    expect(s.drv.translate(s.dev, NO_PASID, 0x1234_5008, DMA_WRITE, out)).toBe(TRANSLATE_OK);
    expect(out.pa).toBe(s.guest.pa(g.data) + 8);
    expect(out.length).toBe(4096 - 8); // the guest mapped a 4 KiB page
  });
});

describe('vEVENTs', () => {
  it('forwards stage-1 faults of a vmaster with the vSID, and keeps stage-2 faults on the host', () => {
    const s = withViommu();
    const g = guestS1(s.guest);
    s.core.vdevs.set(BigInt(VSID), s.dev);
    s.drv.attach(s.dev, NO_PASID, s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, g.vste)));
    const out: Translation = { pa: 0, length: 0, reason: '' };
    expect(s.drv.translate(s.dev, NO_PASID, 0x9999_0000, DMA_READ, out)).toBe(TRANSLATE_FAULT);
    expect(out.reason).toBe('F_TRANSLATION');
    expect(s.core.events).toHaveLength(1);
    expect(s.core.events[0]!.type).toBe(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3);
    const evt = decodeEvent(s.core.events[0]!.payload);
    expect(evt).toMatchObject({ id: EVT_ID_TRANSLATION_FAULT, sid: VSID, inputAddr: 0x9999_0000, s2: false });
    // A stage-2 fault (the guest data page taken away from stage 2) is not forwarded.
    s.s2.unmap(BigInt(g.data), 4096n);
    expect(s.drv.translate(s.dev, NO_PASID, 0x1234_5000, DMA_READ, out)).toBe(TRANSLATE_FAULT);
    expect(s.core.events).toHaveLength(1);
    expect(s.drv.hostLog.some((l) => l.includes('F_TRANSLATION'))).toBe(true);
  });
});

describe('hostile guest STEs the kernel lets through', () => {
  it('S1CDMax beyond SSIDSIZE passes the allowed-bits check, then the hardware reports C_BAD_STE to the guest', () => {
    const s = withViommu();
    const g = guestS1(s.guest);
    s.core.vdevs.set(BigInt(VSID), s.dev);
    const ste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: g.cdTable, s1CdMax: 31 }).subarray(0, 16);
    s.drv.attach(s.dev, NO_PASID, s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, ste)));
    expect(dma(s.drv, s.dev, 0x1234_5000, 1)).toBe('fault:C_BAD_STE');
    expect(decodeEvent(s.core.events[0]!.payload)).toMatchObject({ id: 0x04, sid: VSID });
  });

  it('a CD table pointer outside guest RAM faults in stage 2 on the host only', () => {
    const s = withViommu();
    s.core.vdevs.set(BigInt(VSID), s.dev);
    const ste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: 0x7_0000_0000 }).subarray(0, 16);
    s.drv.attach(s.dev, NO_PASID, s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, ste)));
    expect(dma(s.drv, s.dev, 0x1234_5000, 1)).toBe('fault:F_TRANSLATION');
    expect(s.core.events).toHaveLength(0);
  });
});

describe('HWPT_INVALIDATE on the vIOMMU', () => {
  function nestedRemapped() {
    const s = withViommu();
    const g = guestS1(s.guest);
    s.core.vdevs.set(BigInt(VSID), s.dev);
    s.drv.attach(s.dev, NO_PASID, s.viommu.allocNested(s.dev, 0, s.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, g.vste)));
    s.guest.write(g.data, new TextEncoder().encode('OLD!'));
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('OLD!');
    const b = s.guest.alloc(4096);
    s.guest.write(b, new TextEncoder().encode('NEW!'));
    g.s1.unmap(0x1234_5000, 4096);
    g.s1.map(0x1234_5000, b, 4096, s1LeafAttrs({ ap: 1 }));
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('OLD!');
    return { ...s, g };
  }

  it('retags guest TLBIs with the vIOMMU VMID (the guest cannot name another VMID)', () => {
    const s = nestedRemapped();
    const wrongVmid = s.viommu.vmid + 7;
    expect(invalidate(s, { opcode: CMDQ_OP_TLBI_NH_VA, vmid: wrongVmid, asid: 0x42, addr: 0x1234_5000, leaf: true })).toEqual({ err: undefined, done: 1 });
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('NEW!');
  });

  it('converts TLBI_NSNH_ALL to NH_ALL of this VMID only: another vIOMMU keeps its TLB', () => {
    const a = nestedRemapped();
    // A second vIOMMU on the same SMMU with its own device and nest parent.
    const devB = a.drv.probeDevice({ name: 'nic1', rid: 0x200, pasidBits: 0, pri: false, ats: false }) as SmmuMaster;
    const s2b = a.drv.allocPagingDomain(devB, DOMAIN_NEST_PARENT) as NestParentDomain;
    const guestB = new Guest(a.host.physical, RAM_IPA, 1 << 20, s2b.config.vmid, { domain: s2b });
    const coreB = new FakeViommuCore(11, 1, s2b);
    const vB = a.drv.viommuInit({ type: 1, dev: devB, parent: s2b, data: a.host.userData(0, new Uint8Array(0)), core: coreB }) as Vsmmu;
    const gB = guestS1(guestB);
    guestB.write(gB.data, new TextEncoder().encode('B-OLD'));
    coreB.vdevs.set(1n, devB);
    a.drv.attach(devB, NO_PASID, vB.allocNested(devB, 0, a.host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, gB.vste)));
    expect(dma(a.drv, devB, 0x1234_5000, 5)).toBe('B-OLD');
    const nb = guestB.alloc(4096);
    guestB.write(nb, new TextEncoder().encode('B-NEW'));
    gB.s1.unmap(0x1234_5000, 4096);
    gB.s1.map(0x1234_5000, nb, 4096, s1LeafAttrs({ ap: 1 }));
    // Guest A flushes "everything".
    expect(invalidate(a, { opcode: CMDQ_OP_TLBI_NSNH_ALL })).toEqual({ err: undefined, done: 1 });
    expect(dma(a.drv, a.dev, 0x1234_5000, 4)).toBe('NEW!');
    expect(dma(a.drv, devB, 0x1234_5000, 5)).toBe('B-OLD');
  });

  it('rewrites the vSID of CFGI_CD to the physical SID; an unknown vSID is EIO at its index', () => {
    const s = nestedRemapped();
    // Replace CD 0 with a new ASID over the new table: stale until CFGI_CD for the vSID.
    const s1b = s.guest.s1Table();
    const c = s.guest.alloc(4096);
    s.guest.write(c, new TextEncoder().encode('CDCD'));
    s1b.map(0x1234_5000, c, 4096, s1LeafAttrs({ ap: 1 }));
    s.guest.writeCd(s.g.cdTable, 0, s.guest.cdFor(s1b, 0x43));
    expect(invalidate(s, { opcode: CMDQ_OP_CFGI_CD, sid: VSID + 1, ssid: 0, leaf: true })).toEqual({ err: 'EIO', done: 0 });
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('OLD!');
    expect(invalidate(s, { opcode: CMDQ_OP_CFGI_CD, sid: VSID, ssid: 0, leaf: true })).toEqual({ err: undefined, done: 1 });
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('CDCD');
  });

  it.each([
    ['CFGI_STE', { opcode: CMDQ_OP_CFGI_STE, sid: VSID }],
    ['TLBI_S12_VMALL', { opcode: CMDQ_OP_TLBI_S12_VMALL, vmid: 1 }],
    ['CMD_SYNC', { opcode: CMDQ_OP_CMD_SYNC }],
    ['unknown 0x7f', { opcode: 0x7f }],
  ])('rejects %s with EIO and reports the entries before it as handled', (_n, bad) => {
    const s = nestedRemapped();
    const ok = { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x99 };
    expect(invalidate(s, ok, ok, bad, { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 })).toEqual({ err: 'EIO', done: 2 });
    // The entries before the bad one were converted but never issued (same batch); the last never ran.
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('OLD!');
  });

  it('issues in batches of 63: an error in the second batch leaves the first done', () => {
    const s = nestedRemapped();
    const cmds = Array.from({ length: 70 }, () => ({ opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x99 }));
    cmds[0] = { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 };
    cmds[65] = { opcode: 0x7f, asid: 0 };
    expect(invalidate(s, ...cmds)).toEqual({ err: 'EIO', done: 65 });
    expect(dma(s.drv, s.dev, 0x1234_5000, 4)).toBe('NEW!');
  });

  it('EINVAL for an empty array or another data type; E2BIG for non-zero tails of longer entries', () => {
    const s = withViommu();
    const empty = s.host.userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, 16, []);
    empty.entryNum = 0;
    expect(errnoOf(() => s.viommu.cacheInvalidate(empty))).toBe('EINVAL');
    const wrong = s.host.userArray(0, 16, [encodeCommand({ opcode: CMDQ_OP_CMD_SYNC })]);
    expect(errnoOf(() => s.viommu.cacheInvalidate(wrong))).toBe('EINVAL');
    const long = new Uint8Array(24);
    long.set(encodeCommand({ opcode: CMDQ_OP_TLBI_NH_ASID, asid: 1 }));
    const okLong = s.host.userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, 24, [long]);
    s.viommu.cacheInvalidate(okLong);
    expect(okLong.entryNum).toBe(1);
    long[20] = 1;
    const badLong = s.host.userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, 24, [long]);
    expect(errnoOf(() => s.viommu.cacheInvalidate(badLong))).toBe('E2BIG');
  });

  it('ATC_INV reaches the hardware with the physical SID; the guest SSID and range are untouched', () => {
    const s = withViommu();
    s.core.vdevs.set(BigInt(VSID), s.dev);
    const seen: [number, number, number, number][] = [];
    s.drv.smmu.hooks.atcInvalidate = (sid, ssid, addr, size) => seen.push([sid, ssid, addr, size]);
    expect(invalidate(s, { opcode: CMDQ_OP_ATC_INV, sid: VSID, ssv: true, ssid: 5, addr: 0x8000, size: 3 })).toEqual({ err: undefined, done: 1 });
    expect(seen).toEqual([[0x100, 5, 0x8000, 3]]);
    expect(invalidate(s, { opcode: CMDQ_OP_ATC_INV, sid: 0x100, size: 52 })).toEqual({ err: 'EIO', done: 0 }); // a pSID is not a vSID
  });

  it('a command the hardware finds illegal is skipped by the host error handler (no errno)', () => {
    const s = withViommu(IOMMU_VIOMMU_TYPE_ARM_SMMUV3, { features: { ats: false } });
    s.core.vdevs.set(BigInt(VSID), s.dev);
    expect(invalidate(s, { opcode: CMDQ_OP_ATC_INV, sid: VSID, size: 52 }, { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 1 })).toEqual({ err: undefined, done: 2 });
    expect(s.drv.hostLog.some((l) => l.startsWith('CMDQ error 1'))).toBe(true);
    expect(s.drv.smmu.cmdq.halted).toBe(false);
  });
});

