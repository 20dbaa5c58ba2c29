import { describe, expect, it } from '@jest/globals';
import {
  CMDQ_OP_CFGI_ALL, CMDQ_OP_CFGI_CD, CMDQ_OP_CFGI_CD_ALL, CMDQ_OP_CFGI_STE, CMDQ_OP_CMD_SYNC, CMDQ_OP_TLBI_NH_ALL,
  CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA, CMDQ_OP_TLBI_NH_VAA, CMDQ_OP_TLBI_NSNH_ALL, CMDQ_OP_TLBI_S12_VMALL,
  CMDQ_OP_TLBI_S2_IPA, encodeCommand,
} from '../formats/command.js';
import {
  EVT_CLASS_CD, EVT_CLASS_IN, EVT_CLASS_TT, EVT_ID_ACCESS_FAULT, EVT_ID_BAD_CD_CONFIG, EVT_ID_BAD_STE_CONFIG,
  EVT_ID_BAD_STREAMID_CONFIG, EVT_ID_BAD_SUBSTREAMID_CONFIG, EVT_ID_PERMISSION_FAULT, EVT_ID_STREAM_DISABLED_FAULT,
  EVT_ID_TRANSLATION_FAULT,
} from '../formats/event.js';
import { STE_CFG_ABORT, STE_CFG_BYPASS } from '../formats/ste.js';
import { s1LeafAttrs } from '../pgtable/builder.js';
import { Guest, SmmuRig } from '../testing/rig.js';
import { CERROR_ILL, GERROR_CMDQ_ERR, SMMU_CMDQ_CONS, SMMU_GERROR, SMMU_GERRORN } from './regs.js';
import { ACCESS_WRITE, DmaFault, NO_SSID } from './smmu.js';

const SID = 0x21;
const VMID = 5;
const ASID = 0x77;
const GUEST_RAM_IPA = 0x4000_0000;
const RW = s1LeafAttrs({ ap: 1 });

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A guest with one nested stream: IOVA 0x1234_5000 → IPA data page, 4-level 4 KiB tables. */
function nestedSetup(extra: { cdLog2?: number } = {}) {
  const rig = new SmmuRig();
  const guest = new Guest(rig.mem, GUEST_RAM_IPA, 16 << 20, VMID);
  const s1 = guest.s1Table();
  const data = guest.alloc(4096);
  guest.write(data + 0x10, text('hello from guest RAM'));
  s1.map(0x1234_5000, data, 4096, RW);
  const cdTable = guest.cdTable(extra.cdLog2 ?? 0);
  guest.writeCd(cdTable, 0, guest.cdFor(s1, ASID));
  rig.writeSte(SID, rig.nestedSte(guest.s2, cdTable, { s1CdMax: extra.cdLog2 ?? 0, s1dss: 2 }));
  return { rig, guest, s1, data, cdTable };
}

function read(rig: SmmuRig, iova: number, n: number, ssid = NO_SSID): string {
  return new TextDecoder().decode(rig.smmu.dmaRead(SID, ssid, iova, new Uint8Array(n)));
}

