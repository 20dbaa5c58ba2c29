// `viommu bench`: the workload at a fixed budget and (with --packages) every package's benchmarks;
// JSON and a self-contained HTML report in --out (default apps/harness/bench-results/).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderHtml } from '../bench/html.js';
import { runBench, type BenchReport, type DemoDocument } from '../bench/run.js';
import { UsageError, optionHelp, parseArgs, type OptionSpec } from './args.js';
import { workloadArgs, progressPrinter } from './demo.js';
import { EXIT_CHECK_FAILED, EXIT_OK, type Io } from './io.js';
import { table, type Term } from './term.js';

const appRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const options: Record<string, OptionSpec> = {
  vendor: { type: 'string', help: 'comma-separated vendors (default: all)' },
  devices: { type: 'string', help: 'device counts of the scaling series (default 1,4,16,64)' },
  pages: { type: 'number', help: 'pages per device (default 64)' },
  rounds: { type: 'number', help: 'throughput passes per run (default 4)' },
  packages: { type: 'boolean', help: "also run every package's own bench script (slow)" },
  against: { type: 'string', help: 'a `viommu demo --json` file: compare its figures with the bench\'s run of its configuration' },
  out: { type: 'string', help: 'output directory (default apps/harness/bench-results)' },
  json: { type: 'boolean', help: 'print the JSON report on stdout too' },
  help: { type: 'boolean', help: 'show this help' },
};

export const benchHelp = `viommu bench — benchmarks at a fixed budget sized for a 2-core machine, with an HTML report

Runs the demo workload on every vendor over a doubling series of device counts (throughput of DMA
through nested translation, translations/s, HWPT_INVALIDATE rate and latency, setup time, memory),
then the demo's own configuration through the function \`viommu demo\` calls, and compares it per
vendor with the demo's figures: counts must be equal, rates within run-to-run noise (ratio ~1).
The demo figures come from --against (a \`viommu demo --json\` file, whose configuration is then
the one measured) or, without it, from the demo's function run by the bench just before. Optionally
every package's own benchmarks. Writes bench.json and report.html.

Usage: viommu bench [options]

${optionHelp(options)}

Exit codes: 0 ok, 1 a workload check or package bench failed, 2 usage error, 3 internal error.`;

export async function bench(argv: readonly string[], io: Io, term: Term): Promise<number> {
  const { values, positionals } = parseArgs(argv, options);
  if (values.help) {
    io.out(benchHelp);
    return EXIT_OK;
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const { kits } = workloadArgs({ vendor: values.vendor });
  const deviceCounts = typeof values.devices === 'string' ? values.devices.split(',').map(Number) : [1, 4, 16, 64];
  if (deviceCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError('--devices takes positive integers, e.g. 1,4,16');
  const pages = typeof values.pages === 'number' ? values.pages : 64;
  const rounds = typeof values.rounds === 'number' ? values.rounds : 4;
  if (pages < 1 || rounds < 1) throw new UsageError('--pages and --rounds must be at least 1');
  let against: { source: string; doc: DemoDocument } | undefined;
  if (typeof values.against === 'string') {
    let doc: DemoDocument;
    try {
      doc = JSON.parse(readFileSync(values.against, 'utf8')) as DemoDocument;
    } catch (e) {
      throw new UsageError(`--against: cannot read ${values.against}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (doc.command !== 'demo' || !Array.isArray(doc.vendors) || !doc.shape) throw new UsageError(`--against: ${values.against} is not the output of viommu demo --json`);
    against = { source: values.against, doc };
  }
  const p = progressPrinter(io, term);
  const report = await runBench({
    ...(against ? { against } : {}),
    kits, deviceCounts, pagesPerDevice: pages, rounds, progress: p.onProgress,
    ...(values.packages ? { packages: { repoRoot: resolve(appRoot, '..', '..') } } : {}),
  });
  p.end();
  const out = typeof values.out === 'string' ? resolve(values.out) : join(appRoot, 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, 'report.html'), renderHtml(report));
  if (values.json) io.out(JSON.stringify(report, null, 2));
  else {
    for (const w of report.workload.filter((x) => x.series === 'scaling')) {
      io.out(`${w.title.padEnd(28)} ${String(w.devices).padStart(5)} devices  ${w.dmaMiBps.toFixed(1).padStart(8)} MiB/s  ${Math.round(w.translationsPerSec).toString().padStart(8)} xlat/s  setup ${w.setupMs.toFixed(0).padStart(6)} ms  ${w.ok ? 'ok' : 'FAIL'}`);
    }
    io.out('');
    io.out(demoTable(report.demo));
    io.out(`wrote ${join(out, 'bench.json')} and ${join(out, 'report.html')}`);
  }
  return report.ok ? EXIT_OK : EXIT_CHECK_FAILED;
}

const r2 = (x: number | null) => (x === null ? '-' : x.toFixed(2));

/** Per vendor: the demo summary's counts and rates next to the bench's measurement of the same configuration. */
export function demoTable(d: BenchReport['demo']): string {
  const s = d.shape;
  const head = `demo configuration (${s.devices} devices, ${s.viommus} vIOMMUs, ${s.pagesPerDevice} pages per device, ${d.rounds} rounds); demo figures: ${d.source}`;
  const rows = d.vendors.map((v) => [
    v.title,
    String(v.bench.translations),
    `${v.bench.invalidationsIoctl}+${v.bench.invalidationsHwQueue}`,
    String(v.bench.faults),
    String(v.bench.events),
    v.countsEqual ? 'equal' : `DIFFER (demo ${v.demo.translations}/${v.demo.invalidationsIoctl}+${v.demo.invalidationsHwQueue}/${v.demo.faults}/${v.demo.events})`,
    v.demo.dmaMiBps.toFixed(1),
    v.bench.dmaMiBps.toFixed(1),
    r2(v.ratio.dmaMiBps),
    r2(v.ratio.translationsPerSec),
    r2(v.ratio.invalidationsPerSec),
  ]);
  return [head, table(['vendor', 'translations', 'inval (ioctl+hwq)', 'faults', 'events', 'counts', 'demo MiB/s', 'bench MiB/s', 'ratio', 'xlat/s ratio', 'inval/s ratio'], rows, new Set([1, 2, 3, 4, 6, 7, 8, 9, 10]))].join('\n');
}
