import { describe, expect, it } from '@jest/globals';
import { errnoOf } from '@viommu/backend-compliance';
import { DMA_READ, DOMAIN_NEST_PARENT, NO_PASID, TRANSLATE_OK, type DriverHwQueue, type Translation } from '@viommu/core';
import {
  IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
} from '@viommu/uapi';
import { CMDQ_OP_ATC_INV, CMDQ_OP_CFGI_STE, CMDQ_OP_CMD_SYNC, CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA, encodeCommand } from '../formats/command.js';
import { STE_CFG_S1_TRANS, encodeSte } from '../formats/ste.js';
import { s1LeafAttrs } from '../pgtable/builder.js';
import { smmuv3Cmdqv, type Smmuv3CmdqvOptions } from '../driver/driver.js';
import type { NestParentDomain } from '../driver/domains.js';
import type { SmmuMaster } from '../driver/master.js';
import type { TegraVsmmu } from '../driver/vsmmu.js';
import { FakeHost, FakeViommuCore } from '../testing/fake-core.js';
import { Guest } from '../testing/rig.js';
import { VCMDQ_CONFIG, VCMDQ_CONS, VCMDQ_GERROR, VCMDQ_GERRORN, VCMDQ_PROD, VCMDQ_STATUS } from './cmdqv.js';

const RAM_IPA = 0x4000_0000;
const T = IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV;

/** A guest VM with a Tegra241 vIOMMU, one device (vSID `vsid`) on a nested domain, and its queue memory. */
function vm(host: FakeHost, drv: ReturnType<typeof smmuv3Cmdqv>, rid: number, vsid: number) {
  const dev = drv.probeDevice({ name: `dev${rid}`, rid, pasidBits: 0, pri: false, ats: true }) as SmmuMaster;
  const s2 = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT) as NestParentDomain;
  const guest = new Guest(host.physical, RAM_IPA, 4 << 20, s2.config.vmid, { domain: s2 });
  const core = new FakeViommuCore(rid, T, s2);
  const viommu = drv.viommuInit({ type: T, dev, parent: s2, data: host.userData(T, new Uint8Array(16)), core }) as TegraVsmmu;
  core.vdevs.set(BigInt(vsid), dev);
  viommu.vdeviceInit({ dev, virtId: BigInt(vsid) });
  const s1 = guest.s1Table();
  const data = guest.alloc(4096);
  guest.write(data, new TextEncoder().encode('OLD!'));
  s1.map(0x1234_5000, data, 4096, s1LeafAttrs({ ap: 1 }));
  const cdTable = guest.cdTable();
  guest.writeCd(cdTable, 0, guest.cdFor(s1, 0x42));
  const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cdTable }).subarray(0, 16);
  drv.attach(dev, NO_PASID, viommu.allocNested(dev, 0, host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, vste)));
  const queues: DriverHwQueue[] = [];
  /** Allocates LVCMDQ `index` of 2^log2 entries in guest RAM (aligned to its size). */
  const allocQueue = (index: number, log2 = 8) => {
    const length = 16 << log2;
    const ipa = guest.alloc(length, length);
    const q = viommu.hwQueueInit({
      type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index, id: 100 + index, baseIova: BigInt(ipa), basePa: guest.pa(ipa), length,
      dependOn: () => {},
    });
    queues.push(q);
    return { ipa, length, log2, index, q };
  };
  /** The guest's view of its mmapped VINTF page. */
  const page = viommu.vintf.page0Pa;
  const reg = (index: number, off: number) => page + index * 0x80 + off;
  const readReg = (index: number, off: number) => host.physical.readU32(reg(index, off));
  const writeReg = (index: number, off: number, v: number) => host.physical.writeU32(reg(index, off), v);
  /** Guest driver: write commands at PROD and publish (no syscall). */
  const produce = (q: { ipa: number; log2: number; index: number }, ...cmds: Parameters<typeof encodeCommand>[0][]) => {
    let prod = readReg(q.index, VCMDQ_PROD);
    const wrap = (2 << q.log2) - 1;
    for (const c of cmds) {
      guest.write(q.ipa + (prod & ((1 << q.log2) - 1)) * 16, encodeCommand(c));
      prod = (prod + 1) & wrap;
    }
    writeReg(q.index, VCMDQ_PROD, prod);
  };
  const remap = () => {
    const b = guest.alloc(4096);
    guest.write(b, new TextEncoder().encode('NEW!'));
    s1.unmap(0x1234_5000, 4096);
    s1.map(0x1234_5000, b, 4096, s1LeafAttrs({ ap: 1 }));
  };
  const read = () => {
    const out: Translation = { pa: 0, length: 0, reason: '' };
    if (drv.translate(dev, NO_PASID, 0x1234_5000, DMA_READ, out) !== TRANSLATE_OK) return out.reason;
    return new TextDecoder().decode(host.physical.read(out.pa, new Uint8Array(4)));
  };
  return { dev, s2, guest, core, viommu, allocQueue, readReg, writeReg, produce, remap, read, queues };
}

