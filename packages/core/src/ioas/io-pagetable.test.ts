import { describe, expect, it } from '@jest/globals';
import { IOMMU_READ } from '../driver/domain.js';
import { AddressSpace } from '../host/address-space.js';
import { MemFile } from '../host/mem-file.js';
import { mmCounters } from './accounting.js';
import { IoPagetable, UnmapError } from './io-pagetable.js';
import { framePinCount } from './pin-counts.js';
import { TestDomain } from './test-domain.js';
import { fixture, MOCK_APERTURE_START, mockDomain, PAGE_SIZE, RW } from './test-kit.js';
import { ACCESS_RW_WRITE, MemlockUser, ULONG_MAX, type IoasAccess, type PinOwner } from './types.js';

const errno = (code: string) => expect.objectContaining({ code });
const MiB = 1n << 20n;

describe('IoPagetable: argument checks in the kernel order', () => {
  it('mapUser: EOVERFLOW for a wrapping VA range before EINVAL for length', () => {
    const f = fixture();
    expect(() => f.map(ULONG_MAX - 10n, 20n)).toThrow(errno('EOVERFLOW'));
    expect(() => f.map(f.buffer, 0n)).toThrow(errno('EINVAL'));
    expect(() => f.map(0n, ULONG_MAX - PAGE_SIZE + 1n)).toThrow(errno('EINVAL'));
  });

  it('fixed IOVA: EINVAL unaligned, EOVERFLOW wrapping, EINVAL reserved, EEXIST mapped', () => {
    const f = fixture(1);
    expect(() => f.mapFixed(f.buffer, PAGE_SIZE, MOCK_APERTURE_START + 1n)).toThrow(errno('EINVAL'));
    expect(() => f.mapFixed(f.buffer, PAGE_SIZE, ULONG_MAX - 2047n)).toThrow(errno('EOVERFLOW'));
    expect(() => f.mapFixed(f.buffer, PAGE_SIZE, 0n)).toThrow(errno('EINVAL')); // below the aperture
    f.mapFixed(f.buffer, PAGE_SIZE, MOCK_APERTURE_START);
    expect(() => f.mapFixed(f.buffer, PAGE_SIZE, MOCK_APERTURE_START)).toThrow(errno('EEXIST'));
  });

  it('automatic IOVA: EOVERFLOW for huge lengths, ENOSPC when nothing fits, never IOVA 0', () => {
    const f = fixture();
    expect(() => f.map(f.buffer, ULONG_MAX / 2n)).toThrow(errno('EOVERFLOW'));
    expect(f.map(f.buffer, PAGE_SIZE)).toBe(PAGE_SIZE);
    f.iopt.allowIovas([{ start: 0n, last: 3n * PAGE_SIZE - 1n }]);
    expect(f.map(f.buffer, PAGE_SIZE)).toBe(2n * PAGE_SIZE);
    expect(() => f.map(f.buffer, PAGE_SIZE)).toThrow(errno('ENOSPC'));
  });

  it('automatic IOVA keeps the sub-page offset and the VA alignment up to 2 MiB (spec 5.5.1)', () => {
    const f = fixture();
    // buffer is hugely aligned: a 16 KiB map aligns to 16 KiB, a 4 MiB map to 2 MiB (the cap).
    expect(f.map(f.buffer, 4n * PAGE_SIZE)).toBe(4n * PAGE_SIZE);
    expect(f.map(f.buffer + 0x10n, 0x100n)).toBe(PAGE_SIZE + 0x10n);
    expect(f.map(f.buffer, 4n * MiB)).toBe(2n * MiB);
    // A VA whose lowest set bit is 8 KiB aligns to 8 KiB: [0x1110, 0x3fff] holds no 32 KiB at an
    // 8 KiB boundary, so the first fit is after the 16 KiB area, at 0x8000.
    expect(f.map(f.buffer + 2n * PAGE_SIZE, 8n * PAGE_SIZE)).toBe(0x8000n);
    expect(f.map(f.buffer + 2n * PAGE_SIZE, 2n * PAGE_SIZE)).toBe(0x2000n);
    f.iopt.checkInvariants();
  });
});

