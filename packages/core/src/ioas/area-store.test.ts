// The struct-of-arrays area store (ADR 0191): exact ordering of IOVAs at and above 2^53, handle
// reuse and growth, and the moves of an inline row's pages into a shared Pages object (COPY, pins
// over several runs of frames, CHANGE_PROCESS) with pins and charges read back from the frames.

import { describe, expect, it } from '@jest/globals';
import { errnoOf as errno } from '../testing/harness.js';
import { AddressSpace } from '../host/address-space.js';
import { MemFile } from '../host/mem-file.js';
import { FRAME_SIZE, PhysicalMemory } from '../host/physical-memory.js';
import { AreaStore } from './area-store.js';
import { IoPagetable } from './io-pagetable.js';
import { KIND_USER } from './pages.js';
import { framePinCount } from './pin-counts.js';
import { MOCK_APERTURE_START, PAGE_SIZE, RW, fixture, mockDomain } from './test-kit.js';
import { AccountMode, MemlockUser, ULONG_MAX, type PinOwner } from './types.js';

function store() {
  const mm = new AddressSpace(new PhysicalMemory());
  const owner: PinOwner = { mm, user: new MemlockUser(), memlockLimit: Infinity, capIpcLock: false };
  const rows = new AreaStore();
  /** Adds [iova, last] in order, as the io page table does. */
  const add = (iova: bigint, last: bigint): number => {
    const h = rows.addInline(iova, last, RW, 0, KIND_USER, mm, 0, true, owner, AccountMode.USER);
    rows.insertAt(rows.lowerBound(iova), h);
    return h;
  };
  return { rows, add };
}

describe('AreaStore rows', () => {
  it('orders and finds IOVAs exactly where float64 rounds them together (2^53 and above)', () => {
    const { rows, add } = store();
    const TWO53 = 1n << 53n;
    // Number(2^53 + 1) === Number(2^53): only the exact bigints tell these apart.
    add(TWO53 + 2n, TWO53 + 2n);
    add(TWO53, TWO53);
    add(TWO53 + 1n, TWO53 + 1n);
    add(ULONG_MAX - 0xfffn, ULONG_MAX);
    add(ULONG_MAX - 0x1fffn, ULONG_MAX - 0x1000n);
    const order = Array.from({ length: rows.count }, (_, i) => rows.iova(rows.at(i)));
    expect(order).toEqual([TWO53, TWO53 + 1n, TWO53 + 2n, ULONG_MAX - 0x1fffn, ULONG_MAX - 0xfffn]);
    expect(rows.lowerBound(TWO53 + 1n)).toBe(1);
    expect(rows.lowerBound(TWO53 + 2n)).toBe(2);
    expect(rows.lowerBound(ULONG_MAX - 0x1000n)).toBe(3);
    expect(rows.lowerBound(ULONG_MAX - 0xfffn)).toBe(4);
    expect(rows.lowerBound(ULONG_MAX)).toBe(4);
    expect(rows.length(rows.at(4))).toBe(0x1000n);
    expect(rows.lastIndex(rows.at(4))).toBe(0);
  });

  it('reuses freed handles and keeps every column across growth', () => {
    const { rows, add } = store();
    const handles: number[] = [];
    for (let i = 0; i < 100; i++) handles.push(add(BigInt(i) * PAGE_SIZE, BigInt(i) * PAGE_SIZE + 2n * PAGE_SIZE - 1n - PAGE_SIZE));
    for (let i = 0; i < 100; i++) expect(rows.iova(rows.at(i))).toBe(BigInt(i) * PAGE_SIZE);
    rows.removeAt(10, 5);
    expect(rows.count).toBe(95);
    expect(rows.iova(rows.at(10))).toBe(15n * PAGE_SIZE);
    // The five freed handles come back before any new one.
    const again = [0, 1, 2, 3, 4].map((i) => add(BigInt(10 + i) * PAGE_SIZE, BigInt(10 + i) * PAGE_SIZE + PAGE_SIZE - 1n));
    expect(again.sort((a, b) => a - b)).toEqual(handles.slice(10, 15));
    for (let i = 0; i < 100; i++) expect(rows.last(rows.at(i))).toBe(BigInt(i) * PAGE_SIZE + PAGE_SIZE - 1n);
  });
});

