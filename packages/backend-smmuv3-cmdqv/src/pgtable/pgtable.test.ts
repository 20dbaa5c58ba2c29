import { describe, expect, it } from '@jest/globals';
import { PhysicalMemory, PhysicalTableMemory } from '@viommu/core';
import { TableBuilder, s1LeafAttrs, s2LeafAttrs } from './builder.js';
import { GRANULE_16K, GRANULE_4K, GRANULE_64K, levelShift, s1StartLevel, s2StartLevel } from './granule.js';
import { Stage2Domain } from './s2-domain.js';
import { PERM_PR, PERM_PW, PERM_PX, PERM_UR, PERM_UW, PERM_UX, Walker } from './walk.js';

describe('granule geometry', () => {
  it('start levels and level shifts follow VMSAv8-64', () => {
    expect(s1StartLevel(GRANULE_4K, 48)).toBe(0);
    expect(s1StartLevel(GRANULE_4K, 39)).toBe(1);
    expect(s1StartLevel(GRANULE_16K, 47)).toBe(1);
    expect(s1StartLevel(GRANULE_16K, 48)).toBe(0);
    expect(s1StartLevel(GRANULE_64K, 48)).toBe(1);
    expect(s1StartLevel(GRANULE_64K, 42)).toBe(2);
    expect([0, 1, 2, 3].map((l) => levelShift(GRANULE_4K, l))).toEqual([39, 30, 21, 12]);
    expect([1, 2, 3].map((l) => levelShift(GRANULE_64K, l))).toEqual([42, 29, 16]);
    expect(s2StartLevel(GRANULE_4K, 0)).toBe(2);
    expect(s2StartLevel(GRANULE_4K, 2)).toBe(0);
    expect(s2StartLevel(GRANULE_64K, 1)).toBe(2);
  });
});