describe('IoPagetable: pinning, domains and accounting', () => {
  it('pins lazily: nothing without a domain, everything on attach, released on detach', () => {
    const f = fixture();
    const frame = f.mm.frameOf(f.buffer)!;
    const iova = f.map(f.buffer, 16n * PAGE_SIZE);
    expect(framePinCount(f.phys, frame)).toBe(0);
    expect(f.owner.user.lockedPages).toBe(0);
    const d = new TestDomain();
    f.iopt.attachDomain(d);
    expect(framePinCount(f.phys, frame + 15)).toBe(1);
    expect(f.owner.user.lockedPages).toBe(16);
    expect(mmCounters(f.mm).pinnedVm).toBe(16);
    expect(d.iovaToPhys(iova + 5n * PAGE_SIZE + 7n)).toBe(BigInt(frame + 5) * PAGE_SIZE + 7n);
    expect(d.mapCalls).toBe(1); // one physically contiguous chunk
    const d2 = new TestDomain();
    f.iopt.attachDomain(d2);
    expect(framePinCount(f.phys, frame)).toBe(1); // a second domain does not pin again
    f.iopt.detachDomain(d);
    expect(d.mappedBytes).toBe(0n);
    expect(f.owner.user.lockedPages).toBe(16);
    f.iopt.detachDomain(d2);
    expect(framePinCount(f.phys, frame)).toBe(0);
    expect(f.owner.user.lockedPages).toBe(0);
    expect(mmCounters(f.mm).pinnedVm).toBe(0);
  });

  it('COPY shares the pins; a second MAP of the same memory pins again', () => {
    const f = fixture(1);
    const frame = f.mm.frameOf(f.buffer)!;
    const a = f.map(f.buffer, 4n * PAGE_SIZE);
    f.iopt.copy(f.iopt, a, 4n * PAGE_SIZE, { prot: RW });
    const other = new IoPagetable();
    other.attachDomain(mockDomain());
    other.copy(f.iopt, a + PAGE_SIZE, 2n * PAGE_SIZE, { prot: RW });
    expect(framePinCount(f.phys, frame)).toBe(1);
    expect(f.owner.user.lockedPages).toBe(4);
    f.map(f.buffer, 4n * PAGE_SIZE);
    expect(framePinCount(f.phys, frame)).toBe(2);
    expect(f.owner.user.lockedPages).toBe(8);
    // The source going away keeps the copy's pages pinned.
    f.iopt.unmapAll();
    expect(framePinCount(f.phys, frame)).toBe(0);
    expect(framePinCount(f.phys, frame + 1)).toBe(1);
    expect(f.owner.user.lockedPages).toBe(2);
    other.destroy();
    expect(framePinCount(f.phys, frame + 1)).toBe(0);
    expect(f.owner.user.lockedPages).toBe(0);
  });

  it('RLIMIT_MEMLOCK: ENOMEM over the limit leaves nothing; per mm in mode 1; CAP_IPC_LOCK is exempt', () => {
    const f = fixture(1, { memlockLimit: Number(8n * PAGE_SIZE) });
    expect(() => f.map(f.buffer, 16n * PAGE_SIZE)).toThrow(errno('ENOMEM'));
    expect(f.iopt.areas()).toEqual([]);
    expect(f.domains[0]!.mappedBytes).toBe(0n);
    f.map(f.buffer, 8n * PAGE_SIZE);
    expect(() => f.map(f.buffer, PAGE_SIZE)).toThrow(errno('ENOMEM'));
    expect(f.owner.user.lockedPages).toBe(8);
    // Per-mm accounting: another process of the same user has its own budget.
    f.rlimitMode = 1;
    f.map(f.buffer + 8n * PAGE_SIZE, 8n * PAGE_SIZE);
    expect(mmCounters(f.mm).lockedVm).toBe(8);
    expect(f.owner.user.lockedPages).toBe(8);
    f.owner = { ...f.owner, capIpcLock: true };
    f.map(f.buffer, 16n * PAGE_SIZE);
    expect(mmCounters(f.mm).pinnedVm).toBe(32);
    f.iopt.unmapAll();
    expect(mmCounters(f.mm)).toEqual({ lockedVm: 0, pinnedVm: 0 });
    expect(f.owner.user.lockedPages).toBe(0);
  });

  it('an unmapped VA maps lazily without a domain, and fails with EFAULT when pinned', () => {
    const f = fixture();
    const iova = f.map(1n << 31n, 4n * PAGE_SIZE);
    const d = new TestDomain();
    expect(() => f.iopt.attachDomain(d)).toThrow(errno('EFAULT'));
    expect(f.iopt.domains()).toEqual([]);
    expect(f.iopt.alignment).toBe(1);
    expect(f.iopt.iovaRanges()).toEqual([{ start: 0n, last: ULONG_MAX }]);
    f.iopt.unmap(iova, 4n * PAGE_SIZE);
    f.iopt.attachDomain(d);
    expect(() => f.map(1n << 31n, 4n * PAGE_SIZE)).toThrow(errno('EFAULT'));
    expect(f.iopt.areas()).toEqual([]);
    f.iopt.checkInvariants();
  });

  it('WRITEABLE on a read-only user mapping fails with EFAULT at pin time', () => {
    const f = fixture(1);
    const run = f.phys.allocRun(1);
    const ro = f.mm.mapShared(run, 0, Number(PAGE_SIZE), false).addr;
    expect(() => f.map(ro, PAGE_SIZE)).toThrow(errno('EFAULT'));
    expect(f.map(ro, PAGE_SIZE, IOMMU_READ)).toBeGreaterThan(0n);
  });

  it('a domain failing mid-way leaves nothing behind (map and attach)', () => {
    const f = fixture(2);
    f.domains[1]!.failMapAt = f.domains[1]!.mapCalls + 1;
    expect(() => f.map(f.buffer, 4n * PAGE_SIZE)).toThrow(errno('ENOMEM'));
    expect(f.domains[0]!.mappedBytes).toBe(0n);
    expect(f.owner.user.lockedPages).toBe(0);
    f.map(f.buffer, 4n * PAGE_SIZE);
    f.map(f.buffer + 8n * PAGE_SIZE, 4n * PAGE_SIZE);
    const d = mockDomain();
    d.failMapAt = 2;
    expect(() => f.iopt.attachDomain(d)).toThrow(errno('ENOMEM'));
    expect(d.mappedBytes).toBe(0n);
    expect(f.iopt.domains().length).toBe(2);
    f.iopt.checkInvariants();
    // First domain failing: the pins it took are dropped again.
    const g = fixture();
    g.map(g.buffer, 4n * PAGE_SIZE);
    g.map(g.buffer + 8n * PAGE_SIZE, 4n * PAGE_SIZE);
    const e = new TestDomain();
    e.failMapAt = 2;
    expect(() => g.iopt.attachDomain(e)).toThrow(errno('ENOMEM'));
    expect(g.owner.user.lockedPages).toBe(0);
    expect(framePinCount(g.phys, g.mm.frameOf(g.buffer)!)).toBe(0);
  });

  it('attach: EINVAL above PAGE_SIZE, EADDRINUSE for misaligned areas, areas or allowed ranges outside the aperture', () => {
    const f = fixture();
    expect(() => f.iopt.attachDomain(new TestDomain({ pgsizeBitmap: 1n << 21n }))).toThrow(errno('EINVAL'));
    const iova = f.mapFixed(f.buffer + 0x800n, 0x800n, 0x800n);
    expect(() => f.iopt.attachDomain(new TestDomain())).toThrow(errno('EADDRINUSE'));
    f.iopt.unmap(iova, 0x800n);
    f.mapFixed(f.buffer, PAGE_SIZE, PAGE_SIZE);
    expect(() => f.iopt.attachDomain(mockDomain())).toThrow(errno('EADDRINUSE'));
    expect(f.iopt.reservedRanges()).toEqual([]);
    f.iopt.unmapAll();
    f.iopt.allowIovas([{ start: PAGE_SIZE, last: 2n * PAGE_SIZE }]);
    expect(() => f.iopt.attachDomain(mockDomain())).toThrow(errno('EADDRINUSE'));
    f.iopt.allowIovas([]);
    const d = mockDomain();
    f.iopt.attachDomain(d);
    expect(f.iopt.reservedRanges().length).toBe(2);
    f.iopt.detachDomain(d);
    expect(f.iopt.reservedRanges()).toEqual([]);
    expect(f.iopt.alignment).toBe(1);
  });

  it('huge pages off: pages go into domains one by one; cannot switch off with domains and areas', () => {
    const f = fixture();
    f.iopt.setHugePages(false);
    const d = new TestDomain();
    f.iopt.attachDomain(d);
    f.map(f.buffer, 8n * PAGE_SIZE);
    expect(d.mapCalls).toBe(8);
    f.iopt.setHugePages(true);
    f.map(f.buffer, 8n * PAGE_SIZE);
    expect(d.mapCalls).toBe(9);
    expect(() => f.iopt.setHugePages(false)).toThrow(errno('EINVAL'));
  });
});

