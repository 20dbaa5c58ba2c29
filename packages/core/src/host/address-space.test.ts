import { describe, expect, it } from '@jest/globals';
import { AddressSpace } from './address-space.js';
import { FRAME_SIZE, PhysicalMemory } from './physical-memory.js';

describe('AddressSpace', () => {
  it('allocates page-aligned zeroed memory whose bytes are the physical bytes', () => {
    const phys = new PhysicalMemory();
    const mm = new AddressSpace(phys);
    const { addr, bytes } = mm.alloc(3 * FRAME_SIZE - 100);
    expect(addr % BigInt(FRAME_SIZE)).toBe(0n);
    expect(bytes.length).toBe(3 * FRAME_SIZE);
    bytes[FRAME_SIZE + 7] = 0x5a;
    const frame = mm.frameOf(addr + BigInt(FRAME_SIZE))!;
    expect(phys.read(frame * FRAME_SIZE + 7, new Uint8Array(1))[0]).toBe(0x5a);
  });

  it('places a mapping of 2 MiB or more on a 2 MiB boundary, virtually and physically, whatever came before', () => {
    const HUGE = 2 * 1024 * 1024;
    const phys = new PhysicalMemory();
    const other = new AddressSpace(phys);
    other.alloc(3 * FRAME_SIZE); // another process leaves the host's next frame unaligned
    const mm = new AddressSpace(phys);
    mm.alloc(5 * FRAME_SIZE);
    const { addr } = mm.alloc(4 * 1024 * 1024);
    expect(Number(addr) % HUGE).toBe(0);
    expect((mm.frameOf(addr)! * FRAME_SIZE) % HUGE).toBe(0);
    const small = mm.alloc(FRAME_SIZE);
    expect(mm.frameOf(small.addr)).toBe(mm.frameOf(addr)! + 1024); // small ones still pack after it
  });

  it('copy_from_user / copy_to_user fault with EFAULT outside mappings, including the guard gap', () => {
    const mm = new AddressSpace(new PhysicalMemory());
    const { addr } = mm.alloc(FRAME_SIZE);
    mm.write(addr + 10n, Uint8Array.from([1, 2]));
    expect(Array.from(mm.read(addr + 10n, 2))).toEqual([1, 2]);
    expect(() => mm.read(addr + BigInt(FRAME_SIZE) - 1n, 2)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => mm.read(0n, 1)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(mm.frameOf(addr + BigInt(FRAME_SIZE))).toBeUndefined();
  });

  it('read-only shared mappings refuse writes and write pins', () => {
    const phys = new PhysicalMemory();
    const mm = new AddressSpace(phys);
    const run = phys.allocRun(2);
    const { addr } = mm.mapShared(run, FRAME_SIZE, FRAME_SIZE, false);
    expect(mm.frameOf(addr)).toBe(run.firstFrame + 1);
    expect(mm.frameOf(addr, true)).toBeUndefined();
    expect(() => mm.write(addr, Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    mm.free(addr);
    expect(phys.allocatedFrameCount).toBe(2); // shared pages stay with their owner
  });

  it('free releases the frames and only takes mapping starts', () => {
    const phys = new PhysicalMemory();
    const mm = new AddressSpace(phys);
    const { addr } = mm.alloc(2 * FRAME_SIZE);
    expect(() => mm.free(addr + 1n)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    mm.free(addr);
    expect(phys.allocatedFrameCount).toBe(0);
    expect(mm.find(addr)).toBeUndefined();
  });

  it('adopt: a mapping whose pages are the given bytes, placed like alloc, given back by free', () => {
    const HUGE = 2 * 1024 * 1024;
    const phys = new PhysicalMemory();
    const mm = new AddressSpace(phys);
    mm.alloc(3 * FRAME_SIZE);
    const owned = new Uint8Array(new ArrayBuffer(HUGE));
    let released = 0;
    const m = mm.adopt(owned, () => released++);
    expect(m.bytes.buffer).toBe(owned.buffer);
    expect(Number(m.addr) % HUGE).toBe(0);
    expect((mm.frameOf(m.addr)! * FRAME_SIZE) % HUGE).toBe(0);
    // copy_to_user and copy_from_user are the owner's bytes.
    mm.write(m.addr + 10n, Uint8Array.of(1, 2));
    expect(owned[11]).toBe(2);
    owned[HUGE - 1] = 0x77;
    expect(mm.read(m.addr + BigInt(HUGE - 1), 1)[0]).toBe(0x77);
    expect(phys.read(mm.frameOf(m.addr + BigInt(HUGE - 1))! * FRAME_SIZE + FRAME_SIZE - 1, new Uint8Array(1))[0]).toBe(0x77);
    expect(() => mm.adopt(new Uint8Array(100))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    mm.free(m.addr);
    expect(released).toBe(1);
    expect(mm.find(m.addr)).toBeUndefined();
    expect(phys.adoptedRunCount).toBe(0);
  });
});
