// Golden entries of the host v1 and guest v2 page-table formats as PageTable writes them.
import { describe, expect, it } from '@jest/globals';
import { PERM_R, PERM_W, PageTable, type TableMemory } from './table.js';

function fakeMemory(): TableMemory & { q(addr: number): bigint } {
  const words = new Map<number, number>();
  let next = 0x10_0000;
  return {
    readU32: (a) => words.get(a) ?? 0,
    writeU32: (a, v) => void words.set(a, v >>> 0),
    allocTable: () => (next += 0x1000),
    q: (a) => (BigInt(words.get(a + 4) ?? 0) << 32n) | BigInt(words.get(a) ?? 0),
  };
}

describe('v1 (host) entries', () => {
  it('PDEs carry PR, the next level (the AMD level of the table pointed to), IR/IW; leaves carry PR, the page, IR/IW', () => {
    const m = fakeMemory();
    const t = new PageTable(m, 'v1', 4);
    t.map(0x8000_1000, 0x1_2345_6000, 0x1000, PERM_R | PERM_W);
    // 0x8000_1000: indices 0 (level 3), 2 (level 2), 0 (level 1), 1 (level 0).
    expect(t.root).toBe(0x10_1000);
    expect(m.q(t.root)).toBe(0x6000_0000_0010_2601n); // → table 0x102000, Next Level 3
    expect(m.q(0x10_2000 + 2 * 8)).toBe(0x6000_0000_0010_3401n); // Next Level 2
    expect(m.q(0x10_3000)).toBe(0x6000_0000_0010_4201n); // Next Level 1
    expect(m.q(0x10_4000 + 8)).toBe(0x6000_0001_2345_6001n); // leaf: IW | IR | addr | PR
    t.map(0x8000_2000, 0x5000, 0x1000, PERM_R);
    expect(m.q(0x10_4000 + 16)).toBe(0x2000_0000_0000_5001n); // read-only: IR only
    expect(t.lookup(0x8000_1abc)).toBe(0x1_2345_6abc);
    expect(t.unmap(0x8000_1000, 0x2000)).toBe(0x2000);
    expect(m.q(0x10_4000 + 8)).toBe(0n);
  });
});

describe('v2 (guest, x86-64) entries', () => {
  it('non-leaf entries are P|RW|US|A; writable leaves P|RW|US|A|D, read-only leaves P|US|A', () => {
    const m = fakeMemory();
    const t = new PageTable(m, 'v2', 4);
    t.map(0x4000_0000, 0x7_0000_0000, 0x1000, PERM_R | PERM_W);
    t.map(0x4000_1000, 0x7_0000_1000, 0x1000, PERM_R);
    expect(m.q(t.root)).toBe(0x0010_2027n);
    expect(m.q(0x10_2000 + 1 * 8)).toBe(0x0010_3027n);
    expect(m.q(0x10_3000)).toBe(0x0010_4027n);
    expect(m.q(0x10_4000)).toBe(0x7_0000_0067n);
    expect(m.q(0x10_4000 + 8)).toBe(0x7_0000_1025n);
  });

  it('5-level tables index bits 56:48 at the top', () => {
    const m = fakeMemory();
    const t = new PageTable(m, 'v2', 5);
    t.map(2 ** 48 * 3, 0x9000, 0x1000, PERM_R);
    expect(m.q(t.root + 3 * 8)).toBe(0x0010_2027n);
  });
});