function setup(options: Partial<Smmuv3CmdqvOptions> = {}) {
  const host = new FakeHost();
  const drv = smmuv3Cmdqv({ name: 'smmu0', ...options });
  drv.probe(host);
  return { host, drv, a: vm(host, drv, 0x100, 0x10) };
}

describe('HW_QUEUE_ALLOC (LVCMDQ) checks', () => {
  it('index, order, duplicates, length and alignment as tegra241_vintf_alloc_lvcmdq_user', () => {
    const { a } = setup();
    const req = (index: number, length: number, basePa: number) => () =>
      a.viommu.hwQueueInit({ type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index, id: 1, baseIova: 0n, basePa, length, dependOn: () => {} });
    const base = a.guest.pa(a.guest.alloc(1 << 16, 1 << 16));
    expect(errnoOf(req(8, 4096, base))).toBe('EINVAL'); // 2^(7-4) = 8 LVCMDQs per VINTF
    expect(errnoOf(req(1, 4096, base))).toBe('EIO'); // ascending order
    expect(errnoOf(req(0, 48, base))).toBe('EINVAL'); // not a power of two
    expect(errnoOf(req(0, 16, base))).toBe('EINVAL'); // < 32
    expect(errnoOf(req(0, 2 ** 24, base))).toBe('EINVAL'); // > 2^(CMDQS 19 + 4)
    expect(errnoOf(req(0, 4096, base + 2048))).toBe('EINVAL'); // not aligned to its length
    expect(errnoOf(req(0, 4096, base))).toBeUndefined();
    expect(errnoOf(req(0, 4096, base + 4096))).toBe('EEXIST');
    let depended: DriverHwQueue | undefined;
    const q1 = a.viommu.hwQueueInit({
      type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 1, id: 2, baseIova: 0n, basePa: base + 8192, length: 4096,
      dependOn: (o) => (depended = o),
    });
    expect(depended).toBeDefined();
    expect(q1).toBeDefined();
    expect(a.viommu.hwQueueSupported(1)).toBe(true);
    expect(a.viommu.hwQueueSupported(2)).toBe(false);
  });

  it('vDEVICE: vSID beyond 20 bits is EINVAL, SID pairs run out with ENOSPC and are freed on destroy', () => {
    const host = new FakeHost();
    const drv = smmuv3Cmdqv({ name: 'smmu0', cmdqv: { sidPerVmLog2: 1 } });
    drv.probe(host);
    const a = vm(host, drv, 0x100, 0x10);
    expect(errnoOf(() => a.viommu.vdeviceInit({ dev: a.dev, virtId: 0x100000n }))).toBe('EINVAL');
    const second = a.viommu.vdeviceInit({ dev: a.dev, virtId: 0x11n });
    expect(errnoOf(() => a.viommu.vdeviceInit({ dev: a.dev, virtId: 0x12n }))).toBe('ENOSPC');
    expect([...a.viommu.vintf.sidMatch]).toEqual([(0x10 << 1) | 1, (0x11 << 1) | 1]);
    expect([...a.viommu.vintf.sidReplace]).toEqual([0x100, 0x100]);
    second.destroy();
    expect(errnoOf(() => a.viommu.vdeviceInit({ dev: a.dev, virtId: 0x12n }))).toBeUndefined();
  });
});

