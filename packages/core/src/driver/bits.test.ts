import { describe, expect, it } from '@jest/globals';
import { addrOf, bit, bytesToQwords, field, num, put, putAddr, qwordsToBytes } from './bits.js';

describe('qword field helpers', () => {
  const w = 0x8000_0000_dead_b00fn;

  it('reads inclusive [lo, hi] fields, single bits and in-place addresses', () => {
    expect(field(w, 0, 15)).toBe(0xb00fn);
    expect(num(w, 16, 31)).toBe(0xdead);
    expect(num(w, 63, 63)).toBe(1);
    expect(bit(w, 63)).toBe(true);
    expect(bit(w, 62)).toBe(false);
    expect(addrOf(w, 12, 51)).toBe(0xdead_b000n);
  });

  it('places values and throws on one that does not fit (an encoder bug)', () => {
    expect(put(0x5, 4, 7)).toBe(0x50n);
    expect(put(true, 63, 63)).toBe(1n << 63n);
    expect(put(false, 3, 3)).toBe(0n);
    expect(() => put(0x10, 4, 7)).toThrow(RangeError);
    expect(() => put(-1, 0, 7)).toThrow(RangeError);
    expect(putAddr(0x1234_5000, 12, 51)).toBe(0x1234_5000n);
    expect(() => putAddr(0x1234_5008, 12, 51)).toThrow(RangeError);
    expect(() => putAddr(1n << 52n, 12, 51)).toThrow(RangeError);
  });
});

describe('qword packing', () => {
  it('is little-endian, takes words modulo 2^64 and ignores a trailing partial word', () => {
    const b = qwordsToBytes([0x0102_0304_0506_0708n, -1n]);
    expect(Array.from(b)).toEqual([8, 7, 6, 5, 4, 3, 2, 1, 255, 255, 255, 255, 255, 255, 255, 255]);
    expect(bytesToQwords(b)).toEqual([0x0102_0304_0506_0708n, 0xffff_ffff_ffff_ffffn]);
    const odd = new Uint8Array(20);
    odd[8] = 0x2a;
    expect(bytesToQwords(odd)).toEqual([0n, 0x2an]);
  });

  it('reads a view at an offset of a larger buffer', () => {
    const big = new Uint8Array(24);
    big[8] = 1;
    expect(bytesToQwords(big.subarray(8, 16))).toEqual([1n]);
  });
});
