// The sim backend's placement of big user allocations (huge-page congruence on a shared host).
import { describe, expect, it } from '@jest/globals';
import { createSimHost, FRAME_SIZE, type AddressSpace } from '@viommu/core';
import { congruentAlloc } from './backend.js';

const HUGE = 2 * 1024 * 1024;
const skew = (mm: AddressSpace, addr: bigint) => (((Number(addr) - mm.frameOf(addr)! * FRAME_SIZE) % HUGE) + HUGE) % HUGE;

describe('congruentAlloc', () => {
  it('places 2 MiB and bigger allocations at a user address congruent to their physical one, whatever was allocated before', () => {
    const host = createSimHost();
    let plainMisses = 0;
    for (let round = 0; round < 6; round++) {
      const p = host.spawn();
      // Other clients' odd-sized allocations move the host's physical memory along.
      host.spawn().memory.alloc((round * 7 + 3) * FRAME_SIZE);
      p.memory.alloc((round + 1) * 5 * FRAME_SIZE);
      const plain = p.memory.alloc(HUGE + 3 * FRAME_SIZE);
      if (skew(p.memory, plain.addr) !== 0) plainMisses++;
      for (const length of [HUGE, 66 * 1024 * 1024, HUGE + 123]) {
        const m = congruentAlloc(p.memory, length);
        expect(skew(p.memory, m.addr)).toBe(0);
        expect(m.bytes.length).toBe(Math.ceil(length / FRAME_SIZE) * FRAME_SIZE);
        // The memory is ordinary user memory: writable through the bytes, read back by address.
        m.bytes[length - 1] = 0x5a;
        expect(p.memory.read(m.addr + BigInt(length - 1), 1)[0]).toBe(0x5a);
      }
    }
    // Without it, the placement is a matter of history (the reason this exists).
    expect(plainMisses).toBeGreaterThan(0);
  });

  it('leaves small allocations as the address space makes them', () => {
    const host = createSimHost();
    const p = host.spawn();
    const a = congruentAlloc(p.memory, 3 * FRAME_SIZE);
    const b = p.memory.alloc(FRAME_SIZE);
    expect(Number(b.addr)).toBeGreaterThan(Number(a.addr));
    expect(p.memory.list().length).toBe(2);
  });
});