describe('IoPagetable: UNMAP rules', () => {
  it('superset unmap stops at the first bad area, keeping what it removed', () => {
    const f = fixture(1);
    const b = MOCK_APERTURE_START;
    f.mapFixed(f.buffer, PAGE_SIZE, b);
    f.mapFixed(f.buffer, 2n * PAGE_SIZE, b + 2n * PAGE_SIZE);
    try {
      f.iopt.unmap(b, 3n * PAGE_SIZE);
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(UnmapError);
      expect(e).toMatchObject({ code: 'ENOENT', unmapped: PAGE_SIZE });
    }
    expect(f.iopt.areas().map((a) => a.iova)).toEqual([b + 2n * PAGE_SIZE]);
    expect(() => f.iopt.unmap(b, 0n)).toThrow(errno('EINVAL'));
    expect(() => f.iopt.unmap(ULONG_MAX, 2n)).toThrow(errno('EOVERFLOW'));
  });

  it('a HW queue (internal access) locks its areas: EBUSY even for unmap-all', () => {
    const f = fixture(1);
    const hwq: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: true };
    f.iopt.addAccess(hwq);
    const iova = f.map(f.buffer, 2n * PAGE_SIZE);
    f.iopt.pinPages(hwq, iova, PAGE_SIZE, ACCESS_RW_WRITE);
    expect(() => f.iopt.unmap(iova, 2n * PAGE_SIZE)).toThrow(errno('EBUSY'));
    expect(() => f.iopt.unmapAll()).toThrow(errno('EBUSY'));
    f.iopt.unpinPages(hwq, iova, PAGE_SIZE);
    expect(f.iopt.unmapAll()).toBe(2n * PAGE_SIZE);
  });

  it('an access that never lets go: EDEADLK after 100 notifications, new pins refused', () => {
    const f = fixture();
    let calls = 0;
    const stubborn: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: false, unmap: () => void calls++ };
    f.iopt.addAccess(stubborn);
    const iova = f.map(f.buffer, PAGE_SIZE);
    f.iopt.pinPages(stubborn, iova, PAGE_SIZE, 0);
    expect(() => f.iopt.unmap(iova, PAGE_SIZE)).toThrow(errno('EDEADLK'));
    expect(calls).toBe(101);
    expect(() => f.iopt.pinPages(stubborn, iova, PAGE_SIZE, 0)).toThrow(errno('EINVAL'));
    expect(() => f.iopt.rw(stubborn, iova, new Uint8Array(1), 0)).toThrow(errno('EINVAL'));
  });

  it('access pins: EINVAL for accesses that cannot pin or an unaligned start, ENOENT past the areas, unwound on error', () => {
    const f = fixture();
    expect(() => f.iopt.pinPages({ iovaAlignment: 1, internal: false, unmap: () => {} }, 0n, PAGE_SIZE, 0)).toThrow(errno('EINVAL'));
    expect(() => f.iopt.pinPages({ iovaAlignment: Number(PAGE_SIZE), internal: false }, 0n, PAGE_SIZE, 0)).toThrow(errno('EINVAL'));
    const acc: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: false, unmap: () => {} };
    f.iopt.addAccess(acc);
    f.mapFixed(f.buffer, 2n * PAGE_SIZE, 0x10000n);
    f.mapFixed(f.buffer + 2n * PAGE_SIZE, PAGE_SIZE, 0x12000n);
    // A start inside a page fails, even though the areas cover the range contiguously.
    expect(() => f.iopt.pinPages(acc, 0x10800n, 2n * PAGE_SIZE, 0)).toThrow(errno('EINVAL'));
    expect(f.iopt.pinPages(acc, 0x10000n, 3n * PAGE_SIZE, 0).length).toBe(3);
    f.iopt.unpinPages(acc, 0x10000n, 3n * PAGE_SIZE);
    expect(() => f.iopt.pinPages(acc, 0x11000n, 3n * PAGE_SIZE, 0)).toThrow(errno('ENOENT'));
    expect(() => f.iopt.pinPages(acc, 0x10000n, 0n, 0)).toThrow(errno('EINVAL'));
    expect(() => f.iopt.pinPages(acc, 0x20000n, PAGE_SIZE, 0)).toThrow(errno('ENOENT'));
    expect(framePinCount(f.phys, f.mm.frameOf(f.buffer)!)).toBe(0);
    expect(f.iopt.areas().every((a) => a.numAccesses === 0)).toBe(true);
  });
});