describe('Stage2Domain (the host nest-parent tables)', () => {
  it('maps with the largest blocks, writes architectural descriptors, and reports them through iovaToPhys', () => {
    const mem = new PhysicalMemory();
    const d = new Stage2Domain(mem, { vmid: 1 });
    expect(d.geometry.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    d.map(0x4000_0000n, 0x8000_0000n, 0x4000_0000n, 3); // one 1 GiB block
    d.map(0x20_0000n, 0x1234_5000n, 0x1000n, 1); // read-only page
    expect(d.iovaToPhys(0x4123_4567n)).toBe(0x8123_4567n);
    expect(d.iovaToPhys(0x20_0042n)).toBe(0x1234_5042n);
    expect(d.iovaToPhys(0x20_1000n)).toBeUndefined();
    const w = new Walker(mem);
    const p = { ttb: d.config.ttb, granuleShift: 12, inputBits: 48, startLevel: 0, outputBits: 48, affd: false };
    expect(w.walk(p, 2, 0x4123_4567, null)).toBe(true);
    expect([w.out, w.leafShift]).toEqual([0x8123_4567, 30]);
    expect(w.perm).toBe(PERM_UR | PERM_PR | PERM_UW | PERM_PW | PERM_UX | PERM_PX);
    expect(w.walk(p, 2, 0x20_0010, null)).toBe(true);
    expect(w.perm & (PERM_UW | PERM_PW)).toBe(0);
  });

  it('splits blocks on partial unmap and keeps the rest', () => {
    const mem = new PhysicalMemory();
    const d = new Stage2Domain(mem, { vmid: 1 });
    d.map(0n, 0x1_0000_0000n, 0x20_0000n, 3); // a 2 MiB block
    expect(d.unmap(0x1000n, 0x1000n)).toBe(0x1000n);
    expect(d.iovaToPhys(0n)).toBe(0x1_0000_0000n);
    expect(d.iovaToPhys(0x1000n)).toBeUndefined();
    expect(d.iovaToPhys(0x1f_f000n)).toBe(0x1_001f_f000n);
    expect(d.unmap(0n, 0x20_0000n)).toBe(0x1f_f000n);
    expect(d.iovaToPhys(0x1f_f000n)).toBeUndefined();
  });

  it('EEXIST over an existing mapping, taking back what the call mapped', () => {
    const mem = new PhysicalMemory();
    const d = new Stage2Domain(mem, { vmid: 1 });
    d.map(0x3000n, 0x9000n, 0x1000n, 3);
    expect(() => d.map(0x1000n, 0x10_0000n, 0x4000n, 3)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(d.iovaToPhys(0x1000n)).toBeUndefined();
    expect(d.iovaToPhys(0x2000n)).toBeUndefined();
    expect(d.iovaToPhys(0x3000n)).toBe(0x9000n);
  });
});

describe('Walker', () => {
  function table(g: number, bits: number) {
    const mem = new PhysicalMemory();
    const t = new TableBuilder(new PhysicalTableMemory(mem), g, bits, s1StartLevel(g, bits));
    return { mem, t, p: { ttb: t.root, granuleShift: g, inputBits: bits, startLevel: s1StartLevel(g, bits), outputBits: 48, affd: false } };
  }

  it('stage-1 AP and XN, with APTable limiting lower levels', () => {
    const { mem, t, p } = table(GRANULE_4K, 48);
    t.map(0x1000, 0x5000, 0x1000, s1LeafAttrs({ ap: 1 }));
    t.map(0x2000, 0x6000, 0x1000, s1LeafAttrs({ ap: 3, uxn: true }));
    t.map(0x3000, 0x7000, 0x1000, s1LeafAttrs({ ap: 0 }));
    const w = new Walker(mem);
    expect(w.walk(p, 1, 0x1000, null) && w.perm).toBe(PERM_PR | PERM_PW | PERM_UR | PERM_UW | PERM_UX); // EL0-writable: no PX
    expect(w.walk(p, 1, 0x2000, null) && w.perm).toBe(PERM_PR | PERM_PX | PERM_UR);
    expect(w.walk(p, 1, 0x3000, null) && w.perm).toBe(PERM_PR | PERM_PW | PERM_PX);
    // APTable[1] (no write) on the level-0 table descriptor.
    const l0 = t.root;
    mem.writeU32(l0 + 4, mem.readU32(l0 + 4) | (2 << 29));
    // No longer EL0-writable, so no longer implicitly privileged-execute-never.
    expect(w.walk(p, 1, 0x1000, null) && w.perm).toBe(PERM_PR | PERM_PX | PERM_UR | PERM_UX);
  });

  it('translation fault beyond the input size, address size fault beyond the output size', () => {
    const { mem, t, p } = table(GRANULE_64K, 42);
    t.map(0x1_0000, 0x2_0000, 0x1_0000, s1LeafAttrs());
    const w = new Walker(mem);
    expect(w.walk(p, 1, 2 ** 42, null)).toBe(false);
    expect(w.fault.id).toBe(0x10);
    expect(w.walk({ ...p, outputBits: 32 }, 1, 0x1_0000, null)).toBe(true);
    t.map(0x2_0000, 2 ** 40, 0x1_0000, s1LeafAttrs());
    expect(w.walk({ ...p, outputBits: 32 }, 1, 0x2_0000, null)).toBe(false);
    expect(w.fault.id).toBe(0x11);
  });

  it('stage-2 S2AP and XN', () => {
    const { mem, t, p } = table(GRANULE_4K, 40);
    t.map(0x1000, 0x5000, 0x1000, s2LeafAttrs({ read: true, write: false, xn: 2 }));
    const w = new Walker(mem);
    expect(w.walk(p, 2, 0x1000, null) && w.perm).toBe(PERM_UR | PERM_PR);
  });
});

describe('stage-2 concatenated start-level tables', () => {
  it('walks a 40-bit IPA space from level 1 with two concatenated tables (SL0 = 1)', () => {
    const mem = new PhysicalMemory();
    const t = new TableBuilder(new PhysicalTableMemory(mem), GRANULE_4K, 40, s2StartLevel(GRANULE_4K, 1));
    expect(t.startLevel).toBe(1);
    t.map(0x100_0000_0000 - 0x1000, 0x3000, 0x1000, s2LeafAttrs()); // the last page: second concatenated table
    t.map(0x1000, 0x4000, 0x1000, s2LeafAttrs());
    expect(t.root % 8192).toBe(0);
    // The second table's entry for the top GiB lives 4 KiB past the root.
    expect(mem.readU32(t.root + 4096 + 511 * 8) & 3).toBe(3);
    const w = new Walker(mem);
    const p = { ttb: t.root, granuleShift: 12, inputBits: 40, startLevel: 1, outputBits: 48, affd: false };
    expect(w.walk(p, 2, 0xff_ffff_f123, null) && w.out).toBe(0x3123);
    expect(w.walk(p, 2, 0x1008, null) && w.out).toBe(0x4008);
  });
});
