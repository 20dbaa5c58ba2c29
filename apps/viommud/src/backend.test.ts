// What the daemon's shared sim host relies on (ADR 0128): big user allocations are huge-page
// congruent to their physical frames whatever other clients allocated before, so the selftest's
// huge-page dirty-tracking cases pass through a shared daemon as on a fresh host.
import { describe, expect, it } from '@jest/globals';
import { FRAME_SIZE, type SimProcess } from '@viommu/core';
import { simBackend } from './backend.js';

const HUGE = 2 * 1024 * 1024;

describe('the shared sim host', () => {
  it('places 2 MiB and bigger allocations huge-page aligned in both address spaces, after any history', () => {
    const backend = simBackend();
    for (let round = 0; round < 6; round++) {
      // Another client's odd-sized allocations move the host's physical memory along.
      backend.spawn().memory.alloc((round * 7 + 3) * FRAME_SIZE);
      const p = backend.spawn() as SimProcess;
      p.memory.alloc((round + 1) * 5 * FRAME_SIZE);
      for (const length of [HUGE, 66 * 1024 * 1024, HUGE + 123]) {
        const m = p.memory.alloc(length);
        expect(Number(m.addr) % HUGE).toBe(0);
        expect((p.memory.frameOf(m.addr)! * FRAME_SIZE) % HUGE).toBe(0);
      }
      backend.exit(p);
    }
  });
});
