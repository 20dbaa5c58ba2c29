import { describe, expect, it } from '@jest/globals';
import { FRAME_SIZE, PhysicalMemory } from './physical-memory.js';

describe('PhysicalMemory', () => {
  it('reads zeros from frames never written, without materialising them', () => {
    const m = new PhysicalMemory();
    const f = m.allocFrames(4);
    expect(m.read(f * FRAME_SIZE, new Uint8Array(3 * FRAME_SIZE)).every((b) => b === 0)).toBe(true);
    expect(m.readU64(f * FRAME_SIZE + 8)).toBe(0n);
    expect(m.residentFrameCount).toBe(0);
  });

  it('writes and reads across frame boundaries', () => {
    const m = new PhysicalMemory();
    const pa = m.allocFrames(2) * FRAME_SIZE + FRAME_SIZE - 3;
    m.write(pa, Uint8Array.from([1, 2, 3, 4, 5, 6]));
    expect(Array.from(m.read(pa, new Uint8Array(6)))).toEqual([1, 2, 3, 4, 5, 6]);
    m.writeU64(pa, 0x1122334455667788n);
    expect(m.readU64(pa)).toBe(0x1122334455667788n);
    expect(m.readU32(pa)).toBe(0x55667788);
    expect(m.readU64Hi(pa)).toBe(0x11223344);
    expect(m.residentFrameCount).toBe(2);
  });

  it('hands out contiguous runs, never frame 0, and reuses freed runs zeroed', () => {
    const m = new PhysicalMemory();
    const a = m.allocFrames(8);
    expect(a).toBeGreaterThan(0);
    const b = m.allocFrames(2);
    expect(b).toBe(a + 8);
    m.writeU32(a * FRAME_SIZE, 0xdeadbeef);
    m.freeFrames(a, 8);
    expect(m.allocatedFrameCount).toBe(2);
    const c = m.allocFrames(4);
    expect(c).toBe(a);
    expect(m.readU32(c * FRAME_SIZE)).toBe(0);
  });

  it('shares frame bytes through SharedArrayBuffer locations', () => {
    const m = new PhysicalMemory();
    const f = m.allocFrames(1);
    const loc = m.frameLocation(f);
    expect(loc.slab).toBeInstanceOf(SharedArrayBuffer);
    new Uint8Array(loc.slab, loc.offset, FRAME_SIZE)[5] = 0x42;
    expect(m.read(f * FRAME_SIZE + 5, new Uint8Array(1))[0]).toBe(0x42);
  });
});