describe('nested translation', () => {
  it('resolves a 4-level stage-1 walk through stage 2 to the right bytes of guest RAM', () => {
    const { rig, guest, data } = nestedSetup();
    expect(read(rig, 0x1234_5010, 20)).toBe('hello from guest RAM');
    // The final PA is the host page backing the guest's data IPA.
    expect(rig.smmu.translate(SID, NO_SSID, 0x1234_5010, 0)).toBe(guest.pa(data) + 0x10);
    expect(rig.events()).toEqual([]);
  });

  it('writes through to guest memory', () => {
    const { rig, guest, data } = nestedSetup();
    rig.smmu.dmaWrite(SID, NO_SSID, 0x1234_5800, text('device wrote this'));
    expect(new TextDecoder().decode(guest.read(data + 0x800, 17))).toBe('device wrote this');
  });

  it('translates per substream through each CD (PASID)', () => {
    const { rig, guest, cdTable } = nestedSetup({ cdLog2: 4 });
    const other = guest.s1Table();
    const page = guest.alloc(4096);
    guest.write(page, text('substream 3'));
    other.map(0x1234_5000, page, 4096, RW);
    guest.writeCd(cdTable, 3, guest.cdFor(other, ASID + 1));
    expect(read(rig, 0x1234_5000, 11, 3)).toBe('substream 3');
    // Requests without PASID use CD 0 (S1DSS = SSID0).
    expect(read(rig, 0x1234_5010, 5)).toBe('hello');
    // SSID beyond S1CDMax → C_BAD_SUBSTREAMID.
    expect(() => read(rig, 0x1234_5000, 4, 16)).toThrow(DmaFault);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_BAD_SUBSTREAMID_CONFIG, sid: SID, ssv: true, ssid: 16 }]);
  });

  it('applies stage 2 to every stage-1 table fetch (CLASS = TT, faulting IPA reported)', () => {
    const { rig, guest, s1 } = nestedSetup();
    // Take the guest's level-0 table page away from stage 2.
    const root = s1.root;
    guest.s2.unmap(BigInt(root), 4096n);
    expect(() => read(rig, 0x1234_5000, 4)).toThrow(DmaFault);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_TRANSLATION_FAULT, s2: true, class: EVT_CLASS_TT, ttRead: true, addr3: root, inputAddr: 0x1234_5000 }]);
  });

  it('applies stage 2 to the CD fetch (CLASS = CD)', () => {
    const { rig, guest, cdTable } = nestedSetup();
    guest.s2.unmap(BigInt(cdTable - (cdTable % 4096)), 4096n);
    expect(() => read(rig, 0x1234_5000, 4)).toThrow(DmaFault);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_TRANSLATION_FAULT, s2: true, class: EVT_CLASS_CD, addr3: cdTable - (cdTable % 4096) }]);
  });

  it('reports stage-1 and stage-2 permission faults separately', () => {
    const { rig, guest, s1 } = nestedSetup();
    const ro = guest.alloc(4096);
    s1.map(0x2000_0000, ro, 4096, s1LeafAttrs({ ap: 3 }));
    expect(rig.smmu.translate(SID, NO_SSID, 0x2000_0000, 0)).toBe(guest.pa(ro));
    expect(rig.smmu.translate(SID, NO_SSID, 0x2000_0000, ACCESS_WRITE)).toBe(-1);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_PERMISSION_FAULT, s2: false, rnw: false }]);

    // A stage-2 read-only page under a stage-1 read-write mapping.
    const s2ro = 0x7000_0000;
    const backing = rig.alloc(4096);
    guest.s2.map(BigInt(s2ro), BigInt(backing), 4096n, 1);
    s1.map(0x3000_0000, s2ro, 4096, RW);
    expect(rig.smmu.translate(SID, NO_SSID, 0x3000_0008, 0)).toBe(backing + 8);
    expect(rig.smmu.translate(SID, NO_SSID, 0x3000_0008, ACCESS_WRITE)).toBe(-1);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_PERMISSION_FAULT, s2: true, class: EVT_CLASS_IN, addr3: s2ro }]);
  });

  it('raises F_ACCESS for a clear access flag, and not with CD.AFFD', () => {
    const { rig, guest, s1, cdTable } = nestedSetup();
    const page = guest.alloc(4096);
    s1.map(0x5000_0000, page, 4096, s1LeafAttrs({ af: false }));
    expect(rig.smmu.translate(SID, NO_SSID, 0x5000_0000, 0)).toBe(-1);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_ACCESS_FAULT, s2: false }]);
    guest.writeCd(cdTable, 0, guest.cdFor(s1, ASID, { affd: true }));
    rig.submit({ opcode: CMDQ_OP_CFGI_CD, sid: SID, ssid: 0, leaf: true });
    expect(rig.smmu.translate(SID, NO_SSID, 0x5000_0000, 0)).toBe(guest.pa(page));
  });
});

