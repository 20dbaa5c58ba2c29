import { describe, expect, it } from '@jest/globals';
import { MemFile } from './mem-file.js';
import { FRAME_SIZE, PhysicalMemory } from './physical-memory.js';

describe('MemFile', () => {
  it('grows with zeroed pages, reads and writes inside its size, maps pages to frames', () => {
    const phys = new PhysicalMemory();
    const f = new MemFile(phys, 'guest-ram');
    expect(f.size).toBe(0);
    expect(f.frameOf(0)).toBeUndefined();
    f.truncate(FRAME_SIZE * 2 + 10);
    expect(f.size).toBe(FRAME_SIZE * 2 + 10);
    expect(phys.allocatedFrameCount).toBe(3);
    f.write(FRAME_SIZE - 1, Uint8Array.of(7, 8));
    expect(Array.from(f.read(FRAME_SIZE - 1, 2))).toEqual([7, 8]);
    expect(phys.read(f.frameOf(1)! * FRAME_SIZE, new Uint8Array(1))[0]).toBe(8);
    expect(f.frameOf(2)).toBe(f.frameOf(0)! + 2);
    expect(f.frameOf(3)).toBeUndefined();
    expect(f.contiguousFrom(1)).toBe(2);
    expect(() => f.write(f.size, Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'EFBIG' }));
  });

  it('grows in steps as separate runs; slice serves mmap only inside one run', () => {
    const phys = new PhysicalMemory();
    const f = new MemFile(phys);
    f.truncate(FRAME_SIZE);
    f.truncate(FRAME_SIZE * 3);
    expect(f.contiguousFrom(0)).toBe(1);
    expect(f.slice(FRAME_SIZE, FRAME_SIZE * 2)?.runOffset).toBe(0);
    expect(f.slice(0, FRAME_SIZE * 2)).toBeUndefined();
  });

  it('shrinking drops pages and zeroes the tail; release frees runs nobody pins', () => {
    const phys = new PhysicalMemory();
    const f = new MemFile(phys);
    f.truncate(FRAME_SIZE);
    f.truncate(FRAME_SIZE * 2);
    f.write(10, Uint8Array.of(1, 2, 3));
    f.truncate(11);
    f.truncate(FRAME_SIZE);
    expect(Array.from(f.read(10, 3))).toEqual([1, 0, 0]);
    expect(f.frameOf(1)).toBeUndefined();
    f.release();
    expect(phys.allocatedFrameCount).toBe(0);
    expect(() => f.truncate(1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