describe('IOVAs at the top of the space through the io page table', () => {
  it('maps, refuses overlaps and unmaps exactly above 2^53', () => {
    const f = fixture(0);
    const top = ULONG_MAX - PAGE_SIZE + 1n;
    expect(f.mapFixed(f.buffer, PAGE_SIZE, top)).toBe(top);
    expect(f.mapFixed(f.buffer, PAGE_SIZE, top - PAGE_SIZE)).toBe(top - PAGE_SIZE);
    // One byte of overlap with the area below `top`, whose last byte rounds to the same float.
    expect(errno(() => f.mapFixed(f.buffer, 2n, top - PAGE_SIZE - 1n))).toBe('EEXIST');
    expect(f.mapFixed(f.buffer, 1n, top - PAGE_SIZE - 1n)).toBe(top - PAGE_SIZE - 1n);
    expect(f.iopt.areas().map((a) => [a.iova, a.last])).toEqual([
      [top - PAGE_SIZE - 1n, top - PAGE_SIZE - 1n],
      [top - PAGE_SIZE, top - 1n],
      [top, ULONG_MAX],
    ]);
    // The superset rule sees the exact ends: one byte short is ENOENT (area sticks out).
    expect(errno(() => f.iopt.unmap(top - PAGE_SIZE, PAGE_SIZE - 1n))).toBe('ENOENT');
    expect(f.iopt.unmap(top - PAGE_SIZE, PAGE_SIZE)).toBe(PAGE_SIZE);
    expect(f.iopt.unmapAll()).toBe(PAGE_SIZE + 1n);
    f.iopt.checkInvariants();
  });
});

describe('inline pages turning shared', () => {
  it('a MAP_FILE over two runs of frames pins each frame once and maps each page to it', () => {
    const f = fixture(1);
    const file = new MemFile(f.phys);
    file.truncate(Number(4n * PAGE_SIZE));
    f.mm.alloc(FRAME_SIZE); // keeps the file's second run away from its first
    file.truncate(Number(8n * PAGE_SIZE));
    const frames = Array.from({ length: 8 }, (_, i) => file.frameOf(i)!);
    expect(frames[4]).not.toBe(frames[3]! + 1);
    const iova = f.iopt.mapFile(file, 0n, 8n * PAGE_SIZE, { prot: RW, owner: f.owner, rlimitMode: 0, iova: MOCK_APERTURE_START });
    for (let i = 0; i < 8; i++) {
      expect(framePinCount(f.phys, frames[i]!)).toBe(1);
      expect(f.domains[0]!.iovaToPhys(iova + BigInt(i) * PAGE_SIZE + 5n)).toBe(BigInt(frames[i]!) * PAGE_SIZE + 5n);
    }
    expect(f.owner.user.lockedPages).toBe(8);
    f.iopt.checkInvariants();
    f.iopt.unmap(iova, 8n * PAGE_SIZE);
    expect(frames.map((fr) => framePinCount(f.phys, fr))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(f.owner.user.lockedPages).toBe(0);
  });

  it('COPY shares an inline area\'s pins: nothing is pinned or charged twice, the last unmap releases them', () => {
    const f = fixture(1);
    const frame0 = f.mm.frameOf(f.buffer)!;
    const pins = (): number[] => Array.from({ length: 4 }, (_, i) => framePinCount(f.phys, frame0 + i));
    const src = f.map(f.buffer, 4n * PAGE_SIZE);
    const other = new IoPagetable();
    other.attachDomain(mockDomain());
    const dst = other.copy(f.iopt, src + PAGE_SIZE, 2n * PAGE_SIZE, { prot: RW });
    expect(pins()).toEqual([1, 1, 1, 1]);
    expect(f.owner.user.lockedPages).toBe(4);
    f.iopt.unmap(src, 4n * PAGE_SIZE);
    expect(pins()).toEqual([0, 1, 1, 0]);
    expect(f.owner.user.lockedPages).toBe(2);
    other.checkInvariants();
    other.unmap(dst, 2n * PAGE_SIZE);
    expect(pins()).toEqual([0, 0, 0, 0]);
    expect(f.owner.user.lockedPages).toBe(0);
  });

  it('CHANGE_PROCESS moves the charge of inline memfd areas, and their later unpin uncharges the new owner', () => {
    const f = fixture(1);
    const file = new MemFile(f.phys);
    file.truncate(Number(4n * PAGE_SIZE));
    const opts = { prot: RW, owner: f.owner, rlimitMode: 0 as const };
    const a = f.iopt.mapFile(file, 0n, 2n * PAGE_SIZE, { ...opts, iova: MOCK_APERTURE_START });
    const b = f.iopt.mapFile(file, 2n * PAGE_SIZE, 2n * PAGE_SIZE, { ...opts, iova: MOCK_APERTURE_START + 4n * PAGE_SIZE });
    expect(f.owner.user.lockedPages).toBe(4);
    const next: PinOwner = { mm: new AddressSpace(f.phys), user: new MemlockUser(2000), memlockLimit: Infinity, capIpcLock: false };
    IoPagetable.changeProcess([f.iopt], next);
    expect(f.owner.user.lockedPages).toBe(0);
    expect(next.user.lockedPages).toBe(4);
    f.iopt.unmap(a, 2n * PAGE_SIZE);
    expect(next.user.lockedPages).toBe(2);
    f.iopt.unmap(b, 2n * PAGE_SIZE);
    expect(next.user.lockedPages).toBe(0);
  });
});
