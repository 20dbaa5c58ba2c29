// The hardware model on its own: a device table, command buffer and logs in PhysicalMemory, tables
// built with PageTable, commands written as bytes. Every invalidation kind is shown to be needed:
// the cached translation stays stale until exactly that command runs.
import { describe, expect, it } from '@jest/globals';
import { PhysicalMemory, PhysicalTableMemory, qwordsToBytes } from '@viommu/core';
import {
  CMD_COMPL_WAIT, CMD_COMPLETE_PPR, CMD_INV_ALL, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES, CMD_INV_IRT, type Command,
  buildInvAddress, encodeCommand,
} from '../formats/commands.js';
import { encodeDte, encodeGcr3Entry, type Dte } from '../formats/dte.js';
import { EVENT_ILLEGAL_COMMAND_ERROR, EVENT_INVALID_DEVICE_REQUEST, EVENT_IO_PAGE_FAULT, decodeEvent, decodePpr } from '../formats/logs.js';
import { PERM_R, PERM_W, PageTable } from '../pgtable/table.js';
import { AmdViHardware, NO_PASID } from './amd-vi.js';
import {
  MMIO_CMD_BUF_OFFSET, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET, MMIO_DEV_TABLE_OFFSET, MMIO_EVT_BUF_OFFSET, MMIO_EVT_TAIL_OFFSET,
  MMIO_PPR_LOG_OFFSET, MMIO_PPR_TAIL_OFFSET, MMIO_STATUS_OFFSET, STATUS_COMWAIT_INT,
} from './regs.js';

const DEV = 0x10;

function setup() {
  const mem = new PhysicalMemory();
  const frames = (n: number) => mem.allocRun(n).firstFrame * 4096;
  const completions: number[][] = [];
  const hw = new AmdViHardware(mem, {}, { pprComplete: (...a) => completions.push(a.map(Number)) });
  const devTable = frames(1); // 128 DeviceIDs
  hw.writeReg64(MMIO_DEV_TABLE_OFFSET, BigInt(devTable));
  const cmd = frames(1);
  hw.writeReg64(MMIO_CMD_BUF_OFFSET, BigInt(cmd) | (8n << 56n));
  const evt = frames(1);
  hw.writeReg64(MMIO_EVT_BUF_OFFSET, BigInt(evt) | (8n << 56n));
  const ppr = frames(1);
  hw.writeReg64(MMIO_PPR_LOG_OFFSET, BigInt(ppr) | (8n << 56n));
  let tail = 0;
  const run = (...cmds: (Command | Uint8Array)[]) => {
    for (const c of cmds) {
      mem.write(cmd + tail, c instanceof Uint8Array ? c : encodeCommand(c));
      tail = (tail + 16) % 4096;
    }
    hw.writeReg64(MMIO_CMD_TAIL_OFFSET, BigInt(tail));
  };
  const setDte = (devId: number, d: Partial<Dte>) => mem.write(devTable + devId * 32, encodeDte(d));
  const tables = new PhysicalTableMemory(mem);
  const page = (text: string) => {
    const pa = frames(1);
    mem.write(pa, new TextEncoder().encode(text));
    return pa;
  };
  const read = (pa: number, n: number) => new TextDecoder().decode(mem.read(pa, new Uint8Array(n)));
  const events = () => {
    const out = [];
    const t = Number(hw.readReg64(MMIO_EVT_TAIL_OFFSET));
    for (let at = 0; at < t; at += 16) out.push(decodeEvent(mem.read(evt + at, new Uint8Array(16))));
    return out;
  };
  return { mem, hw, run, setDte, tables, page, read, events, frames, completions, ppr, cmd };
}

/** A host v1 domain (DomainID 7) mapping 0x1000 → page A for DEV. */
function hostSetup(ats = false) {
  const s = setup();
  const t = new PageTable(s.tables, 'v1', 4);
  const a = s.page('AAAA');
  const b = s.page('BBBB');
  t.map(0x1000, a, 4096, PERM_R | PERM_W);
  s.setDte(DEV, { v: true, tv: true, ir: true, iw: true, mode: 4, hostRoot: t.root, domainId: 7, i: ats });
  return { ...s, t, a, b };
}

