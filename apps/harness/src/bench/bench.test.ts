import { describe, expect, it } from '@jest/globals';
import { mockKit } from '../workload/kits/mock.js';
import { renderHtml } from './html.js';
import { runBench } from './run.js';

describe('viommu bench', () => {
  it('measures the workload over a device series and renders a self-contained report', async () => {
    const r = await runBench({ kits: [mockKit], deviceCounts: [1, 2], pagesPerDevice: 2, rounds: 1 });
    expect(r.ok).toBe(true);
    expect(r.workload.map((w) => w.devices)).toEqual([1, 2]);
    for (const w of r.workload) expect(w.translationsPerSec).toBeGreaterThan(0);
    const html = renderHtml(r);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg /g)!.length).toBe(7);
    expect(html).not.toMatch(/<script|<link |src="http/);
    expect(html).toContain('selftest mock');
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
  });
});
