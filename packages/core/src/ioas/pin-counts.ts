// How many times each physical frame is pinned (FOLL_PIN), as the kernel's page refcount bias
// shows it to IOMMU_TEST_OP_MD_CHECK_REFS. Counts live in one Uint32Array per run of physical
// memory, made on the run's first pin: 4 bytes per frame, no per-page objects.

import { FRAME_SIZE, type FrameRun, type PhysicalMemory } from '../host/physical-memory.js';

const countsByRun = new WeakMap<FrameRun, Uint32Array>();
/** Sum of the pin counts of an adopted run: while it is not 0 the pins hold the run (ADR 0193). */
const pinsOfAdopted = new WeakMap<FrameRun, number>();

/** Adds `delta` (+1 or -1) to the pin count of frames [frame, frame + n). Frames of freed runs are skipped. */
export function adjustPins(physical: PhysicalMemory, frame: number, n: number, delta: 1 | -1): void {
  let f = frame;
  const end = frame + n;
  while (f < end) {
    const run = physical.runAt(f * FRAME_SIZE);
    if (!run) {
      f++;
      continue;
    }
    let counts = countsByRun.get(run);
    if (!counts) {
      counts = new Uint32Array(run.frames);
      countsByRun.set(run, counts);
    }
    const stop = Math.min(end, run.firstFrame + run.frames);
    const from = f - run.firstFrame;
    const to = stop - run.firstFrame;
    // Two plain loops rather than one testing delta per frame: this runs over every pinned page.
    if (delta > 0) for (let i = from; i < to; i++) counts[i]!++;
    else {
      for (let i = from; i < to; i++) {
        const c = counts[i]!;
        if (c === 0) throw new Error(`pin count of frame ${run.firstFrame + i} would go negative`);
        counts[i] = c - 1;
      }
    }
    f = stop;
    if (run.adopted) holdWhilePinned(physical, run, delta * (to - from));
  }
}

/**
 * An adopted run's bytes belong to someone else, who gets them back when the run is freed: like
 * the kernel's page references, its pins keep it alive past its mapping (munmap, file close).
 */
function holdWhilePinned(physical: PhysicalMemory, run: FrameRun, delta: number): void {
  const before = pinsOfAdopted.get(run) ?? 0;
  const after = before + delta;
  pinsOfAdopted.set(run, after);
  if (before === 0 && after > 0) physical.holdRun(run);
  else if (before > 0 && after === 0) physical.freeRun(run.firstFrame);
}

/** Pin count of one frame (0 for unpinned or unbacked frames). */
export function framePinCount(physical: PhysicalMemory, frame: number): number {
  const run = physical.runAt(frame * FRAME_SIZE);
  if (!run) return 0;
  return countsByRun.get(run)?.[frame - run.firstFrame] ?? 0;
}

/** True when any frame of `run` is pinned (a memfd's release keeps such runs). */
export function runHasPins(run: FrameRun): boolean {
  const counts = countsByRun.get(run);
  return counts !== undefined && counts.some((c) => c !== 0);
}
