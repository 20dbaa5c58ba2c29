import { describe, expect, it } from '@jest/globals';
import { FRAME_SIZE, PhysicalMemory } from '../host/physical-memory.js';
import { MapOverlapError, mapRange, type RangeTable } from './map-range.js';
import { PhysicalTableMemory } from './table-memory.js';

describe('PhysicalTableMemory', () => {
  it('hands out zeroed tables aligned to their size, written straight into physical memory', () => {
    const mem = new PhysicalMemory();
    const t = new PhysicalTableMemory(mem);
    const a = t.allocTable();
    expect(a % FRAME_SIZE).toBe(0);
    expect(t.readU32(a + 8)).toBe(0);
    t.writeU32(a + 8, 0xdead_beef);
    expect(mem.readU32(a + 8)).toBe(0xdead_beef);
    const big = t.allocTable(4 * FRAME_SIZE);
    expect(big % (4 * FRAME_SIZE)).toBe(0);
    expect(t.readU32(big + 4 * FRAME_SIZE - 4)).toBe(0);
  });

  it('frees every run with freeAll', () => {
    const mem = new PhysicalMemory();
    const t = new PhysicalTableMemory(mem);
    const a = t.allocTable();
    t.allocTable(2 * FRAME_SIZE);
    t.freeAll();
    expect(() => mem.freeRun(a / FRAME_SIZE)).toThrow(RangeError);
  });
});

/** A page-granular table over a Map: enough to watch mapRange's undo. */
function fakeTable(present: number[]): RangeTable<string> & { pages: Map<number, string> } {
  const pages = new Map<number, string>(present.map((p) => [p, 'old']));
  return {
    pages,
    map(iova, _pa, length, attrs) {
      for (let off = 0; off < length; off += 4096) {
        if (pages.has(iova + off)) {
          const e = new MapOverlapError(`0x${(iova + off).toString(16)} is mapped`);
          e.mapped = off;
          throw e;
        }
        pages.set(iova + off, attrs);
      }
    },
    unmap(iova, length) {
      let n = 0;
      for (let off = 0; off < length && pages.delete(iova + off); off += 4096) n += 4096;
      return n;
    },
  };
}

describe('mapRange', () => {
  it('maps the whole range when nothing is in the way', () => {
    const t = fakeTable([]);
    mapRange(t, 0x1000, 0x9000, 0x3000, 'rw');
    expect([...t.pages.keys()]).toEqual([0x1000, 0x2000, 0x3000]);
  });

  it('takes back what the call mapped before an overlap and throws EEXIST, leaving the old entry', () => {
    const t = fakeTable([0x3000]);
    expect(() => mapRange(t, 0x1000, 0x9000, 0x3000, 'rw')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect([...t.pages]).toEqual([[0x3000, 'old']]);
  });

  it('passes other errors through unchanged', () => {
    const t = fakeTable([]);
    t.map = () => {
      throw new RangeError('unaligned');
    };
    expect(() => mapRange(t, 0, 0, 4096, 'r')).toThrow(RangeError);
  });
});