describe('IoPagetable: VFIO compat cuts', () => {
  it('cutIova splits areas sharing their pins; refused while huge pages may be in use', () => {
    const f = fixture(1);
    const iova = f.map(f.buffer, 4n * PAGE_SIZE);
    expect(() => f.iopt.cutIova([iova + 2n * PAGE_SIZE - 1n])).toThrow(errno('EINVAL'));
    f.iopt.unmapAll();
    f.iopt.detachDomain(f.domains[0]!);
    f.iopt.setHugePages(false);
    const d = mockDomain();
    f.iopt.attachDomain(d);
    const at = f.map(f.buffer, 4n * PAGE_SIZE);
    expect(() => f.iopt.cutIova([at + 0x800n - 1n])).toThrow(errno('EINVAL'));
    f.iopt.cutIova([at + 2n * PAGE_SIZE - 1n, at - 1n, at + 4n * PAGE_SIZE - 1n]);
    expect(f.iopt.areas().map((a) => [a.iova, a.last])).toEqual([
      [at, at + 2n * PAGE_SIZE - 1n],
      [at + 2n * PAGE_SIZE, at + 4n * PAGE_SIZE - 1n],
    ]);
    f.iopt.checkInvariants();
    expect(f.owner.user.lockedPages).toBe(4);
    expect(f.iopt.unmap(at, 2n * PAGE_SIZE)).toBe(2n * PAGE_SIZE);
    expect(f.owner.user.lockedPages).toBe(2);
    expect(d.iovaToPhys(at)).toBeUndefined();
    expect(d.iovaToPhys(at + 3n * PAGE_SIZE)).toBe(BigInt(f.mm.frameOf(f.buffer)! + 3) * PAGE_SIZE);
    f.iopt.checkInvariants();
  });
});

