import { describe, expect, it } from '@jest/globals';
import { errnoOf } from '../testing/harness.js';
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

  describe('adopted (a client memfd through viommud)', () => {
    const adopted = (size: number, opts: { sealGrow?: boolean } = {}) => {
      const phys = new PhysicalMemory();
      const bytes = new Uint8Array(new ArrayBuffer(Math.ceil(size / FRAME_SIZE) * FRAME_SIZE));
      const released: string[] = [];
      const f = MemFile.adopt(phys, bytes, { size, name: 'client', ...opts, release: () => released.push('released') });
      return { phys, bytes, f, released };
    };

    it('its pages are the given bytes, its size the file size', () => {
      const { phys, bytes, f } = adopted(2 * FRAME_SIZE + 100);
      expect(f.size).toBe(2 * FRAME_SIZE + 100);
      expect(f.name).toBe('client');
      bytes[FRAME_SIZE + 3] = 0x42;
      expect(phys.read(f.frameOf(1)! * FRAME_SIZE + 3, new Uint8Array(1))[0]).toBe(0x42);
      f.write(2 * FRAME_SIZE, Uint8Array.of(9));
      expect(bytes[2 * FRAME_SIZE]).toBe(9);
      expect(f.contiguousFrom(0)).toBe(3);
      expect(f.frameOf(3)).toBeUndefined();
      expect(f.slice(FRAME_SIZE, FRAME_SIZE)!.run.bytes).toBe(bytes);
    });

    it('needs bytes that are the size rounded up to pages', () => {
      const phys = new PhysicalMemory();
      expect(() => MemFile.adopt(phys, new Uint8Array(2 * FRAME_SIZE), { size: FRAME_SIZE })).toThrow(RangeError);
      expect(() => MemFile.adopt(phys, new Uint8Array(FRAME_SIZE), { size: 0 })).toThrow(RangeError);
      expect(phys.adoptedRunCount).toBe(0);
    });

    it('ftruncate: shrinking is sealed (EPERM); growing is sealed when the client file is, else adds pages of its own', () => {
      const sealed = adopted(FRAME_SIZE, { sealGrow: true });
      expect(errnoOf(() => sealed.f.truncate(FRAME_SIZE - 1))).toBe('EPERM');
      expect(errnoOf(() => sealed.f.truncate(0))).toBe('EPERM');
      expect(errnoOf(() => sealed.f.truncate(2 * FRAME_SIZE))).toBe('EPERM');
      expect(errnoOf(() => sealed.f.truncate(FRAME_SIZE))).toBe('OK');
      expect(sealed.f.size).toBe(FRAME_SIZE);

      const { phys, bytes, f } = adopted(FRAME_SIZE);
      f.truncate(3 * FRAME_SIZE);
      expect(f.size).toBe(3 * FRAME_SIZE);
      expect(phys.allocatedFrameCount).toBe(3);
      // The new pages are the simulator's: the client's bytes are untouched by writes there.
      f.write(FRAME_SIZE, Uint8Array.of(1));
      expect(bytes.every((b) => b === 0)).toBe(true);
      expect(errnoOf(() => f.truncate(2 * FRAME_SIZE))).toBe('EPERM');
    });

    it('the last put releases it: its own pages freed, the adopted bytes given back once', () => {
      const { phys, f, released } = adopted(FRAME_SIZE);
      f.truncate(2 * FRAME_SIZE);
      f.get(); // an mmap
      f.put(); // the fd closed
      expect(released).toEqual([]);
      f.put(); // munmap
      expect(released).toEqual(['released']);
      expect(phys.allocatedFrameCount).toBe(0);
      expect(phys.adoptedRunCount).toBe(0);
    });
  });
});