const inv = (start: number, last: number) => buildInvAddress(BigInt(start), BigInt(last));

describe('host (v1) translation and its caches', () => {
  it('walks a Mode-4 table to the page, with permissions', () => {
    const s = hostSetup();
    expect(s.read(s.hw.translate(DEV, NO_PASID, 0x1000, false), 4)).toBe('AAAA');
    expect(s.hw.translate(DEV, NO_PASID, 0x1004, false) - s.a).toBe(4);
    expect(s.hw.translate(DEV, NO_PASID, 0x9000, false)).toBe(-1);
    expect(s.events().at(-1)).toMatchObject({ code: EVENT_IO_PAGE_FAULT, devId: DEV, domainId: 7, address: 0x9000n });
  });

  it('INVALIDATE_IOMMU_PAGES (host, by DomainID and range) ends a stale IOTLB entry; other ranges do not', () => {
    const s = hostSetup();
    s.hw.translate(DEV, NO_PASID, 0x1000, false);
    s.t.remap(0x1000, s.b, PERM_R | PERM_W);
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a); // stale
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 7, pasid: 0, pde: true, gn: false, ...inv(0x4000, 0x5fff) });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a); // another range
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 8, pasid: 0, pde: true, gn: false, ...inv(0x0, 0xffff) });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a); // another domain
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 7, pasid: 0, pde: true, gn: false, ...inv(0x0, 0x3fff) });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.b);
  });

  it('INVALIDATE_DEVTAB_ENTRY ends a stale DTE (new DomainID / table only after it)', () => {
    const s = hostSetup();
    s.hw.translate(DEV, NO_PASID, 0x1000, false);
    const t2 = new PageTable(s.tables, 'v1', 4);
    t2.map(0x1000, s.b, 4096, PERM_R);
    s.setDte(DEV, { v: true, tv: true, ir: true, iw: true, mode: 4, hostRoot: t2.root, domainId: 9 });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a);
    s.run({ op: CMD_INV_DEV_ENTRY, devId: DEV + 1 });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a);
    s.run({ op: CMD_INV_DEV_ENTRY, devId: DEV });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.b);
  });

  it('INVALIDATE_IOTLB_PAGES ends a stale device IOTLB (ATS) entry that survives INVALIDATE_IOMMU_PAGES', () => {
    const s = hostSetup(true);
    s.hw.translate(DEV, NO_PASID, 0x1000, false);
    s.t.remap(0x1000, s.b, PERM_R | PERM_W);
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 7, pasid: 0, pde: true, gn: false, ...inv(0x1000, 0x1fff) });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a); // the device's own cache
    s.run({ op: CMD_INV_IOTLB_PAGES, devId: DEV, pasid: 0, maxPend: 0, queueId: DEV, gn: false, ...inv(0x1000, 0x1fff) });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.b);
  });

  it('INVALIDATE_IOMMU_ALL drops the DTE cache, IOTLB and device IOTLBs at once', () => {
    const s = hostSetup(true);
    s.hw.translate(DEV, NO_PASID, 0x1000, false);
    s.t.remap(0x1000, s.b, PERM_R | PERM_W);
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.a);
    s.run({ op: CMD_INV_ALL });
    expect(s.hw.translate(DEV, NO_PASID, 0x1000, false)).toBe(s.b);
  });

  it('a read-only leaf refuses writes with a PR|PE|RW page fault; a blocked DTE (no IR/IW, Mode 0) refuses everything', () => {
    const s = hostSetup();
    s.t.map(0x2000, s.b, 4096, PERM_R);
    expect(s.hw.translate(DEV, NO_PASID, 0x2000, true)).toBe(-1);
    expect(s.events().at(-1)!.flags).toBe(0x010 | 0x040 | 0x020);
    s.setDte(DEV + 1, { v: true, tv: true });
    expect(s.hw.translate(DEV + 1, NO_PASID, 0x1000, false)).toBe(-1);
    // The kernel's cleared DTE (V only, TV=0) blocks too; V=0 passes untranslated.
    s.setDte(DEV + 2, { v: true });
    expect(s.hw.translate(DEV + 2, NO_PASID, 0x1000, false)).toBe(-1);
    expect(s.hw.translate(DEV + 3, NO_PASID, 0x1000, false)).toBe(0x1000);
    // A PASID request to a DTE without GV is an invalid device request.
    expect(s.hw.translate(DEV, 3, 0x1000, false)).toBe(-1);
    expect(s.events().at(-1)!.code).toBe(EVENT_INVALID_DEVICE_REQUEST);
  });
});

