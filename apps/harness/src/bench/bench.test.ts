import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockKit } from '../workload/kits/mock.js';
import { DEFAULT_SHAPE } from '../workload/run.js';
import { renderHtml } from './html.js';
import { runBench, type BenchReport, type DemoDocument } from './run.js';
import { runCaptured } from '../cli/capture.js';

/** Cases run real processes (a daemon, the workload): no time limit on them (the machine may be loaded). */
const NO_LIMIT = 3_600_000;

const run = runCaptured;

describe('viommu bench', () => {
  it('measures the workload over a device series, the demo configuration as a point, and renders a self-contained report', async () => {
    const r = await runBench({ kits: [mockKit], deviceCounts: [1, 2], pagesPerDevice: 2, rounds: 1 });
    expect(r.ok).toBe(true);
    expect(r.workload.map((w) => [w.series, w.devices])).toEqual([['scaling', 1], ['scaling', 2], ['demo', DEFAULT_SHAPE.devices]]);
    for (const w of r.workload) expect(w.translationsPerSec).toBeGreaterThan(0);
    // Without --against, the demo figures come from the demo's own function, run just before.
    expect(r.demo.shape).toEqual(DEFAULT_SHAPE);
    expect(r.demo.vendors.map((v) => [v.vendor, v.countsEqual])).toEqual([['mock', true]]);
    expect(r.demo.vendors[0]!.ratio.dmaMiBps).toBeGreaterThan(0);
    const html = renderHtml(r);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg /g)!.length).toBe(7);
    expect(html).not.toMatch(/<script|<link |src="http/);
    expect(html).toContain('selftest mock');
    expect(html).toContain('<h2>The demo summary vs the bench</h2>');
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
  }, NO_LIMIT);

  it('records, per vendor, the same counts as the demo summary of the same configuration (viommu bench --against demo.json)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'viommu-bench-test-'));
    const demo = await run(['demo', '--json', '--vendor', 'mock,smmuv3', '--devices', '3', '--viommus', '2', '--pages', '3', '--rounds', '1']);
    expect(demo.code).toBe(0);
    writeFileSync(join(dir, 'demo.json'), demo.out);
    const doc = JSON.parse(demo.out) as DemoDocument;

    const b = await run(['bench', '--vendor', 'mock,smmuv3', '--devices', '1', '--pages', '1', '--rounds', '1', '--against', join(dir, 'demo.json'), '--out', dir]);
    expect(b.code).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8')) as BenchReport;
    // The bench measured the demo's configuration, not its own default.
    expect(report.demo.shape).toEqual(doc.shape);
    expect(report.demo.rounds).toBe(1);
    expect(report.demo.source).toBe(join(dir, 'demo.json'));
    for (const v of doc.vendors) {
      const rec = report.demo.vendors.find((x) => x.vendor === v.vendor)!;
      const c = v.counters;
      // The summary table's counts, as the demo printed them, equal what the bench recorded.
      expect(rec.bench).toEqual(expect.objectContaining({
        translations: c.translations, invalidationsIoctl: c.invalidations.ioctl, invalidationsHwQueue: c.invalidations.hwQueue,
        staleObserved: c.staleObserved, faults: c.faults, events: c.events,
      }));
      expect(rec.countsEqual).toBe(true);
      expect(rec.demo.dmaMiBps).toBe(v.throughput.dmaMiBps);
      const pointCounts = report.workload.find((w) => w.series === 'demo' && w.vendor === v.vendor)!.counts;
      expect(pointCounts.translations).toBe(c.translations);
    }
    // SMMUv3 + CMDQV exercises every count but faults (ioctl invalidations: 3 in the staleness check, 3 in the one timed pass).
    expect(doc.vendors.find((v) => v.vendor === 'smmuv3')!.counters).toEqual(expect.objectContaining({ events: 3, invalidations: { ioctl: 6, hwQueue: 3 } }));
    expect(b.out).toMatch(/demo configuration \(3 devices, 2 vIOMMUs, 3 pages per device, 1 rounds\)/);
    expect(b.out).toMatch(/ARM SMMUv3 \+ Tegra241 CMDQV\s+\d+\s+6\+3\s+0\s+3\s+equal/);
  }, NO_LIMIT);

  it('fails when the demo figures do not match what it measures, and refuses a file that is not a demo', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'viommu-bench-test-'));
    const demo = JSON.parse((await run(['demo', '--json', '--vendor', 'mock', '--devices', '1', '--pages', '1', '--rounds', '1'])).out) as DemoDocument;
    const forged = { ...demo, vendors: demo.vendors.map((v) => ({ ...v, counters: { ...v.counters, translations: v.counters.translations + 1 } })) };
    writeFileSync(join(dir, 'forged.json'), JSON.stringify(forged));
    const b = await run(['bench', '--vendor', 'mock', '--devices', '1', '--pages', '1', '--rounds', '1', '--against', join(dir, 'forged.json'), '--out', dir]);
    expect(b.code).toBe(1);
    expect(b.out).toContain('DIFFER');
    writeFileSync(join(dir, 'other.json'), '{"command":"conformance"}');
    expect((await run(['bench', '--against', join(dir, 'other.json')])).code).toBe(2);
  }, NO_LIMIT);
});