describe('granules and blocks', () => {
  it.each([
    ['4 KiB, 39-bit, 2 MiB block', 12, 39, 2 << 20],
    ['16 KiB, 47-bit, 32 MiB block', 14, 47, 32 << 20],
    ['64 KiB, 42-bit, 64 KiB pages', 16, 42, 64 << 10],
    ['64 KiB, 48-bit, 512 MiB block', 16, 48, 512 << 20],
  ])('walks %s', (_n, granule, bits, size) => {
    const rig = new SmmuRig();
    const guest = new Guest(rig.mem, GUEST_RAM_IPA, 8 << 20, VMID);
    const s1 = guest.s1Table(granule, bits);
    // Point the block at guest RAM and read a byte in its middle, where guest RAM allows.
    const iova = size * 3;
    s1.map(iova, size >= (8 << 20) ? 0 : GUEST_RAM_IPA, size, RW);
    const cdTable = guest.cdTable();
    guest.writeCd(cdTable, 0, guest.cdFor(s1, 1));
    rig.writeSte(SID, rig.nestedSte(guest.s2, cdTable));
    if (size >= 8 << 20) {
      // The block maps IPA 0.. which stage 2 does not cover: a stage-2 fault at the right IPA.
      expect(rig.smmu.translate(SID, NO_SSID, iova + 0x1_2345, 0)).toBe(-1);
      expect(rig.events()).toMatchObject([{ id: EVT_ID_TRANSLATION_FAULT, s2: true, class: EVT_CLASS_IN, addr3: 0x1_2000 }]);
    } else {
      const off = size - 16;
      expect(rig.smmu.translate(SID, NO_SSID, iova + off, 0)).toBe(guest.pa(GUEST_RAM_IPA) + off);
    }
  });
});

describe('stream configuration faults', () => {
  it('C_BAD_STREAMID beyond the stream table, C_BAD_STE for V = 0, silent abort for Config = abort', () => {
    const rig = new SmmuRig({ sidLog2: 4 });
    expect(rig.smmu.translate(16, NO_SSID, 0, 0)).toBe(-1);
    expect(rig.smmu.translate(1, NO_SSID, 0, 0)).toBe(-1);
    rig.writeSte(2, { v: true, config: STE_CFG_ABORT });
    rig.writeSte(3, { v: true, config: STE_CFG_BYPASS });
    expect(rig.smmu.translate(2, NO_SSID, 0x1000, 0)).toBe(-1);
    expect(rig.smmu.translate(3, NO_SSID, 0x1000, 0)).toBe(0x1000);
    expect(rig.events().map((e) => [e.id, e.sid])).toEqual([
      [EVT_ID_BAD_STREAMID_CONFIG, 16],
      [EVT_ID_BAD_STE_CONFIG, 1],
    ]);
  });

  it('C_BAD_STE for an unsupported stage-2 granule or reserved S1Fmt', () => {
    const rig = new SmmuRig({ features: { gran16k: false } });
    const guest = new Guest(rig.mem, GUEST_RAM_IPA, 1 << 20, VMID);
    rig.writeSte(SID, rig.s2Ste(guest.s2, { s2tg: 2 }));
    expect(rig.smmu.translate(SID, NO_SSID, GUEST_RAM_IPA, 0)).toBe(-1);
    rig.writeSte(SID + 1, rig.nestedSte(guest.s2, GUEST_RAM_IPA, { s1fmt: 3 }));
    expect(rig.smmu.translate(SID + 1, NO_SSID, 0, 0)).toBe(-1);
    expect(rig.events().map((e) => e.id)).toEqual([EVT_ID_BAD_STE_CONFIG, EVT_ID_BAD_STE_CONFIG]);
  });

  it('C_BAD_CD for an invalid CD, F_STREAM_DISABLED for non-substream traffic with S1DSS = terminate', () => {
    const { rig, guest, s1, cdTable } = nestedSetup({ cdLog2: 2 });
    guest.writeCd(cdTable, 1, guest.cdFor(s1, 9, { v: false }));
    expect(rig.smmu.translate(SID, 1, 0x1234_5000, 0)).toBe(-1);
    rig.writeSte(SID, rig.nestedSte(guest.s2, cdTable, { s1CdMax: 2, s1dss: 0 }));
    rig.submit({ opcode: CMDQ_OP_CFGI_STE, sid: SID, leaf: true });
    expect(rig.smmu.translate(SID, NO_SSID, 0x1234_5000, 0)).toBe(-1);
    expect(rig.events().map((e) => e.id)).toEqual([EVT_ID_BAD_CD_CONFIG, EVT_ID_STREAM_DISABLED_FAULT]);
  });
});