describe('nested translation (guest v2 through host v1)', () => {
  function nested(glx = 0) {
    const s = setup();
    // Guest "RAM": GPA 0x100000.. maps to a run of host frames through the host table.
    const ramSpa = s.frames(64);
    const s2 = new PageTable(s.tables, 'v1', 4);
    s2.map(0x10_0000, ramSpa, 64 * 4096, PERM_R | PERM_W);
    let next = 0;
    const gmem = {
      readU32: (gpa: number) => s.mem.readU32(ramSpa + gpa - 0x10_0000),
      writeU32: (gpa: number, v: number) => s.mem.writeU32(ramSpa + gpa - 0x10_0000, v),
      allocTable: () => 0x10_0000 + (next++ * 4096),
    };
    const g1 = new PageTable(gmem, 'v2', 4);
    const g2 = new PageTable(gmem, 'v2', 4);
    const dataGpa = gmem.allocTable();
    s.mem.write(ramSpa + dataGpa - 0x10_0000, new TextEncoder().encode('guest'));
    g1.map(0x4000_0000, dataGpa, 4096, PERM_R | PERM_W);
    g2.map(0x4000_0000, dataGpa + 8, 4096, PERM_R); // unaligned on purpose: the walker takes [51:12]
    // GCR3: one or two levels; PASID 0 → g1, PASID 0x205 → g2.
    const root = gmem.allocTable();
    const put = (gpa: number, idx: number, v: bigint) => s.mem.write(ramSpa + gpa - 0x10_0000 + idx * 8, qwordsToBytes([v]));
    if (glx === 0) {
      put(root, 0, encodeGcr3Entry(true, g1.root));
    } else {
      const l0a = gmem.allocTable();
      const l0b = gmem.allocTable();
      put(root, 0, encodeGcr3Entry(true, l0a));
      put(root, 1, encodeGcr3Entry(true, l0b));
      put(l0a, 0, encodeGcr3Entry(true, g1.root));
      put(l0b, 5, encodeGcr3Entry(true, g2.root));
    }
    s.setDte(DEV, { v: true, tv: true, ir: true, iw: true, mode: 4, hostRoot: s2.root, domainId: 3, gv: true, giov: true, glx, gcr3: root });
    return { ...s, s2, g1, g2, ramSpa, dataGpa, gmem };
  }

  it('PASID-less requests use PASID 0 through GIoV; the output and every table address go through stage-2', () => {
    const s = nested();
    const pa = s.hw.translate(DEV, NO_PASID, 0x4000_0010, true);
    expect(pa).toBe(s.ramSpa + s.dataGpa - 0x10_0000 + 0x10);
    expect(s.read(pa - 0x10, 5)).toBe('guest');
  });

  it('a two-level GCR3 table indexes PASID by 9-bit groups; a guest read-only page refuses writes', () => {
    const s = nested(1);
    expect(s.hw.translate(DEV, 0x205, 0x4000_0000, false)).toBe(s.ramSpa + s.dataGpa - 0x10_0000);
    expect(s.hw.translate(DEV, 0x205, 0x4000_0000, true)).toBe(-1);
    expect(s.events().at(-1)).toMatchObject({ code: EVENT_IO_PAGE_FAULT, pasid: 0x205, flags: 0x001 | 0x010 | 0x040 | 0x020 });
    expect(s.hw.translate(DEV, 0x206, 0x4000_0000, false)).toBe(-1); // no GCR3 entry
  });

  it('guest pages (GN) are flushed by INVALIDATE_IOMMU_PAGES with GN and the PASID, not by another PASID', () => {
    const s = nested(1);
    const other = s.gmem.allocTable();
    s.hw.translate(DEV, 0, 0x4000_0000, false);
    s.g1.remap(0x4000_0000, other, PERM_R | PERM_W);
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 3, pasid: 0x205, pde: true, gn: true, ...inv(0x4000_0000, 0x4000_0fff) });
    expect(s.hw.translate(DEV, 0, 0x4000_0000, false)).toBe(s.ramSpa + s.dataGpa - 0x10_0000);
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 3, pasid: 0, pde: true, gn: true, ...inv(0x4000_0000, 0x4000_0fff) });
    expect(s.hw.translate(DEV, 0, 0x4000_0000, false)).toBe(s.ramSpa + other - 0x10_0000);
  });

  it('a host (GN=0) invalidation of the domain also drops its nested translations', () => {
    const s = nested();
    s.hw.translate(DEV, NO_PASID, 0x4000_0000, false);
    const spare = s.frames(1);
    s.s2.remap(s.dataGpa, spare, PERM_R | PERM_W);
    expect(s.hw.translate(DEV, NO_PASID, 0x4000_0000, false)).toBe(s.ramSpa + s.dataGpa - 0x10_0000);
    s.run({ op: CMD_INV_IOMMU_PAGES, domainId: 3, pasid: 0, pde: true, gn: false, ...inv(s.dataGpa, s.dataGpa + 0xfff) });
    expect(s.hw.translate(DEV, NO_PASID, 0x4000_0000, false)).toBe(spare);
  });

  it('a guest table pointer to a GPA outside stage-2 faults without touching anything', () => {
    const s = nested();
    s.g1.remap(0x4000_0000, 0x7000_0000, PERM_R | PERM_W);
    s.run({ op: CMD_INV_ALL });
    expect(s.hw.translate(DEV, NO_PASID, 0x4000_0000, false)).toBe(-1);
    expect(s.events().at(-1)!.code).toBe(EVENT_IO_PAGE_FAULT);
  });
});

