// Pages' segment bookkeeping directly: one segment held inline, several in the flat array, and the
// moves between the two as users overlap, split and merge (ADR 0190). Pin counts are read back from
// the frames, so a lost or doubled pin shows.

import { describe, expect, it } from '@jest/globals';
import { AddressSpace } from '../host/address-space.js';
import { FRAME_SIZE, PhysicalMemory } from '../host/physical-memory.js';
import { Pages } from './pages.js';
import { framePinCount } from './pin-counts.js';
import { AccountMode, MemlockUser, type PinOwner } from './types.js';

function setup(npages: number) {
  const phys = new PhysicalMemory();
  const mm = new AddressSpace(phys);
  const mem = mm.alloc(npages * FRAME_SIZE);
  const owner: PinOwner = { mm, user: new MemlockUser(), memlockLimit: Infinity, capIpcLock: false };
  const pages = new Pages({ kind: 'user', mm, base: BigInt(mem.addr) }, npages, true, owner, AccountMode.USER);
  const frame0 = mm.frameOf(mem.addr)!;
  const pins = (): number[] => Array.from({ length: npages }, (_, i) => framePinCount(phys, frame0 + i));
  const segments = (): number[][] =>
    Array.from({ length: pages.segmentCount() }, (_, i) => [pages.segmentStart(i), pages.segmentLast(i), pages.segmentFrame(i) - frame0]);
  return { pages, owner, frame0, pins, segments };
}

describe('Pages segments', () => {
  it('keeps one segment inline and splits it into several when users overlap', () => {
    const t = setup(8);
    t.pages.addUser(0, 3);
    expect(t.segments()).toEqual([[0, 3, 0]]);
    t.pages.addUser(2, 5);
    // [0,1] one user, [2,3] two, [4,5] one: three segments, each page pinned once.
    expect(t.segments()).toEqual([
      [0, 1, 0],
      [2, 3, 2],
      [4, 5, 4],
    ]);
    expect(t.pins()).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    expect(t.pages.npinned).toBe(6);
    expect(t.owner.user.lockedPages).toBe(6);
    expect(t.pages.pinnedFrame(5)).toBe(t.frame0 + 5);
    expect(t.pages.pinnedFrame(6)).toBeUndefined();
    expect(t.pages.segmentIndexFor(4)).toBe(2);
  });

  it('merges back to one inline segment and unpins what nobody covers', () => {
    const t = setup(8);
    t.pages.addUser(0, 3);
    t.pages.addUser(2, 5);
    t.pages.removeUser(0, 3);
    // [2,3] and [4,5] now have one user each and contiguous frames: one segment again.
    expect(t.segments()).toEqual([[2, 5, 2]]);
    expect(t.pins()).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
    expect(t.pages.npinned).toBe(4);
    expect(t.pages.segmentIndexFor(1)).toBe(0);
    expect(t.pages.segmentIndexFor(6)).toBe(1);
    expect(t.pages.pinnedFrame(1)).toBeUndefined();
    t.pages.removeUser(2, 5);
    expect(t.segments()).toEqual([]);
    expect(t.pins()).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(t.owner.user.lockedPages).toBe(0);
  });

  it('fills a gap between two segments and keeps the users apart', () => {
    const t = setup(8);
    t.pages.addUser(0, 1);
    t.pages.addUser(6, 7);
    expect(t.segments()).toEqual([
      [0, 1, 0],
      [6, 7, 6],
    ]);
    t.pages.addUser(1, 6);
    expect(t.segments()).toEqual([
      [0, 0, 0],
      [1, 1, 1],
      [2, 5, 2],
      [6, 6, 6],
      [7, 7, 7],
    ]);
    expect(t.pins()).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    t.pages.removeUser(1, 6);
    t.pages.removeUser(6, 7);
    expect(t.segments()).toEqual([[0, 1, 0]]);
    expect(t.pins()).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
  });
});
