import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { PAGE_SIZE } from '@viommu/uapi';
import type { NativeProcess } from './native-process.js';
import { PROT_READ } from './native-process.js';
import { codeOf, FIONREAD, describeNative, hostProcess } from './test/native.js';


describeNative('memory and mmap', () => {
  let p: NativeProcess;
  beforeEach(() => {
    p = hostProcess();
  });
  afterEach(() => p.dispose());

  it('alloc gives zeroed page-aligned memory whose address is the real address of its bytes', () => {
    const { addr, bytes } = p.memory.alloc(3 * PAGE_SIZE + 100);
    expect(addr % BigInt(PAGE_SIZE)).toBe(0n);
    expect(bytes.length).toBe(3 * PAGE_SIZE + 100);
    expect(bytes.every((b) => b === 0)).toBe(true);
    // The kernel writes through the raw pointer (an integer ioctl argument), and the write shows
    // up in the JavaScript bytes at the same offset: the address really is theirs.
    const [r, w] = p.pipe();
    p.write(w, new Uint8Array(9));
    p.ioctl(r, FIONREAD, Number(addr) + 2 * PAGE_SIZE + 8);
    expect(new DataView(bytes.buffer).getInt32(2 * PAGE_SIZE + 8, true)).toBe(9);
  });

  it('an address past an allocation faults in the kernel with EFAULT', () => {
    const { addr } = p.memory.alloc(PAGE_SIZE);
    const [r] = p.pipe();
    p.memory.free(addr);
    expect(codeOf(() => p.ioctl(r, FIONREAD, Number(addr)))).toBe('EFAULT');
  });

  it('the range right after an allocation faults, even with later allocations around', () => {
    const a = p.memory.alloc(2 * PAGE_SIZE);
    const later = [p.memory.alloc(PAGE_SIZE), p.memory.alloc(8 * PAGE_SIZE)];
    const [r, w] = p.pipe();
    p.write(w, new Uint8Array(1));
    p.ioctl(r, FIONREAD, Number(a.addr) + 2 * PAGE_SIZE - 4); // the last word is in
    for (const off of [2, 3]) expect(codeOf(() => p.ioctl(r, FIONREAD, Number(a.addr) + off * PAGE_SIZE))).toBe('EFAULT');
    for (const m of later) p.memory.free(m.addr);
  });

  it('free detaches the bytes, so a stale view reads as empty instead of crashing', () => {
    const { addr, bytes } = p.memory.alloc(PAGE_SIZE);
    bytes[0] = 1;
    p.memory.free(addr);
    expect(bytes.length).toBe(0);
    expect(bytes[0]).toBeUndefined();
    expect(codeOf(() => p.memory.free(addr))).toBe('EINVAL');
    expect(codeOf(() => p.memory.alloc(0))).toBe('EINVAL');
  });

  it('a memfd round-trips: write through the fd, read through a shared mapping, and back', () => {
    const fd = p.memfdCreate('viommu-test');
    p.ftruncate(fd, 2 * PAGE_SIZE);
    const a = p.mmap(fd, 2 * PAGE_SIZE, 0n);
    const b = p.mmap(fd, PAGE_SIZE, BigInt(PAGE_SIZE), PROT_READ);
    expect(a.addr).not.toBe(b.addr);
    expect(p.write(fd, Uint8Array.of(7, 8, 9))).toBe(3);
    expect([...a.bytes.subarray(0, 3)]).toEqual([7, 8, 9]);
    a.bytes.set([1, 2, 3, 4], PAGE_SIZE);
    expect([...b.bytes.subarray(0, 4)]).toEqual([1, 2, 3, 4]);
    const back = new Uint8Array(3);
    expect(p.read(fd, back)).toBe(3); // file position is 3 after the write
    expect([...back]).toEqual([0, 0, 0]);
    expect(p.pread(fd, back, 0)).toBe(3); // pread ignores the position
    expect([...back]).toEqual([7, 8, 9]);
    expect(p.read(fd, back)).toBe(3); // ... and leaves it where it was (6)
    expect([...back]).toEqual([0, 0, 0]);
    p.munmap(b.addr, PAGE_SIZE);
    expect(b.bytes.length).toBe(0);
    expect(a.bytes[PAGE_SIZE]).toBe(1);
  });

  it('mmap errors are the kernel\'s, and munmap takes only whole mappings it made', () => {
    const fd = p.memfdCreate('viommu-test');
    expect(codeOf(() => p.mmap(fd, 0, 0n))).toBe('EINVAL');
    const [r] = p.pipe();
    expect(codeOf(() => p.mmap(r, PAGE_SIZE, 0n))).toBe('EACCES'); // shared + writable on a read-only fd
    expect(codeOf(() => p.mmap(r, PAGE_SIZE, 0n, PROT_READ))).toBe('ENODEV'); // pipes have no mmap
    expect(codeOf(() => p.mmap(fd, PAGE_SIZE, 1n))).toBe('EINVAL'); // unaligned offset
    p.ftruncate(fd, PAGE_SIZE);
    const m = p.mmap(fd, PAGE_SIZE, 0n);
    expect(codeOf(() => p.munmap(m.addr, 2 * PAGE_SIZE))).toBe('EINVAL');
    expect(codeOf(() => p.munmap(m.addr + 4096n, PAGE_SIZE))).toBe('EINVAL');
    p.munmap(m.addr, PAGE_SIZE);
    expect(codeOf(() => p.munmap(m.addr, PAGE_SIZE))).toBe('EINVAL');
  });
});
