// The `viommu` command: exit codes, help, plain output without a TTY, and --json that parses and
// carries verified data. Most cases call main() in-process; one spawns the built bin as users run it.
import { describe, expect, it, beforeAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { detectTerm } from './term.js';
import { vendorKits } from '../workload/kits/index.js';
import { runCaptured } from './capture.js';


const run = runCaptured;

describe('viommu', () => {
  it('prints help with exit 0, and a usage error with exit 2', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/Commands:[\s\S]*demo[\s\S]*conformance[\s\S]*bench/);
    expect((await run([])).code).toBe(2);
    const bad = await run(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("unknown command 'frobnicate'");
    for (const cmd of ['demo', 'conformance', 'bench']) {
      const h = await run([cmd, '--help']);
      expect([cmd, h.code]).toEqual([cmd, 0]);
      expect(h.out).toContain(`viommu ${cmd}`);
    }
    expect((await run(['demo', '--devices'])).code).toBe(2);
    expect((await run(['demo', '--devices', 'many'])).code).toBe(2);
    expect((await run(['demo', '--vendor', 'sparc'])).err).toContain("unknown vendor 'sparc'");
  });

  it('demo --json reports verified data per vendor', async () => {
    const r = await run(['demo', '--json', '--devices', '2', '--pages', '3', '--rounds', '1']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { ok: boolean; vendors: { vendor: string; ok: boolean; checks: { name: string; ok: boolean; detail: string }[]; counters: { translations: number } }[] };
    expect(doc.ok).toBe(true);
    // Every registered vendor kit runs, in registration order.
    expect(doc.vendors.map((v) => v.vendor)).toEqual(vendorKits.map((k) => k.id));
    for (const v of doc.vendors) {
      expect(v.ok).toBe(true);
      expect(v.checks.find((c) => c.name.startsWith('DMA reads'))).toEqual(expect.objectContaining({ ok: true, detail: '6 pages verified' }));
      expect(v.counters.translations).toBeGreaterThan(6);
    }
  });

  it('demo prints plain progress lines and the summary table without a TTY', async () => {
    const r = await run(['demo', '--vendor', 'smmuv3', '--devices', '2', '--pages', '2', '--rounds', '1']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('[smmuv3] translate\n');
    expect(r.err).not.toContain('\u001b');
    expect(r.out).not.toContain('\u001b');
    expect(r.out).toMatch(/ARM SMMUv3 \+ Tegra241 CMDQV\s+12\/12/);
    expect(r.out).toContain('checks passed on 1 vendors');
  });

  it('honours NO_COLOR and CI', () => {
    expect(detectTerm({ isTTY: true }, {}).color).toBe(true);
    expect(detectTerm({ isTTY: true }, { NO_COLOR: '1' }).color).toBe(false);
    expect(detectTerm({ isTTY: true }, { CI: 'true' }).live).toBe(false);
    expect(detectTerm({ isTTY: false }, {}).live).toBe(false);
  });

  describe('the built bin', () => {
    const root = join(__dirname, '..', '..');
    beforeAll(() => {
      execFileSync(join(root, '..', '..', 'node_modules', '.bin', 'tsc'), ['--build'], { cwd: root, stdio: 'inherit' });
    });

    it('exits 0 on demo and 2 on a bad option, with parseable --json', () => {
      const ok = spawnSync(process.execPath, ['dist/cli.js', 'demo', '--json', '--devices', '1', '--pages', '1', '--rounds', '1'], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
      expect(ok.status).toBe(0);
      expect((JSON.parse(ok.stdout) as { ok: boolean }).ok).toBe(true);
      const bad = spawnSync(process.execPath, ['dist/cli.js', 'demo', '--nope'], { cwd: root, encoding: 'utf8' });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('unknown option --nope');
    });
  });
});
