// The seeded randomness and the per-call rule shared by the core's fuzz tests (fuzz.test.ts over a
// small driver, fuzz-mock.test.ts over the selftest mock): every call returns or throws an
// errno-coded error, and anything else fails the run with the call that did it.

import { isErrnoError } from '@viommu/uapi';

/** A fuzz knob from the environment (e.g. FUZZ_CALLS, FUZZ_SEED), or its default. */
export function fuzzKnob(name: string, fallback: number): number {
  return Number(process.env[name] ?? fallback);
}

export interface Fuzzer {
  /** Uniform in [0, 1). */
  rand(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
}

/** mulberry32: small, fast, seedable; the same seed replays the same run. */
export function fuzzer(seed: number): Fuzzer {
  let a = seed >>> 0;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(rand() * n);
  return { rand, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}

/** How many fuzzed calls returned and how many failed with an errno. */
export interface FuzzCounts {
  ok: number;
  err: number;
}

/**
 * Runs one fuzzed call and counts it; returns whether it succeeded. A throw that is not an errno
 * error is rethrown as a failure naming the call (`label` is only built then).
 */
export function fuzzCall(counts: FuzzCounts, label: () => string, fn: () => void): boolean {
  try {
    fn();
  } catch (e) {
    if (!isErrnoError(e)) throw new Error(`${label()}: not an errno error: ${(e as Error)?.stack ?? String(e)}`);
    counts.err++;
    return false;
  }
  counts.ok++;
  return true;
}