describe('command processor and logs', () => {
  it('COMPLETION_WAIT stores its 64-bit data and raises ComWaitInt with I', () => {
    const s = setup();
    const sem = s.frames(1);
    s.run({ op: CMD_COMPL_WAIT, s: true, i: true, f: false, storeAddr: BigInt(sem + 8), storeData: 0x1122_3344_5566_7788n });
    expect(s.mem.readU64(sem + 8)).toBe(0x1122_3344_5566_7788n);
    expect(Number(s.hw.readReg64(MMIO_STATUS_OFFSET)) & STATUS_COMWAIT_INT).toBe(STATUS_COMWAIT_INT);
  });

  it('INVALIDATE_INTERRUPT_TABLE is accepted (no interrupt remapping is modelled)', () => {
    const s = setup();
    s.run({ op: CMD_INV_IRT, devId: DEV });
    expect(s.hw.stats.irtInvalidations).toBe(1);
  });

  it('an unknown opcode logs ILLEGAL_COMMAND_ERROR with its address and stops the processor on it', () => {
    const s = setup();
    const bad = new Uint8Array(16);
    bad[7] = 0xf0; // opcode 0xF
    s.run({ op: CMD_INV_IRT, devId: 1 }, bad, { op: CMD_INV_IRT, devId: 2 });
    expect(Number(s.hw.readReg64(MMIO_CMD_HEAD_OFFSET))).toBe(16);
    expect(s.hw.stats.irtInvalidations).toBe(1);
    expect(s.events().at(-1)).toMatchObject({ code: EVENT_ILLEGAL_COMMAND_ERROR, address: BigInt(s.cmd + 16) });
  });

  it('page requests go to the PPR log; COMPLETE_PPR_REQUEST reaches the device', () => {
    const s = setup();
    expect(s.hw.pageRequest({ devId: DEV, pasid: 0x12345, address: 0x7000n, read: true, write: true, tag: 0x203 })).toBe(true);
    expect(Number(s.hw.readReg64(MMIO_PPR_TAIL_OFFSET))).toBe(16);
    expect(decodePpr(s.mem.read(s.ppr, new Uint8Array(16)))).toMatchObject({ devId: DEV, pasid: 0x12345, tag: 0x203, read: true, write: true, gn: true, type: 1, address: 0x7000n });
    s.run({ op: CMD_COMPLETE_PPR, devId: DEV, pasid: 0x12345, gn: true, tag: 3, status: 0 });
    expect(s.completions).toEqual([[DEV, 0x12345, 1, 3, 0]]);
  });
});