describe('stale until invalidated', () => {
  /** Maps IOVA 0x1234_5000 to page A, translates (fills the TLB), then remaps it to page B in memory. */
  function remapped() {
    const s = nestedSetup();
    const b = s.guest.alloc(4096);
    s.guest.write(b, text('NEW!'));
    s.guest.write(s.data, text('OLD!'));
    expect(read(s.rig, 0x1234_5000, 4)).toBe('OLD!');
    s.s1.unmap(0x1234_5000, 4096);
    s.s1.map(0x1234_5000, b, 4096, RW);
    expect(read(s.rig, 0x1234_5000, 4)).toBe('OLD!');
    return s;
  }

  it('TLBI_NH_VA: a different ASID or address leaves it, the right one drops it', () => {
    const { rig } = remapped();
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID, asid: ASID + 1, addr: 0x1234_5000, leaf: true });
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID, asid: ASID, addr: 0x1234_6000, leaf: true });
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID + 1, asid: ASID, addr: 0x1234_5000, leaf: true });
    expect(read(rig, 0x1234_5000, 4)).toBe('OLD!');
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID, asid: ASID, addr: 0x1234_5000, leaf: true });
    expect(read(rig, 0x1234_5000, 4)).toBe('NEW!');
  });

  it('TLBI_NH_VA with a range (RIL) covering the page', () => {
    const { rig } = remapped();
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID, asid: ASID, addr: 0x1234_0000, tg: 1, num: 4, scale: 0 });
    expect(read(rig, 0x1234_5000, 4)).toBe('OLD!'); // 5 pages from 0x1234_0000 end before 0x1234_5000
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID, asid: ASID, addr: 0x1234_0000, tg: 1, num: 5, scale: 0 });
    expect(read(rig, 0x1234_5000, 4)).toBe('NEW!');
  });

  it.each([
    ['TLBI_NH_ASID', { opcode: CMDQ_OP_TLBI_NH_ASID, vmid: VMID, asid: ASID + 1 }, { opcode: CMDQ_OP_TLBI_NH_ASID, vmid: VMID, asid: ASID }],
    ['TLBI_NH_VAA', { opcode: CMDQ_OP_TLBI_NH_VAA, vmid: VMID + 1, addr: 0x1234_5000 }, { opcode: CMDQ_OP_TLBI_NH_VAA, vmid: VMID, addr: 0x1234_5000 }],
    ['TLBI_NH_ALL', { opcode: CMDQ_OP_TLBI_NH_ALL, vmid: VMID + 1 }, { opcode: CMDQ_OP_TLBI_NH_ALL, vmid: VMID }],
    ['TLBI_S12_VMALL', { opcode: CMDQ_OP_TLBI_S12_VMALL, vmid: VMID + 1 }, { opcode: CMDQ_OP_TLBI_S12_VMALL, vmid: VMID }],
    ['TLBI_NSNH_ALL', { opcode: CMDQ_OP_TLBI_S2_IPA, vmid: VMID, addr: 0x1234_5000 }, { opcode: CMDQ_OP_TLBI_NSNH_ALL }],
  ])('%s', (_n, wrong, right) => {
    const { rig } = remapped();
    rig.submit(wrong);
    expect(read(rig, 0x1234_5000, 4)).toBe('OLD!');
    rig.submit(right);
    expect(read(rig, 0x1234_5000, 4)).toBe('NEW!');
  });

  it('TLBI_S2_IPA drops stage-2 entries but not combined nested entries (NH_ALL needed, as the kernel does)', () => {
    const { rig, guest, data } = nestedSetup();
    guest.write(data, text('OLD!'));
    expect(read(rig, 0x1234_5000, 4)).toBe('OLD!');
    // Move the data IPA to another host page in stage 2.
    const moved = rig.alloc(4096);
    rig.mem.write(moved, text('MOVD'));
    guest.s2.unmap(BigInt(data), 4096n);
    guest.s2.map(BigInt(data), BigInt(moved), 4096n, 3);
    rig.submit({ opcode: CMDQ_OP_TLBI_S2_IPA, vmid: VMID, addr: data, leaf: true });
    expect(read(rig, 0x1234_5000, 4)).toBe('OLD!');
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_ALL, vmid: VMID });
    expect(read(rig, 0x1234_5000, 4)).toBe('MOVD');
  });

  it('TLBI_S2_IPA on a stage-2-only stream', () => {
    const rig = new SmmuRig();
    const guest = new Guest(rig.mem, GUEST_RAM_IPA, 1 << 20, VMID);
    rig.writeSte(SID, rig.s2Ste(guest.s2));
    guest.write(GUEST_RAM_IPA, text('OLD!'));
    expect(read(rig, GUEST_RAM_IPA, 4)).toBe('OLD!');
    const moved = rig.alloc(4096);
    rig.mem.write(moved, text('NEW!'));
    guest.s2.unmap(BigInt(GUEST_RAM_IPA), 4096n);
    guest.s2.map(BigInt(GUEST_RAM_IPA), BigInt(moved), 4096n, 3);
    rig.submit({ opcode: CMDQ_OP_TLBI_S2_IPA, vmid: VMID, addr: GUEST_RAM_IPA + 0x1000 });
    expect(read(rig, GUEST_RAM_IPA, 4)).toBe('OLD!');
    rig.submit({ opcode: CMDQ_OP_TLBI_S2_IPA, vmid: VMID, addr: GUEST_RAM_IPA });
    expect(read(rig, GUEST_RAM_IPA, 4)).toBe('NEW!');
  });

  /** A second CD at a new ASID with a different mapping; the STE/CD caches decide which is used. */
  function recd() {
    const s = nestedSetup({ cdLog2: 1 });
    s.guest.write(s.data, text('OLD!'));
    expect(read(s.rig, 0x1234_5000, 4)).toBe('OLD!');
    const s1b = s.guest.s1Table();
    const b = s.guest.alloc(4096);
    s.guest.write(b, text('NEW!'));
    s1b.map(0x1234_5000, b, 4096, RW);
    s.guest.writeCd(s.cdTable, 0, s.guest.cdFor(s1b, ASID + 5));
    expect(read(s.rig, 0x1234_5000, 4)).toBe('OLD!');
    return s;
  }

  it.each([
    ['CFGI_CD', { opcode: CMDQ_OP_CFGI_CD, sid: SID, ssid: 1 }, { opcode: CMDQ_OP_CFGI_CD, sid: SID, ssid: 0, leaf: true }],
    ['CFGI_CD_ALL', { opcode: CMDQ_OP_CFGI_CD_ALL, sid: SID + 1 }, { opcode: CMDQ_OP_CFGI_CD_ALL, sid: SID }],
    ['CFGI_STE', { opcode: CMDQ_OP_CFGI_STE, sid: SID - 1 }, { opcode: CMDQ_OP_CFGI_STE, sid: SID, leaf: true }],
    ['CFGI_ALL', { opcode: CMDQ_OP_CFGI_ALL, sid: 0, range: 4 }, { opcode: CMDQ_OP_CFGI_ALL, range: 31 }],
  ])('%s', (_n, wrong, right) => {
    const { rig } = recd();
    rig.submit(wrong);
    expect(read(rig, 0x1234_5000, 4)).toBe('OLD!');
    rig.submit(right);
    expect(read(rig, 0x1234_5000, 4)).toBe('NEW!');
  });
});

