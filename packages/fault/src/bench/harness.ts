// A small benchmark harness: runs a body in rounds, reports the median rate, and compares it with
// a baseline measured in the same process right before, so ratios hold across machines.

import { writeBenchResults } from '@viommu/bench-kit';

export interface Rate {
  /** Operations per second, median over rounds. */
  opsPerSec: number;
  rounds: number;
}

/**
 * Calls `round()` (which performs `opsPerRound` operations) until `minMs` have passed, after a
 * warm-up, and returns the median per-round rate.
 */
export function rate(opsPerRound: number, round: () => void, minMs = 1000): Rate {
  const warmEnd = performance.now() + minMs / 4;
  while (performance.now() < warmEnd) round();
  const rates: number[] = [];
  const end = performance.now() + minMs;
  while (performance.now() < end || rates.length < 5) {
    const t0 = performance.now();
    round();
    const dt = performance.now() - t0;
    rates.push((opsPerRound * 1000) / Math.max(dt, 1e-6));
  }
  rates.sort((a, b) => a - b);
  return { opsPerSec: rates[rates.length >> 1]!, rounds: rates.length };
}

/** The p-th percentile (0..100) of `samples` (sorted in place). */
export function percentile(samples: Float64Array, p: number): number {
  samples.sort();
  const i = Math.min(samples.length - 1, Math.max(0, Math.ceil((p / 100) * samples.length) - 1));
  return samples[i]!;
}

export interface ResultRow {
  name: string;
  opsPerSec: number;
  baseline: string;
  baselineOpsPerSec: number;
  /** opsPerSec / baselineOpsPerSec. */
  ratio: number;
  [extra: string]: number | string;
}

export function row(name: string, ours: Rate, baselineName: string, baseline: Rate, extra: Record<string, number> = {}): ResultRow {
  return { name, opsPerSec: ours.opsPerSec, baseline: baselineName, baselineOpsPerSec: baseline.opsPerSec, ratio: ours.opsPerSec / baseline.opsPerSec, ...extra };
}

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(1));

export function report(suite: string, rows: ResultRow[]): void {
  console.log(`\n${suite}`);
  for (const r of rows) {
    const extras = Object.entries(r)
      .filter(([k]) => !['name', 'opsPerSec', 'baseline', 'baselineOpsPerSec', 'ratio'].includes(k))
      .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(2) : v}`)
      .join(' ');
    console.log(`  ${r.name.padEnd(44)} ${fmt(r.opsPerSec).padStart(8)}/s  ratio ${r.ratio.toFixed(3)} vs ${r.baseline} (${fmt(r.baselineOpsPerSec)}/s)${extras ? `  ${extras}` : ''}`);
  }
  console.log(`  -> ${writeBenchResults(import.meta.url, suite, { suite, rows })}`);
}
