// A self-contained HTML report (inline SVG charts, no scripts, no external files) of a bench run.

import type { BenchReport } from './run.js';
import { xmlEscape as esc } from '../conformance/formats.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

function barChart(title: string, unit: string, bars: readonly { label: string; value: number }[]): string {
  const W = 500;
  const rowH = 28;
  const left = 230;
  const max = Math.max(1e-9, ...bars.map((b) => b.value));
  const rows = bars
    .map((b, i) => {
      const w = ((W - left - 70) * b.value) / max;
      const y = 30 + i * rowH;
      return `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(b.label)}</text><rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 10}" fill="${COLORS[i % COLORS.length]}"/><text x="${(left + w + 6).toFixed(1)}" y="${y + 17}">${fmt(b.value)}</text>`;
    })
    .join('');
  return `<svg class="chart" width="${W}" height="${40 + bars.length * rowH}" role="img" aria-label="${esc(title)}"><text x="0" y="16" class="t">${esc(title)} (${esc(unit)})</text>${rows}</svg>`;
}

function lineChart(title: string, unit: string, xLabel: string, series: readonly { name: string; points: readonly [number, number][] }[]): string {
  const W = 460;
  const H = 260;
  const L = 60;
  const B = 40;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xmax = Math.max(1, ...xs);
  const ymax = Math.max(1e-9, ...ys);
  // Log-2 x axis: the shapes double.
  const lx = (x: number) => L + ((W - L - 20) * Math.log2(Math.max(1, x))) / Math.max(1, Math.log2(xmax));
  const ly = (y: number) => H - B - ((H - B - 50) * y) / ymax;
  const grid = [0, 0.5, 1].map((f) => `<line x1="${L}" x2="${W - 20}" y1="${ly(ymax * f)}" y2="${ly(ymax * f)}" class="g"/><text x="${L - 6}" y="${ly(ymax * f) + 4}" text-anchor="end">${fmt(ymax * f)}</text>`).join('');
  const ticks = [...new Set(xs)].map((x) => `<text x="${lx(x)}" y="${H - B + 16}" text-anchor="middle">${x}</text>`).join('');
  const lines = series
    .map((s, i) => {
      const c = COLORS[i % COLORS.length];
      const pts = s.points.map((p) => `${lx(p[0]).toFixed(1)},${ly(p[1]).toFixed(1)}`).join(' ');
      const dots = s.points.map((p) => `<circle cx="${lx(p[0]).toFixed(1)}" cy="${ly(p[1]).toFixed(1)}" r="3" fill="${c}"/>`).join('');
      return `<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"/>${dots}<text x="${L + i * 200}" y="34" fill="${c}">${esc(s.name)}</text>`;
    })
    .join('');
  return `<svg class="chart" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><text x="0" y="16" class="t">${esc(title)} (${esc(unit)})</text>${grid}${ticks}<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle">${esc(xLabel)}</text>${lines}</svg>`;
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (n >= 100) return n.toFixed(0);
  return n.toFixed(n >= 10 ? 1 : 2);
}

