import { describe, expect, it } from '@jest/globals';
import { FRAME_SIZE, PhysicalMemory } from './physical-memory.js';

describe('PhysicalMemory', () => {
  it('allocates zeroed contiguous runs, never frame 0, never reusing frame numbers', () => {
    const m = new PhysicalMemory();
    const a = m.allocRun(8);
    expect(a.firstFrame).toBeGreaterThan(0);
    expect(a.bytes.length).toBe(8 * FRAME_SIZE);
    expect(a.bytes.every((b) => b === 0)).toBe(true);
    const b = m.allocRun(2);
    expect(b.firstFrame).toBe(a.firstFrame + 8);
    m.freeRun(a.firstFrame);
    expect(m.allocRun(1).firstFrame).toBe(b.firstFrame + 2);
    expect(m.allocatedFrameCount).toBe(3);
  });

  it('a run is one plain Uint8Array over shared memory; physical reads see its writes', () => {
    const m = new PhysicalMemory();
    const r = m.allocRun(2);
    expect(r.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    const pa = r.firstFrame * FRAME_SIZE;
    r.bytes.set([1, 2, 3, 4, 5, 6], FRAME_SIZE - 3);
    expect(Array.from(m.read(pa + FRAME_SIZE - 3, new Uint8Array(6)))).toEqual([1, 2, 3, 4, 5, 6]);
    m.writeU64(pa + 16, 0x1122334455667788n);
    expect(m.readU64(pa + 16)).toBe(0x1122334455667788n);
    expect(m.readU32(pa + 20)).toBe(0x11223344);
    expect(r.bytes[16]).toBe(0x88);
  });

  it('reads zero from unbacked or freed addresses and drops writes there', () => {
    const m = new PhysicalMemory();
    const r = m.allocRun(1);
    const pa = r.firstFrame * FRAME_SIZE;
    m.writeU32(pa, 0xdeadbeef);
    m.freeRun(r.firstFrame);
    expect(m.readU32(pa)).toBe(0);
    m.writeU32(pa, 1);
    expect(m.readU32(pa)).toBe(0);
    expect(m.runAt(pa)).toBeUndefined();
  });

  it('reads and writes spanning two runs and a hole', () => {
    const m = new PhysicalMemory();
    const a = m.allocRun(1);
    m.allocRun(1);
    const pa = a.firstFrame * FRAME_SIZE + FRAME_SIZE - 2;
    m.write(pa, Uint8Array.from([9, 8, 7, 6]));
    expect(Array.from(m.read(pa, new Uint8Array(4)))).toEqual([9, 8, 7, 6]);
    expect(m.readU32(pa)).toBe(0x06070809);
  });

  it('rejects bad sizes and frees of unknown runs', () => {
    const m = new PhysicalMemory();
    expect(() => m.allocRun(0)).toThrow(RangeError);
    expect(() => m.freeRun(12345)).toThrow(RangeError);
  });

  it('writeU32 / writeU64 store little-endian in a run, across two runs, and drop what falls in a hole', () => {
    const m = new PhysicalMemory();
    const a = m.allocRun(1);
    const b = m.allocRun(1);
    const pa = a.firstFrame * FRAME_SIZE;
    m.writeU32(pa + 8, -2); // as the unsigned 0xfffffffe
    expect(Array.from(a.bytes.subarray(8, 12))).toEqual([0xfe, 0xff, 0xff, 0xff]);
    m.writeU64(pa + 16, 0xf1e2d3c4_b5a69788n);
    expect(Array.from(a.bytes.subarray(16, 24))).toEqual([0x88, 0x97, 0xa6, 0xb5, 0xc4, 0xd3, 0xe2, 0xf1]);
    // Straddling the end of run a and the start of run b.
    m.writeU32(pa + FRAME_SIZE - 2, 0x44332211);
    expect([a.bytes[FRAME_SIZE - 2], a.bytes[FRAME_SIZE - 1], b.bytes[0], b.bytes[1]]).toEqual([0x11, 0x22, 0x33, 0x44]);
    m.writeU64(pa + FRAME_SIZE - 4, 0x0807060504030201n);
    expect(m.readU64(pa + FRAME_SIZE - 4)).toBe(0x0807060504030201n);
    // Straddling the end of run b and the unbacked frame after it: the backed half lands.
    const end = b.firstFrame * FRAME_SIZE + FRAME_SIZE - 2;
    m.writeU32(end, 0xddccbbaa);
    expect([b.bytes[FRAME_SIZE - 2], b.bytes[FRAME_SIZE - 1]]).toEqual([0xaa, 0xbb]);
    expect(m.readU32(end + 2)).toBe(0);
  });

  describe('adoptRun', () => {
    it('uses the given bytes in place, ArrayBuffer-backed, for every kind of access', () => {
      const m = new PhysicalMemory();
      m.allocRun(3);
      const owned = new Uint8Array(new ArrayBuffer(2 * FRAME_SIZE));
      owned[FRAME_SIZE + 1] = 0x5a;
      const r = m.adoptRun(owned);
      expect(r.adopted).toBe(true);
      expect(r.bytes).toBe(owned);
      expect(r.firstFrame).toBe(4);
      expect(m.allocatedFrameCount).toBe(5);
      const pa = r.firstFrame * FRAME_SIZE;
      // Contents are kept, reads see the owner's later writes, and physical writes land in its bytes.
      expect(m.read(pa + FRAME_SIZE, new Uint8Array(2))).toEqual(Uint8Array.of(0, 0x5a));
      owned[7] = 0x99;
      expect(m.readU32(pa + 4)).toBe(0x99000000);
      m.writeU64(pa + 16, 0x0102030405060708n);
      expect(Array.from(owned.subarray(16, 24))).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
      m.write(pa + FRAME_SIZE - 2, Uint8Array.of(1, 2, 3, 4));
      expect(Array.from(owned.subarray(FRAME_SIZE - 2, FRAME_SIZE + 2))).toEqual([1, 2, 3, 4]);
    });

    it('places the first frame on the alignment asked for, and takes part of a bigger buffer', () => {
      const m = new PhysicalMemory();
      m.allocRun(1);
      const big = new Uint8Array(new ArrayBuffer(4 * FRAME_SIZE));
      const r = m.adoptRun(big.subarray(FRAME_SIZE, 3 * FRAME_SIZE), undefined, 512);
      expect(r.firstFrame % 512).toBe(0);
      m.writeU32(r.firstFrame * FRAME_SIZE, 0xaabbccdd);
      expect(big[FRAME_SIZE]).toBe(0xdd);
    });

    it('rejects bytes that are not whole frames or not 8-byte aligned', () => {
      const m = new PhysicalMemory();
      expect(() => m.adoptRun(new Uint8Array(0))).toThrow(RangeError);
      expect(() => m.adoptRun(new Uint8Array(FRAME_SIZE + 1))).toThrow(RangeError);
      expect(() => m.adoptRun(new Uint8Array(new ArrayBuffer(2 * FRAME_SIZE)).subarray(4, 4 + FRAME_SIZE))).toThrow(RangeError);
      expect(() => m.adoptRun(new Uint8Array(FRAME_SIZE), undefined, 0)).toThrow(RangeError);
      expect(m.allocatedFrameCount).toBe(0);
    });

    it('goes back to its owner when the last holder frees it, and its frame numbers are never reused', () => {
      const m = new PhysicalMemory();
      const released: number[] = [];
      const r = m.adoptRun(new Uint8Array(FRAME_SIZE), () => released.push(r.firstFrame));
      const pa = r.firstFrame * FRAME_SIZE;
      m.holdRun(r); // a pin
      m.freeRun(r.firstFrame); // the adopter lets go: the pin keeps it
      expect(released).toEqual([]);
      expect(m.runAt(pa)).toBe(r);
      expect(m.adoptedRunCount).toBe(1);
      m.writeU32(pa, 7);
      expect(r.bytes[0]).toBe(7);
      m.freeRun(r.firstFrame); // the unpin
      expect(released).toEqual([r.firstFrame]);
      expect(m.runAt(pa)).toBeUndefined();
      expect(m.adoptedRunCount).toBe(0);
      expect(m.allocatedFrameCount).toBe(0);
      // Nothing touches the bytes any more, and the frames stay unbacked.
      m.writeU32(pa, 9);
      expect(r.bytes[0]).toBe(7);
      expect(m.allocRun(1).firstFrame).toBe(r.firstFrame + 1);
      expect(() => m.freeRun(r.firstFrame)).toThrow(RangeError);
    });

    it('holdRun changes nothing for allocated runs: freeRun still frees them at once', () => {
      const m = new PhysicalMemory();
      const r = m.allocRun(1);
      m.holdRun(r);
      m.freeRun(r.firstFrame);
      expect(m.runAt(r.firstFrame * FRAME_SIZE)).toBeUndefined();
      expect(r.adopted).toBe(false);
    });
  });
});