describe('IoPagetable: files and CHANGE_PROCESS', () => {
  const owner2 = (mm: AddressSpace, limit = Infinity): PinOwner => ({ mm, user: new MemlockUser(2000), memlockLimit: limit, capIpcLock: false });

  it('MAP_FILE pins file pages; a range past the end or a non-shmem file fails with EINVAL at pin time', () => {
    const f = fixture();
    const file = new MemFile(f.phys);
    file.truncate(Number(4n * PAGE_SIZE));
    file.write(Number(PAGE_SIZE) + 3, Uint8Array.of(0xab));
    const opts = { prot: RW, owner: f.owner, rlimitMode: 0 as const };
    expect(() => f.iopt.mapFile(undefined, 0n, PAGE_SIZE, opts)).toThrow(errno('EBADF'));
    expect(() => f.iopt.mapFile(undefined, 0n, 0n, opts)).toThrow(errno('EINVAL'));
    const iova = f.iopt.mapFile(file, PAGE_SIZE, 2n * PAGE_SIZE, opts);
    const past = f.iopt.mapFile(file, 3n * PAGE_SIZE, 2n * PAGE_SIZE, opts);
    const d = new TestDomain();
    expect(() => f.iopt.attachDomain(d)).toThrow(errno('EINVAL'));
    f.iopt.unmap(past, 2n * PAGE_SIZE);
    f.iopt.attachDomain(d);
    expect(f.phys.readU32(Number(d.iovaToPhys(iova + 3n)!)) & 0xff).toBe(0xab);
    const regular = new MemFile(f.phys, 'data.bin', false);
    regular.truncate(Number(PAGE_SIZE));
    expect(() => f.iopt.mapFile(regular, 0n, PAGE_SIZE, opts)).toThrow(errno('EINVAL'));
  });

  it('CHANGE_PROCESS moves the charge of file areas, all or nothing; EINVAL with user areas', () => {
    const f = fixture(1);
    const file = new MemFile(f.phys);
    file.truncate(Number(4n * PAGE_SIZE));
    const opts = { prot: RW, owner: f.owner, rlimitMode: 0 as const };
    f.iopt.mapFile(file, 0n, 4n * PAGE_SIZE, opts);
    const other = new IoPagetable();
    other.attachDomain(mockDomain());
    other.mapFile(file, 0n, 2n * PAGE_SIZE, opts);
    expect(f.owner.user.lockedPages).toBe(6);
    const mm2 = new AddressSpace(f.phys);
    expect(() => IoPagetable.changeProcess([f.iopt, other], owner2(mm2, Number(5n * PAGE_SIZE)))).toThrow(errno('ENOMEM'));
    expect(f.owner.user.lockedPages).toBe(6);
    const next = owner2(mm2);
    IoPagetable.changeProcess([f.iopt, other], next);
    expect(f.owner.user.lockedPages).toBe(0);
    expect(mmCounters(f.mm).pinnedVm).toBe(0);
    expect(next.user.lockedPages).toBe(6);
    expect(mmCounters(mm2).pinnedVm).toBe(6);
    f.map(f.buffer, PAGE_SIZE);
    expect(() => IoPagetable.changeProcess([f.iopt, other], owner2(mm2))).toThrow(errno('EINVAL'));
    f.iopt.destroy();
    other.destroy();
    expect(next.user.lockedPages).toBe(0);
  });
});