describe('command queue errors', () => {
  it('stops at an illegal command with CERROR_ILL and GERROR.CMDQ_ERR, and resumes after acknowledgement', () => {
    const { rig } = nestedSetup();
    const s = rig.smmu;
    const cons = rig.submit(
      { opcode: CMDQ_OP_CMD_SYNC },
      { opcode: 0x7f },
      { opcode: CMDQ_OP_TLBI_NSNH_ALL },
    );
    expect(cons & 0xffff).toBe(1); // stopped at the bad entry
    expect((cons >>> 24) & 0x7f).toBe(CERROR_ILL);
    expect(s.readReg(SMMU_GERROR) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    read(rig, 0x1234_5000, 4); // TLB filled
    expect(s.tlb.size).toBeGreaterThan(0);
    // Nothing after the bad entry ran: a later submit does not move the stopped queue either.
    rig.submit({ opcode: CMDQ_OP_CMD_SYNC });
    expect(s.readReg(SMMU_CMDQ_CONS) & 0xffff).toBe(1);
    expect(s.tlb.size).toBeGreaterThan(0);
    // Software replaces the entry with a SYNC (as the Linux driver does) and acknowledges.
    rig.mem.write(rig.cmdqBase + 16, encodeCommand({ opcode: CMDQ_OP_CMD_SYNC }));
    s.writeReg(SMMU_GERRORN, s.readReg(SMMU_GERROR));
    expect(s.readReg(SMMU_CMDQ_CONS)).toBe(4);
    expect(s.tlb.size).toBe(0);
  });

  it.each([
    ['unknown opcode', { opcode: 0x55 }],
    ['TLBI_EL2_ALL without HYP', { opcode: 0x20 }],
    ['CMD_SYNC with reserved CS', { opcode: CMDQ_OP_CMD_SYNC, cs: 3 }],
    ['RESUME without stall support', { opcode: 0x44 }],
  ])('treats %s as illegal', (_n, cmd) => {
    const rig = new SmmuRig();
    const cons = rig.submit(cmd);
    expect((cons >>> 24) & 0x7f).toBe(CERROR_ILL);
    expect(cons & 0xffff).toBe(0);
  });
});

describe('event queue', () => {
  it('drops records and sets the overflow flag when full', () => {
    const rig = new SmmuRig({ evtqLog2: 1 });
    for (let i = 0; i < 3; i++) rig.smmu.translate(200, NO_SSID, i * 4096, 0);
    const prod = rig.smmu.readReg(0x100a8);
    expect(prod >>> 31).toBe(1);
    expect(rig.events().map((e) => e.inputAddr)).toEqual([0, 4096]);
  });
});

describe('global entries and two-level CD tables', () => {
  it('a global (nG = 0) entry matches every ASID and survives TLBI_NH_ASID, not TLBI_NH_VA', () => {
    const { rig, guest, s1, cdTable } = nestedSetup({ cdLog2: 2 });
    const g = guest.alloc(4096);
    guest.write(g, text('GLOB'));
    s1.map(0x6000_0000, g, 4096, s1LeafAttrs({ ap: 1, nG: false }));
    guest.writeCd(cdTable, 1, guest.cdFor(guest.s1Table(), ASID + 3)); // an empty table at another ASID
    expect(read(rig, 0x6000_0000, 4)).toBe('GLOB');
    // Substream 1 has no mapping of its own, but the global entry matches its ASID too.
    expect(read(rig, 0x6000_0000, 4, 1)).toBe('GLOB');
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_ASID, vmid: VMID, asid: ASID });
    expect(read(rig, 0x6000_0000, 4, 1)).toBe('GLOB');
    rig.submit({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: VMID, asid: ASID + 3, addr: 0x6000_0000 });
    expect(() => read(rig, 0x6000_0000, 4, 1)).toThrow(DmaFault);
  });

  it('walks a two-level CD table (S1Fmt = 64 KiB leaves) through stage 2', () => {
    const rig = new SmmuRig();
    const guest = new Guest(rig.mem, GUEST_RAM_IPA, 4 << 20, VMID);
    const s1 = guest.s1Table();
    const page = guest.alloc(4096);
    guest.write(page, text('ssid 1500'));
    s1.map(0x1000, page, 4096, RW);
    const l1 = guest.alloc(8 * 2, 64);
    const leaf = guest.alloc(64 * 1024, 65536);
    // SSID 1500 = L1 index 1, CD 476 of that leaf.
    guest.write(l1 + 8, new Uint8Array(new BigUint64Array([BigInt(leaf) | 1n]).buffer));
    guest.writeCd(leaf, 1500 - 1024, guest.cdFor(s1, 9));
    rig.writeSte(SID, rig.nestedSte(guest.s2, l1, { s1fmt: 2, s1CdMax: 11, s1dss: 0 }));
    expect(read(rig, 0x1000, 9, 1500)).toBe('ssid 1500');
    // L1 descriptor 0 is invalid: C_BAD_SUBSTREAMID.
    expect(() => read(rig, 0x1000, 4, 3)).toThrow(DmaFault);
    expect(rig.events()).toMatchObject([{ id: EVT_ID_BAD_SUBSTREAMID_CONFIG, ssid: 3 }]);
  });
});
