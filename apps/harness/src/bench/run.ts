// `viommu bench`: the workload at a fixed budget sized for a 2-core machine (a doubling series of
// device counts per vendor), and optionally every package's own `bench` script, into one JSON
// document and a self-contained HTML report.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { VendorKit } from '../workload/kit.js';
import { runVendor, type ProgressEvent } from '../workload/run.js';

export interface BenchReport {
  readonly date: string;
  readonly node: string;
  readonly cpus: number;
  readonly ok: boolean;
  readonly rounds: number;
  readonly pagesPerDevice: number;
  readonly deviceCounts: readonly number[];
  /** The device count the per-vendor bar charts use. */
  readonly baseDevices: number;
  readonly workload: ReadonlyArray<{
    vendor: string; title: string; devices: number; viommus: number; pagesPerDevice: number; ok: boolean;
    dmaMiBps: number; translationsPerSec: number; invalidationsPerSec: number; setupMs: number; totalMs: number;
    hostPhysicalBytes: number; rssBytes: number; failedChecks: string[];
  }>;
  readonly packages: ReadonlyArray<{ name: string; ok: boolean; ms: number; results: { file: string; data: unknown }[] }>;
}

export interface BenchOptions {
  readonly kits: readonly VendorKit[];
  readonly deviceCounts: readonly number[];
  readonly pagesPerDevice: number;
  readonly rounds: number;
  /** Run each workspace package's `bench` script too (from `repoRoot`). */
  readonly packages?: { readonly repoRoot: string };
  readonly progress?: (e: ProgressEvent | { vendor: string; phase: string; done: number; total: number }) => void;
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const workload: BenchReport['workload'][number][] = [];
  for (const kit of o.kits) {
    for (const devices of o.deviceCounts) {
      const viommus = Math.max(1, Math.min(devices, Math.round(Math.sqrt(devices))));
      const r = await runVendor(kit, { shape: { devices, viommus, pagesPerDevice: o.pagesPerDevice, guestRamBytes: 0 }, rounds: o.rounds, ...(o.progress ? { progress: o.progress } : {}) });
      workload.push({
        vendor: r.vendor, title: r.title, devices, viommus, pagesPerDevice: o.pagesPerDevice, ok: r.ok,
        dmaMiBps: r.throughput.dmaMiBps, translationsPerSec: r.throughput.translationsPerSec, invalidationsPerSec: r.throughput.invalidationsPerSec,
        setupMs: r.throughput.setupMs, totalMs: r.throughput.totalMs, hostPhysicalBytes: r.memory.hostPhysicalBytes, rssBytes: r.memory.rssBytes,
        failedChecks: r.checks.filter((c) => !c.ok).map((c) => c.name),
      });
    }
  }
  const packages = o.packages ? runPackageBenches(o.packages.repoRoot, o.progress) : [];
  return {
    date: new Date().toISOString(), node: process.version, cpus: cpus().length,
    ok: workload.every((w) => w.ok) && packages.every((p) => p.ok),
    rounds: o.rounds, pagesPerDevice: o.pagesPerDevice, deviceCounts: o.deviceCounts,
    baseDevices: o.deviceCounts[Math.min(1, o.deviceCounts.length - 1)]!, workload, packages,
  };
}

/** Each package with a `bench` script, one after another under nice (2 cores are shared), and its bench-results/*.json. */
function runPackageBenches(repoRoot: string, progress: BenchOptions['progress']): BenchReport['packages'][number][] {
  const out: BenchReport['packages'][number][] = [];
  const dir = join(repoRoot, 'packages');
  for (const name of readdirSync(dir).sort()) {
    const pj = join(dir, name, 'package.json');
    if (!existsSync(pj)) continue;
    const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { name: string; scripts?: Record<string, string> };
    if (!pkg.scripts?.bench) continue;
    progress?.({ vendor: pkg.name, phase: 'package bench', done: out.length, total: 0 });
    const t = performance.now();
    const r = spawnSync('nice', ['-n', '19', 'sh', '-c', pkg.scripts.bench], { cwd: join(dir, name), stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, CI: 'true' } });
    const resDir = join(dir, name, 'bench-results');
    const results = existsSync(resDir)
      ? readdirSync(resDir).filter((f) => f.endsWith('.json')).map((f) => {
          let data: unknown;
          try {
            data = JSON.parse(readFileSync(join(resDir, f), 'utf8'));
          } catch {
            data = null;
          }
          return { file: `packages/${name}/bench-results/${f}`, data };
        })
      : [];
    out.push({ name: pkg.name, ok: r.status === 0, ms: performance.now() - t, results });
  }
  return out;
}
