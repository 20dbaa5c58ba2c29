import { describe, expect, it } from '@jest/globals';
import { main } from '../cli/main.js';
import type { Io } from '../cli/io.js';
import { detectTerm } from '../cli/term.js';
import { compare, tally, toJunit, toTap, xmlEscape, type CaseResult } from './formats.js';

const cases: CaseResult[] = [
  { name: 'iommufd.simple_close', suite: 'iommufd', status: 'pass', ms: 1 },
  { name: 'iommufd_ioas.no_domain.dmabuf_revoke', suite: 'iommufd_ioas', status: 'skip', message: 'revocation # not modelled', ms: 0 },
  { name: 'iommufd.cmd_length', suite: 'iommufd', status: 'fail', message: 'expected EINVAL, got <ok> & "more"', ms: 2 },
];

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const io: Io = { out: (l) => void (out += `${l}\n`), err: (l, nl = true) => void (err += nl ? `${l}\n` : l) };
  const code = await main(argv, io, detectTerm({ isTTY: false }, {}));
  return { code, out, err };
}

describe('conformance output formats', () => {
  it('JUnit XML: one testcase per case, failures and skips marked, text escaped', () => {
    const xml = toJunit([tally('sim', cases, 3)]);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    expect(xml).toContain('<testsuite name="sim" tests="3" failures="1" skipped="1" errors="0" time="0.003">');
    expect(xml.match(/<testcase /g)).toHaveLength(3);
    expect(xml).toContain('<failure message="expected EINVAL, got &lt;ok&gt; &amp; &quot;more&quot;">');
    expect(xml).toContain('<skipped message="revocation # not modelled"/>');
    // Balanced: every opened element is closed.
    const opened = (xml.match(/<(testsuites|testsuite|testcase)[ >]/g) ?? []).length;
    const closed = (xml.match(/<\/(testsuites|testsuite|testcase)>|<testcase [^>]*\/>/g) ?? []).length;
    expect(closed).toBe(opened);
    expect(xmlEscape('a\u0001b')).toBe('ab');
  });

  it('TAP 13: plan matches the cases, SKIP directive, YAML block on failure, # escaped', () => {
    const tap = toTap([tally('sim', cases, 3)]).split('\n');
    expect(tap.slice(0, 3)).toEqual(['TAP version 13', '1..3', 'ok 1 - sim: iommufd.simple_close']);
    expect(tap[3]).toBe('ok 2 - sim: iommufd_ioas.no_domain.dmabuf_revoke # SKIP revocation # not modelled');
    expect(tap[4]).toBe('not ok 3 - sim: iommufd.cmd_length');
    expect(tap.slice(5)).toEqual(['  ---', '  message: "expected EINVAL, got <ok> & \\"more\\""', '  target: sim', '  ...']);
  });

  it('compares two targets case by case', () => {
    const other = cases.map((c) => (c.status === 'fail' ? { ...c, status: 'pass' as const } : c));
    const cmp = compare(tally('sim', cases, 0), tally('native', other.slice(0, 2), 0));
    expect(cmp.differing).toBe(1);
    expect(cmp.cases.find((c) => !c.same)).toEqual({ name: 'iommufd.cmd_length', a: 'fail', b: 'absent', same: false });
  });
});

describe('viommu conformance', () => {
  it('runs the selftest port on the simulator and reports it as JSON', async () => {
    const r = await run(['conformance', '--target', 'sim', '--filter', 'iommufd.', '--json']);
    const doc = JSON.parse(r.out) as { ok: boolean; runs: { target: string; passed: number; failed: number; cases: { name: string }[] }[] };
    expect(doc.runs[0]!.target).toBe('sim');
    expect(doc.runs[0]!.cases.length).toBeGreaterThan(5);
    expect(doc.runs[0]!.cases.every((c) => c.name.includes('iommufd.'))).toBe(true);
    expect(doc.runs[0]!.passed).toBeGreaterThan(5);
    expect(r.code).toBe(doc.runs[0]!.failed === 0 ? 0 : 1);
  });

  it('JUnit and TAP through the command; usage errors exit 2; an unavailable target exits 4', async () => {
    const j = await run(['conformance', '--filter', 'iommufd.simple_close', '--format', 'junit']);
    expect(j.code).toBe(0);
    expect(j.out).toContain('<testcase classname="sim.iommufd" name="iommufd.simple_close"');
    const t = await run(['conformance', '--filter', 'iommufd.simple_close', '--format', 'tap']);
    expect(t.out).toBe('TAP version 13\n1..1\nok 1 - sim: iommufd.simple_close\n');
    expect((await run(['conformance', '--format', 'xml'])).code).toBe(2);
    expect((await run(['conformance', '--compare', 'sim'])).code).toBe(2);
    const d = await run(['conformance', '--target', 'daemon']);
    expect(d.code).toBe(4);
    expect(d.err).toContain('not available');
  });
});
