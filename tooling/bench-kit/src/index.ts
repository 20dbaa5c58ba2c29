// @viommu/bench-kit: what every package's bench script repeats — measure a rate, state it as a
// ratio against a baseline measured in the same run, print the rows, write bench-results/*.json.
// A devDependency only: published packages never import it from their runtime code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Measurement {
  readonly name: string;
  /** Operations per second over the whole timed span. */
  readonly opsPerSec: number;
}

/**
 * Calls `fn` (which performs `opsPerCall` operations) 200 times to warm up, then in batches of 100
 * until `minMs` have passed, and returns the mean rate.
 */
export function measure(name: string, opsPerCall: number, fn: () => void, minMs = 400): Measurement {
  for (let i = 0; i < 200; i++) fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
    now = performance.now();
  }
  return { name, opsPerSec: (calls * opsPerCall * 1000) / (now - start) };
}

export interface Ratio extends Measurement {
  /** The name of the measurement this one is compared with (its own name for a baseline row). */
  readonly baseline: string;
  readonly ratio: number;
}

/** `m` as a ratio of `baseline`; `against(b, b)` is the baseline's own row (ratio 1). */
export function against(m: Measurement, baseline: Measurement): Ratio {
  return { ...m, baseline: baseline.name, ratio: m.opsPerSec / baseline.opsPerSec };
}

/** One line per row: name, rate, ratio and what it is compared with. */
export function printRatios(rows: readonly Ratio[]): void {
  const width = Math.max(...rows.map((r) => r.name.length)) + 2;
  for (const r of rows) {
    const vs = r.baseline === r.name ? '(baseline)' : r.baseline;
    console.log(`${r.name.padEnd(width)} ${Math.round(r.opsPerSec).toString().padStart(10)} /s   x${r.ratio.toFixed(2)} vs ${vs}`);
  }
}

/**
 * Writes `payload` (with the date and Node version) as `bench-results/<name>.json` of the package
 * whose compiled bench is `benchUrl` (its `import.meta.url`, at dist/bench/*.js), and returns the path.
 */
export function writeBenchResults(benchUrl: string, name: string, payload: object): string {
  const file = join(dirname(fileURLToPath(benchUrl)), '..', '..', 'bench-results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, ...payload }, null, 2) + '\n');
  return file;
}