describe('IoPagetable: dirty tracking', () => {
  it('enabling clears stale bits; reading walks areas contiguously and checks alignment', () => {
    const f = fixture();
    const d = new TestDomain({ dirty: true });
    f.iopt.attachDomain(d);
    const iova = f.map(f.buffer, 4n * PAGE_SIZE);
    d.dirty!.setEnabled(true);
    d.touch(iova);
    d.dirty!.setEnabled(false);
    f.iopt.setDirtyTracking(d, true);
    d.touch(iova + PAGE_SIZE + 5n);
    d.touch(iova + 3n * PAGE_SIZE);
    const marks: bigint[] = [];
    f.iopt.readAndClearDirty(d, iova, 4n * PAGE_SIZE, PAGE_SIZE, true, (i) => void marks.push(i));
    expect(marks).toEqual([iova + PAGE_SIZE, iova + 3n * PAGE_SIZE]);
    marks.length = 0;
    f.iopt.readAndClearDirty(d, iova, 4n * PAGE_SIZE, PAGE_SIZE, false, (i) => void marks.push(i));
    f.iopt.readAndClearDirty(d, iova, 4n * PAGE_SIZE, PAGE_SIZE, false, (i) => void marks.push(i));
    expect(marks.length).toBe(2);
    expect(() => f.iopt.readAndClearDirty(d, iova, 4n * PAGE_SIZE, 0n, false, () => {})).toThrow(errno('EINVAL'));
    expect(() => f.iopt.readAndClearDirty(d, iova + 512n, PAGE_SIZE, PAGE_SIZE, false, () => {})).toThrow(errno('EINVAL'));
    expect(() => f.iopt.setDirtyTracking(new TestDomain(), true)).toThrow(errno('EOPNOTSUPP'));
    // length 0 wraps as in u64: EOVERFLOW unless iova is 0.
    expect(() => f.iopt.readAndClearDirty(d, iova, 0n, PAGE_SIZE, false, () => {})).toThrow(errno('EOVERFLOW'));
    expect(() => f.iopt.readAndClearDirty(d, ULONG_MAX - PAGE_SIZE + 1n, 2n * PAGE_SIZE, PAGE_SIZE, false, () => {})).toThrow(errno('EOVERFLOW'));
  });
});
