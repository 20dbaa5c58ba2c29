// `viommu bench`: the workload at a fixed budget sized for a 2-core machine (a doubling series of
// device counts per vendor), and optionally every package's own `bench` script, into one JSON
// document and a self-contained HTML report.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { VendorKit, WorkloadShape } from '../workload/kit.js';
import { DEFAULT_SHAPE, defaultRounds, runConfiguration, runVendor, type ProgressEvent, type VendorResult } from '../workload/run.js';

/** What the demo summary shows of one vendor: counts (deterministic for a configuration) and rates. */
export interface Figures {
  readonly translations: number;
  readonly invalidationsIoctl: number;
  readonly invalidationsHwQueue: number;
  readonly staleObserved: number;
  readonly faults: number;
  readonly events: number;
  readonly dmaMiBps: number;
  readonly translationsPerSec: number;
  readonly invalidationsPerSec: number;
}

const COUNTS = ['translations', 'invalidationsIoctl', 'invalidationsHwQueue', 'staleObserved', 'faults', 'events'] as const;
const RATES = ['dmaMiBps', 'translationsPerSec', 'invalidationsPerSec'] as const;

/** The part of a vendor's result (in-process, or as `viommu demo --json` printed it) the summary table shows. */
export function figuresOf(r: Pick<VendorResult, 'counters' | 'throughput'>): Figures {
  const c = r.counters;
  const t = r.throughput;
  return {
    translations: c.translations, invalidationsIoctl: c.invalidations.ioctl, invalidationsHwQueue: c.invalidations.hwQueue,
    staleObserved: c.staleObserved, faults: c.faults, events: c.events,
    dmaMiBps: t.dmaMiBps, translationsPerSec: t.translationsPerSec, invalidationsPerSec: t.invalidationsPerSec,
  };
}

/** `viommu demo --json`, as much of it as the comparison reads. */
export interface DemoDocument {
  readonly command: 'demo';
  readonly shape: WorkloadShape;
  readonly rounds: number;
  readonly vendors: ReadonlyArray<Pick<VendorResult, 'vendor' | 'title' | 'counters' | 'throughput'>>;
}

/** The demo configuration measured by the bench next to the demo's own figures, per vendor. */
export interface DemoComparison {
  /** Where the demo figures come from: a `viommu demo --json` file, or the demo's function run by the bench itself. */
  readonly source: string;
  readonly shape: WorkloadShape;
  readonly rounds: number;
  /** Every vendor's counts are equal (rates only differ by run-to-run noise). */
  readonly ok: boolean;
  readonly vendors: ReadonlyArray<{
    vendor: string; title: string; demo: Figures; bench: Figures; countsEqual: boolean;
    /** bench / demo per rate; null where the demo figure is 0 (the path is not exercised). */
    ratio: Record<(typeof RATES)[number], number | null>;
  }>;
}

export function compareWithDemo(source: string, shape: WorkloadShape, rounds: number, demo: DemoDocument['vendors'], bench: readonly VendorResult[]): DemoComparison {
  const vendors = bench.map((b) => {
    const d = demo.find((x) => x.vendor === b.vendor);
    if (!d) throw new Error(`the demo figures have no vendor ${b.vendor}`);
    const df = figuresOf(d);
    const bf = figuresOf(b);
    const ratio = Object.fromEntries(RATES.map((k) => [k, df[k] > 0 ? bf[k] / df[k] : null])) as DemoComparison['vendors'][number]['ratio'];
    return { vendor: b.vendor, title: b.title, demo: df, bench: bf, countsEqual: COUNTS.every((k) => df[k] === bf[k]), ratio };
  });
  return { source, shape, rounds, ok: vendors.every((v) => v.countsEqual), vendors };
}

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
    /** `scaling`: the device series; `demo`: the demo configuration (compared in `demo`). */
    series: 'scaling' | 'demo';
    counts: Pick<Figures, (typeof COUNTS)[number]>;
  }>;
  readonly demo: DemoComparison;
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
  /**
   * The demo figures to compare with (`viommu demo --json`, and where it came from). Without it
   * the bench runs the demo's configuration through the demo's function itself for them.
   */
  readonly against?: { readonly source: string; readonly doc: DemoDocument };
}

type WorkloadPoint = BenchReport['workload'][number];

function point(r: VendorResult, series: WorkloadPoint['series']): WorkloadPoint {
  const f = figuresOf(r);
  return {
    vendor: r.vendor, title: r.title, devices: r.shape.devices, viommus: r.shape.viommus, pagesPerDevice: r.shape.pagesPerDevice, ok: r.ok,
    dmaMiBps: r.throughput.dmaMiBps, translationsPerSec: r.throughput.translationsPerSec, invalidationsPerSec: r.throughput.invalidationsPerSec,
    setupMs: r.throughput.setupMs, totalMs: r.throughput.totalMs, hostPhysicalBytes: r.memory.hostPhysicalBytes, rssBytes: r.memory.rssBytes,
    failedChecks: r.checks.filter((c) => !c.ok).map((c) => c.name),
    series, counts: Object.fromEntries(COUNTS.map((k) => [k, f[k]])) as WorkloadPoint['counts'],
  };
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const workload: WorkloadPoint[] = [];
  for (const kit of o.kits) {
    for (const devices of o.deviceCounts) {
      const viommus = Math.max(1, Math.min(devices, Math.round(Math.sqrt(devices))));
      const r = await runVendor(kit, { shape: { devices, viommus, pagesPerDevice: o.pagesPerDevice, guestRamBytes: 0 }, rounds: o.rounds, ...(o.progress ? { progress: o.progress } : {}) });
      workload.push(point(r, 'scaling'));
    }
  }
  // The demo configuration as a point, through the function `viommu demo` calls, with its parameters.
  const shape = o.against?.doc.shape ?? DEFAULT_SHAPE;
  const rounds = o.against?.doc.rounds ?? defaultRounds(shape);
  const kits = o.against ? o.kits.filter((k) => o.against!.doc.vendors.some((v) => v.vendor === k.id)) : o.kits;
  const demoFigures = o.against?.doc.vendors ?? (await runConfiguration({ kits, shape, rounds }, o.progress));
  const measured = await runConfiguration({ kits, shape, rounds }, o.progress);
  workload.push(...measured.map((r) => point(r, 'demo')));
  const demo = compareWithDemo(o.against?.source ?? 'viommu demo\'s function, run by the bench before its own demo point', shape, rounds, demoFigures, measured);
  const packages = o.packages ? runPackageBenches(o.packages.repoRoot, o.progress) : [];
  return {
    date: new Date().toISOString(), node: process.version, cpus: cpus().length,
    ok: workload.every((w) => w.ok) && packages.every((p) => p.ok) && demo.ok,
    rounds: o.rounds, pagesPerDevice: o.pagesPerDevice, deviceCounts: o.deviceCounts,
    baseDevices: o.deviceCounts[Math.min(1, o.deviceCounts.length - 1)]!, workload, demo, packages,
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
