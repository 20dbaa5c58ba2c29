// Benchmark (issue 3): IOMMU_DESTROY + IOMMU_IOAS_ALLOC pairs per second in a context holding
// 1 k, 10 k and 100 k objects, through the process's ioctl path. The ratio is each size's rate over
// the 1 k rate measured in the same run: it should stay near 1 (flat as the table grows).
// Also the bare ObjectTable (destroyById + reserve/finalize) at the same sizes, for the dispatch cost.
// Run from packages/core: pnpm bench (or tsc --build && node dist/object/object-table.bench.js).
// Results go to bench-results/object-table.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { IommufdObject, OBJ } from './object.js';
import { ObjectTable } from './object-table.js';

class Plain extends IommufdObject {
  readonly type = OBJ.IOAS;
  destroy(): void {}
}

function rate(op: () => void, ms = 600): number {
  for (let i = 0; i < 2000; i++) op();
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 1000; i++) op();
    n += 1000;
    elapsed = process.hrtime.bigint() - start;
  }
  return (n * 1e9) / Number(elapsed);
}

/**
 * Which object to destroy next, deterministically: 'random' over all n objects (every access a
 * likely cache miss at 100 k), or 'recent' among the 64 newest (a VMM's usual churn).
 */
function picker(n: number, mode: Mode): () => number {
  let x = 12345;
  const span = mode === 'random' ? n : Math.min(64, n);
  const base = mode === 'random' ? 1 : n - span + 1;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return base + (x % span);
  };
}

type Mode = 'random' | 'recent';

function viaIoctl(n: number, mode: Mode): number {
  const host = createSimHost({ iommus: [] });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const alloc = U.iommu_ioas_alloc.encode();
  for (let i = 0; i < n; i++) proc.ioctl(fd, U.IOMMU_IOAS_ALLOC, alloc);
  const destroy = U.iommu_destroy.encode();
  const next = picker(n, mode);
  const r = rate(() => {
    U.iommu_destroy.set(destroy, 'id', next());
    proc.ioctl(fd, U.IOMMU_DESTROY, destroy);
    proc.ioctl(fd, U.IOMMU_IOAS_ALLOC, alloc); // takes the ID just freed (lowest free)
  });
  proc.exit();
  return r;
}

function bareTable(n: number, mode: Mode): number {
  const t = new ObjectTable();
  for (let i = 0; i < n; i++) {
    const o = new Plain();
    t.reserve(o);
    t.finalize(o);
  }
  const next = picker(n, mode);
  return rate(() => {
    t.destroyById(next());
    const o = new Plain();
    t.reserve(o);
    t.finalize(o);
  });
}

const sizes = [1_000, 10_000, 100_000];
const results: Record<string, unknown>[] = [];
for (const mode of ['recent', 'random'] as const) {
  const ioctl = sizes.map((n) => Math.round(viaIoctl(n, mode)));
  const bare = sizes.map((n) => Math.round(bareTable(n, mode)));
  sizes.forEach((n, i) => {
    const r = {
      victims: mode,
      objects: n,
      ioctlPairsPerSec: ioctl[i]!,
      ratioToSmallest: +(ioctl[i]! / ioctl[0]!).toFixed(3),
      barePairsPerSec: bare[i]!,
      bareRatioToSmallest: +(bare[i]! / bare[0]!).toFixed(3),
      ioctlOverBare: +(ioctl[i]! / bare[i]!).toFixed(3),
    };
    results.push(r);
    console.log(
      `DESTROY+ALLOC, ${mode.padEnd(6)} victims, ${String(n).padStart(6)} objects: ${r.ioctlPairsPerSec.toLocaleString()} pairs/s via ioctl (x${r.ratioToSmallest} of 1k), ` +
        `bare table ${r.barePairsPerSec.toLocaleString()} pairs/s (x${r.bareRatioToSmallest} of 1k), ioctl/bare ${r.ioctlOverBare}`,
    );
  });
}
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/object-table.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2) + '\n');
console.log('wrote bench-results/object-table.json');