describe('guest-driven VCMDQ', () => {
  /** VCMDQ 0 allocated and enabled, after the guest remapped its page (the old translation still cached). */
  function enabledQueueOverStaleMapping(a: ReturnType<typeof setup>['a']) {
    const q = a.allocQueue(0);
    expect(a.read()).toBe('OLD!');
    a.remap();
    expect(a.read()).toBe('OLD!');
    a.writeReg(0, VCMDQ_CONFIG, 1);
    return q;
  }

  it('consumes TLBIs from guest memory without a syscall per command, tagged with the VINTF VMID', () => {
    const { drv, a } = setup();
    const q = enabledQueueOverStaleMapping(a);
    // The guest names VMID 0x77: hardware uses the VINTF's VMID instead.
    a.produce(q, { opcode: CMDQ_OP_TLBI_NH_VA, vmid: 0x77, asid: 0x42, addr: 0x1234_5000, leaf: true }, { opcode: CMDQ_OP_CMD_SYNC });
    expect(a.read()).toBe('OLD!'); // not consumed until the hardware notices PROD
    expect(drv.cmdqv!.service()).toBe(2);
    expect(a.readReg(0, VCMDQ_STATUS)).toBe(1);
    expect(a.readReg(0, VCMDQ_CONS)).toBe(2);
    expect(a.read()).toBe('NEW!');
  });

  it('replaces the vSID of ATC_INV through SID_MATCH/SID_REPLACE; a foreign vSID stops the queue', () => {
    const { drv, a } = setup();
    const seen: number[] = [];
    drv.smmu.hooks.atcInvalidate = (sid) => seen.push(sid);
    const q = a.allocQueue(0);
    a.writeReg(0, VCMDQ_CONFIG, 1);
    a.produce(q, { opcode: CMDQ_OP_ATC_INV, sid: 0x10, size: 52 }, { opcode: CMDQ_OP_ATC_INV, sid: 0x11, size: 52 });
    drv.cmdqv!.service();
    expect(seen).toEqual([0x100]);
    const cons = a.readReg(0, VCMDQ_CONS);
    expect(cons & 0xfffff).toBe(1);
    expect((cons >>> 24) & 0x7f).toBe(1); // CERROR_ILL
  });

  it('an illegal opcode stops the queue with CERROR_ILL, posts the LVCMDQ error map, and resumes after GERRORN', () => {
    const { drv, a } = setup();
    a.allocQueue(0);
    const q1 = a.allocQueue(1);
    a.writeReg(1, VCMDQ_CONFIG, 1);
    a.remap();
    expect(a.read()).toBe('NEW!'); // nothing cached yet
    a.produce(q1, { opcode: CMDQ_OP_CMD_SYNC }, { opcode: CMDQ_OP_CFGI_STE, sid: 0x10 }, { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 });
    drv.cmdqv!.service();
    const cons = a.readReg(1, VCMDQ_CONS);
    expect([cons & 0xfffff, (cons >>> 24) & 0x7f]).toEqual([1, 1]);
    expect(a.readReg(1, VCMDQ_GERROR) & 1).toBe(1);
    expect(a.core.events).toHaveLength(1);
    expect(a.core.events[0]!.type).toBe(IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV);
    expect([...a.core.events[0]!.payload]).toEqual([2, ...new Array<number>(15).fill(0)]); // LVCMDQ 1
    // Still stopped: more PROD does nothing until the guest acknowledges.
    a.produce(q1, { opcode: CMDQ_OP_CMD_SYNC });
    drv.cmdqv!.service();
    expect(a.readReg(1, VCMDQ_CONS) & 0xfffff).toBe(1);
    // Guest recovery: replace the bad entry with a SYNC, acknowledge GERRORN := GERROR.
    a.guest.write(q1.ipa + 16, encodeCommand({ opcode: CMDQ_OP_CMD_SYNC }));
    a.writeReg(1, VCMDQ_GERRORN, a.readReg(1, VCMDQ_GERROR));
    drv.cmdqv!.service();
    expect(a.readReg(1, VCMDQ_CONS)).toBe(4);
    expect([...a.viommu.vintf.errMap]).toEqual([0, 0, 0, 0]);
  });

  it('a PROD more than one queue ahead of CONS (overrun) stops the queue cleanly', () => {
    const { drv, a } = setup();
    const q = a.allocQueue(0, 2); // 4 entries
    a.writeReg(0, VCMDQ_CONFIG, 1);
    a.writeReg(0, VCMDQ_PROD, 5 | 8); // index 5 of a 4-entry queue, wrap bit set
    void q;
    expect(drv.cmdqv!.service()).toBe(0);
    expect((a.readReg(0, VCMDQ_CONS) >>> 24) & 0x7f).toBe(1);
  });

  it('one guest cannot touch another guest: TLBIs stay in its VMID, errors in its VINTF', () => {
    const { host, drv, a } = setup();
    const b = vm(host, drv, 0x200, 0x10); // same vSID, same ASID, different VM
    expect(a.read()).toBe('OLD!');
    expect(b.read()).toBe('OLD!');
    a.remap();
    b.remap();
    const qa = a.allocQueue(0);
    const qb = b.allocQueue(0);
    a.writeReg(0, VCMDQ_CONFIG, 1);
    b.writeReg(0, VCMDQ_CONFIG, 1);
    a.produce(qa, { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 }, { opcode: 0x55 });
    drv.cmdqv!.service();
    expect(a.read()).toBe('NEW!');
    expect(b.read()).toBe('OLD!');
    expect(a.core.events).toHaveLength(1);
    expect(b.core.events).toHaveLength(0);
    expect(b.readReg(0, VCMDQ_CONS)).toBe(0);
    b.produce(qb, { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 });
    drv.cmdqv!.service();
    expect(b.read()).toBe('NEW!');
    expect(b.readReg(0, VCMDQ_CONS)).toBe(1);
  });

  it('destroying queues and the vIOMMU resets registers and frees the VINTF', () => {
    const { host, drv, a } = setup();
    const q0 = a.allocQueue(0);
    a.writeReg(0, VCMDQ_CONFIG, 1);
    a.produce(q0, { opcode: CMDQ_OP_CMD_SYNC });
    drv.cmdqv!.service();
    a.queues[0]!.destroy();
    expect([VCMDQ_CONS, VCMDQ_PROD, VCMDQ_CONFIG, VCMDQ_STATUS].map((r) => a.readReg(0, r))).toEqual([0, 0, 0, 0]);
    const vintf = a.viommu.vintf;
    a.viommu.destroy();
    expect(vintf.enabled).toBe(false);
    expect(a.core.mmaps.size).toBe(0);
    const b = vm(host, drv, 0x300, 0x20);
    expect(b.viommu.vintf).toBe(vintf);
  });

  it('doorbell: a PROD store plus Atomics.notify is consumed with no call into the driver', async () => {
    const { drv, a } = setup();
    const q = enabledQueueOverStaleMapping(a);
    drv.cmdqv!.startDoorbell();
    try {
      a.produce(q, { opcode: CMDQ_OP_TLBI_NH_ASID, asid: 0x42 });
      const regs = a.viommu.vintf.regs;
      Atomics.notify(regs, VCMDQ_PROD >> 2);
      for (let i = 0; i < 10 && a.readReg(0, VCMDQ_CONS) !== 1; i++) await new Promise((r) => setImmediate(r));
      expect(a.readReg(0, VCMDQ_CONS)).toBe(1);
      expect(a.read()).toBe('NEW!');
    } finally {
      drv.cmdqv!.stopDoorbell();
    }
  });
});