export function renderHtml(r: BenchReport): string {
  const scaling = r.workload.filter((w) => w.series === 'scaling');
  const base = scaling.filter((w) => w.devices === r.baseDevices);
  const vendors = [...new Set(scaling.map((w) => w.title))];
  const curve = (pick: (w: BenchReport['workload'][number]) => number) =>
    vendors.map((v) => ({ name: v, points: scaling.filter((w) => w.title === v).map((w) => [w.devices, pick(w)] as [number, number]) }));
  const d = r.demo;
  const ratio = (x: number | null) => (x === null ? '-' : x.toFixed(2));
  const demoRows = d.vendors
    .map((v) => `<tr><td>${esc(v.title)}</td><td>${v.bench.translations}</td><td>${v.bench.invalidationsIoctl}+${v.bench.invalidationsHwQueue}</td><td>${v.bench.faults}</td><td>${v.bench.events}</td><td>${v.countsEqual ? 'equal' : '<b class="bad">differ</b>'}</td><td>${fmt(v.demo.dmaMiBps)}</td><td>${fmt(v.bench.dmaMiBps)}</td><td>${ratio(v.ratio.dmaMiBps)}</td><td>${ratio(v.ratio.translationsPerSec)}</td><td>${ratio(v.ratio.invalidationsPerSec)}</td></tr>`)
    .join('');
  const rows = r.workload
    .map((w) => `<tr><td>${esc(w.title)}${w.series === 'demo' ? ' (demo point)' : ''}</td><td>${w.devices}</td><td>${w.viommus}</td><td>${w.pagesPerDevice}</td><td>${w.ok ? 'ok' : '<b class="bad">FAIL</b>'}</td><td>${fmt(w.dmaMiBps)}</td><td>${fmt(w.translationsPerSec)}</td><td>${fmt(w.invalidationsPerSec)}</td><td>${fmt(w.setupMs)}</td><td>${fmt(w.hostPhysicalBytes / 2 ** 20)}</td><td>${fmt(w.rssBytes / 2 ** 20)}</td></tr>`)
    .join('');
  const pkgs = r.packages.length
    ? `<h2>Package benchmarks</h2><table><tr><th>package</th><th>status</th><th>result files</th></tr>${r.packages.map((p) => `<tr><td>${esc(p.name)}</td><td>${p.ok ? 'ok' : '<b class="bad">failed</b>'} (${fmt(p.ms / 1000)} s)</td><td>${p.results.map((f) => esc(f.file)).join('<br>')}</td></tr>`).join('')}</table>`
    : '<p class="note">Package benchmarks not run (pass <code>--packages</code>).</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>viommu bench — ${esc(r.date)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #ddd;border-radius:6px;background:#fff;padding:6px}
.chart text{font-size:12px;fill:#333}.chart .t{font-weight:600}.chart .g{stroke:#eee}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.bad{color:#c00}.note{color:#666}
</style></head><body>
<h1>viommu bench</h1>
<p>${esc(r.date)} · Node ${esc(r.node)} · ${r.cpus} CPUs · budget: ${r.rounds} rounds, ${r.pagesPerDevice} pages per device, shapes ${r.deviceCounts.join(', ')} devices · ${r.ok ? 'every workload check passed' : '<b class="bad">a workload check failed</b>'}</p>
<h2>Throughput per vendor and path (${r.baseDevices} devices)</h2>
<div class="charts">
${barChart('DMA through nested translation', 'MiB/s', base.map((w) => ({ label: w.title, value: w.dmaMiBps })))}
${barChart('Translations', 'per second', base.map((w) => ({ label: w.title, value: w.translationsPerSec })))}
${barChart('Guest invalidation via HWPT_INVALIDATE', 'per second', base.map((w) => ({ label: w.title, value: w.invalidationsPerSec })))}
${barChart('Invalidation latency', 'µs', base.map((w) => ({ label: w.title, value: w.invalidationsPerSec > 0 ? 1e6 / w.invalidationsPerSec : 0 })))}
</div>
<h2>Scaling with devices</h2>
<div class="charts">
${lineChart('Setup time (bind → nested attach)', 'ms', 'devices', curve((w) => w.setupMs))}
${lineChart('Simulated physical memory', 'MiB', 'devices', curve((w) => w.hostPhysicalBytes / 2 ** 20))}
${lineChart('Translations', 'per second', 'devices', curve((w) => w.translationsPerSec))}
</div>
<h2>The demo summary vs the bench</h2>
<p class="note">The demo configuration (${d.shape.devices} devices, ${d.shape.viommus} vIOMMUs, ${d.shape.pagesPerDevice} pages per device, ${d.rounds} rounds) measured by the bench through the function <code>viommu demo</code> calls; demo figures: ${esc(d.source)}. Counts must be equal; rate ratios (bench / demo) are run-to-run noise.</p>
<table><tr><th>vendor</th><th>translations</th><th>inval (ioctl+hwq)</th><th>faults</th><th>events</th><th>counts</th><th>demo MiB/s</th><th>bench MiB/s</th><th>ratio</th><th>xlat/s ratio</th><th>inval/s ratio</th></tr>${demoRows}</table>
<h2>All runs</h2>
<table><tr><th>vendor</th><th>devices</th><th>vIOMMUs</th><th>pages/dev</th><th>checks</th><th>DMA MiB/s</th><th>xlat/s</th><th>inval/s</th><th>setup ms</th><th>phys MiB</th><th>RSS MiB</th></tr>${rows}</table>
${pkgs}
</body></html>
`;
}
