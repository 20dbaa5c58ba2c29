// Benchmark (issue 3): IOMMU_DESTROY + IOMMU_IOAS_ALLOC pairs per second in a context holding
// 1 k, 10 k and 100 k objects, through the process's ioctl path, and the same mix on a bare
// ObjectTable (destroyById + reserve/finalize). Every context is built once and kept; the sizes
// are then measured in interleaved rounds (1k, 10k, 100k, 1k, ...) with a full GC before each
// measurement, so that a loaded machine or another size's garbage skews no single size, and each
// size's best round counts. The ratio is a size's best over the 1 k best: flat means near 1.
// What grows with the table for random victims (ADR 0192: --cpu-prof, --trace-gc-nvp): not the
// table's work, which is O(1) here (the freed ID is the one reused), but the lifetime of the
// replacement object. A random victim's replacement lives ~n pairs: at 1 k it dies in the nursery,
// at 100 k the scavenger copies and promotes it (and mark-compact reclaims it later), and the
// victim is a cache miss (slots[id], then the object). The bare table with a trivial object drops
// more (~0.25 at 100 k) than the ioctl path. An IOAS is one ~80-byte object until its io page table
// is first used (ADR 0192); 'recent' victims (short-lived replacements) stay flat at every size.
// Run from packages/core: pnpm bench (or tsc --build && node dist/object/object-table.bench.js).
// Results go to bench-results/object-table.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { IommufdObject, OBJ } from './object.js';
import { ObjectTable } from './object-table.js';

// A full collection between measurements without needing --expose-gc on the command line.
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

class Plain extends IommufdObject {
  readonly type = OBJ.IOAS;
  destroy(): void {}
}

const ROUNDS = 5;
const WINDOW_MS = 300;

/**
 * Pairs per second of `op` over about WINDOW_MS of wall-clock time, and per second of the
 * process's CPU time in the same window (every thread, so the GC's helpers count): on a shared,
 * loaded machine the wall-clock rate mostly measures the scheduler, the CPU-time rate much less.
 */
function rate(op: () => void): { wall: number; cpu: number } {
  fullGc();
  for (let i = 0; i < 1000; i++) op();
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const budget = BigInt(WINDOW_MS) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 1000; i++) op();
    n += 1000;
    elapsed = process.hrtime.bigint() - start;
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: (n * 1e9) / Number(elapsed), cpu: (n * 1e6) / (cpu.user + cpu.system) };
}

type Mode = 'random' | 'recent';

/**
 * Which object to destroy next, deterministically: 'random' over all n objects (each victim a
 * likely cache miss at 100 k, and its replacement lives long), or 'recent' among the 64 newest
 * (a VMM's usual churn). Either way the replacement takes the ID just freed (lowest free).
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

/** A context of n IOASes and one DESTROY+IOAS_ALLOC pair through ioctl(2). */
function viaIoctl(n: number, mode: Mode): () => void {
  const host = createSimHost({ iommus: [] });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const alloc = U.iommu_ioas_alloc.encode();
  for (let i = 0; i < n; i++) proc.ioctl(fd, U.IOMMU_IOAS_ALLOC, alloc);
  const destroy = U.iommu_destroy.encode();
  const next = picker(n, mode);
  return () => {
    U.iommu_destroy.set(destroy, 'id', next());
    proc.ioctl(fd, U.IOMMU_DESTROY, destroy);
    proc.ioctl(fd, U.IOMMU_IOAS_ALLOC, alloc);
  };
}

/** A bare table of n objects and one destroyById + reserve/finalize pair. */
function bareTable(n: number, mode: Mode): () => void {
  const t = new ObjectTable();
  for (let i = 0; i < n; i++) {
    const o = new Plain();
    t.reserve(o);
    t.finalize(o);
  }
  const next = picker(n, mode);
  return () => {
    t.destroyById(next());
    const o = new Plain();
    t.reserve(o);
    t.finalize(o);
  };
}

const sizes = [1_000, 10_000, 100_000];
const results: Record<string, unknown>[] = [];
for (const path of ['ioctl', 'bare'] as const) {
  for (const mode of ['recent', 'random'] as const) {
    const ops = sizes.map((n) => (path === 'ioctl' ? viaIoctl(n, mode) : bareTable(n, mode)));
    const rounds: number[][] = sizes.map(() => []);
    const cpuRounds: number[][] = sizes.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      ops.forEach((op, i) => {
        const x = rate(op);
        rounds[i]!.push(Math.round(x.wall));
        cpuRounds[i]!.push(Math.round(x.cpu));
      });
    }
    const best = rounds.map((xs) => Math.max(...xs));
    const bestCpu = cpuRounds.map((xs) => Math.max(...xs));
    sizes.forEach((n, i) => {
      const row = {
        path,
        victims: mode,
        objects: n,
        bestPairsPerSec: best[i]!,
        ratioTo1k: +(best[i]! / best[0]!).toFixed(3),
        rounds: rounds[i]!,
        bestPairsPerCpuSec: bestCpu[i]!,
        cpuRatioTo1k: +(bestCpu[i]! / bestCpu[0]!).toFixed(3),
        cpuRounds: cpuRounds[i]!,
      };
      results.push(row);
      console.log(
        `${path.padEnd(5)} DESTROY+ALLOC, ${mode.padEnd(6)} victims, ${String(n).padStart(6)} objects: ` +
          `${row.bestPairsPerSec.toLocaleString().padStart(10)} pairs/s (best of ${ROUNDS}), x${row.ratioTo1k} of 1k; ` +
          `${row.bestPairsPerCpuSec.toLocaleString().padStart(10)} pairs/CPU-s, x${row.cpuRatioTo1k} of 1k`,
      );
    });
  }
}
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/object-table.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds: ROUNDS, windowMs: WINDOW_MS, results }, null, 2) + '\n');
console.log('wrote bench-results/object-table.json');
