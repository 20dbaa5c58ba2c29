import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { against, measure, writeBenchResults } from './index.js';

describe('bench-kit', () => {
  it('measure counts opsPerCall per call, warm-up excluded', () => {
    let calls = 0;
    const m = measure('count', 8, () => { calls++; }, 1);
    expect(m.name).toBe('count');
    expect(calls).toBeGreaterThanOrEqual(300); // 200 warm-up + at least one batch of 100
    expect(m.opsPerSec).toBeGreaterThan(0);
  });

  it('against divides by the baseline and names it', () => {
    const base = { name: 'base', opsPerSec: 200 };
    expect(against({ name: 'fast', opsPerSec: 500 }, base)).toEqual({ name: 'fast', opsPerSec: 500, baseline: 'base', ratio: 2.5 });
    expect(against(base, base).ratio).toBe(1);
  });

  it('writeBenchResults writes bench-results/<name>.json two levels above the bench file', () => {
    const pkg = mkdtempSync(join(tmpdir(), 'bench-kit-'));
    const file = writeBenchResults(pathToFileURL(join(pkg, 'dist', 'bench', 'x.bench.js')).href, 'x', { results: [1] });
    expect(file).toBe(join(pkg, 'bench-results', 'x.json'));
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json.results).toEqual([1]);
    expect(json.node).toBe(process.version);
  });
});
