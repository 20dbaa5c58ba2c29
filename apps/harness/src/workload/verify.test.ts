import { describe, expect, it } from '@jest/globals';
import { PAGE, fillPattern, firstMismatch, seedOf, whichPattern } from './verify.js';

describe('workload data patterns', () => {
  it('differ per device, page and generation', () => {
    const seeds = new Set<number>();
    for (let d = 0; d < 64; d++) for (let p = 0; p < 64; p++) for (let g = 0; g < 2; g++) seeds.add(seedOf(d, p, g));
    expect(seeds.size).toBe(64 * 64 * 2);
  });

  it('matches only its own pattern and names the first wrong byte', () => {
    const page = new Uint8Array(PAGE);
    fillPattern(page, seedOf(1, 2, 0));
    expect(firstMismatch(page, seedOf(1, 2, 0))).toBe(-1);
    expect(firstMismatch(page, seedOf(1, 3, 0))).toBe(0);
    page[1001] = page[1001]! ^ 0x40;
    expect(firstMismatch(page, seedOf(1, 2, 0))).toBe(1000);
    fillPattern(page, seedOf(7, 0, 1));
    expect(whichPattern(page, [seedOf(7, 0, 0), seedOf(7, 0, 1)])).toBe(1);
    expect(whichPattern(new Uint8Array(PAGE), [seedOf(7, 0, 0)])).toBe(-1);
  });
});
