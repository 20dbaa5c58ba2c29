import { describe, expect, it } from '@jest/globals';
import type { vtd } from '@viommu/backend-vtd';
import { smmuv3Kit } from '@viommu/backend-smmuv3-cmdqv/compliance-kit';
import { vtdKit } from '@viommu/backend-vtd/compliance-kit';
import type { NoViommuKit } from '@viommu/backend-compliance/testing';
import { COMPLIANCE_VENDORS, complianceCaseNames, runComplianceVendor } from './compliance.js';
import { compare, tally, toJunit, toTap, xmlEscape, type CaseResult } from './formats.js';
import { runCaptured } from '../cli/capture.js';

/** Cases run real processes (a daemon, the workload): no time limit on them (the machine may be loaded). */
const NO_LIMIT = 3_600_000;

const cases: CaseResult[] = [
  { name: 'iommufd.simple_close', suite: 'iommufd', status: 'pass', ms: 1 },
  { name: 'iommufd_ioas.no_domain.dmabuf_revoke', suite: 'iommufd_ioas', status: 'skip', message: 'revocation # not modelled', ms: 0 },
  { name: 'iommufd.cmd_length', suite: 'iommufd', status: 'fail', message: 'expected EINVAL, got <ok> & "more"', ms: 2 },
];

const run = runCaptured;

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
  }, NO_LIMIT);

  it('gives each case a fresh simulated host: the huge-page dirty-tracking cases pass after others ran', async () => {
    // On one shared host the physical layout earlier cases leave breaks their huge-page alignment.
    const r = await run(['conformance', '--cases', 'selftest', '--filter', 'iommufd_dirty_tracking.domain_dirty64M', '--json']);
    const doc = JSON.parse(r.out) as { runs: { failed: number; cases: { name: string; status: string }[] }[] };
    const cases = doc.runs[0]!.cases;
    expect(cases.map((c) => c.name)).toContain('iommufd_dirty_tracking.domain_dirty64M_huge.get_dirty_bitmap_no_clear');
    expect(cases.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(r.code).toBe(0);
  }, NO_LIMIT);

  it('JUnit and TAP through the command; usage errors exit 2; an unavailable target exits 4', async () => {
    const j = await run(['conformance', '--filter', 'iommufd.simple_close', '--format', 'junit']);
    expect(j.code).toBe(0);
    expect(j.out).toContain('<testcase classname="sim.iommufd" name="iommufd.simple_close"');
    const t = await run(['conformance', '--filter', 'iommufd.simple_close', '--format', 'tap']);
    expect(t.out).toBe('TAP version 13\n1..1\nok 1 - sim: iommufd.simple_close\n');
    expect((await run(['conformance', '--format', 'xml'])).code).toBe(2);
    expect((await run(['conformance', '--compare', 'sim'])).code).toBe(2);
    const d = await run(['conformance', '--target', 'daemon', '--socket', '/nonexistent/viommud.sock']);
    expect(d.code).toBe(4);
    expect(d.err).toContain('target daemon is not available: daemon: no socket at /nonexistent/viommud.sock');
    expect((await run(['conformance', '--cases', 'some'])).code).toBe(2);
    expect((await run(['conformance', '--compare', 'sim,sim'])).code).toBe(2);
    expect((await run(['conformance', '--socket', '/tmp/x.sock'])).err).toContain('--socket and --shared-host are for the daemon target');
  }, NO_LIMIT);
});

describe('the compliance flows as conformance cases', () => {
  it('has every vendor backend\'s cases, named <vendor>/<kit> compliance: <group> › <test> as jest names them', () => {
    const names = COMPLIANCE_VENDORS.map((v) => complianceCaseNames(v));
    expect(COMPLIANCE_VENDORS.map((v) => v.id)).toEqual(['mock', 'smmuv3', 'vtd', 'amd']);
    // The selftest mock, SMMUv3 with and without CMDQV, VT-d (no vIOMMU) and AMD-Vi (no invalidation).
    expect(names.map((n) => n.length)).toEqual([18, 33, 14, 15]);
    expect(names[1]).toContain('smmuv3/ARM SMMUv3 + Tegra241 CMDQV compliance: the nested flow (spec 9.4) › allocates HW queues on guest RAM in ascending index order and tears them down in reverse');
    expect(names[2]).toContain('vtd/Intel VT-d compliance: fail_nth › unwinds every injected failure of the nested flow with an errno and releases every object and frame');
    expect(names.flat().every((n) => /^(mock|smmuv3|vtd|amd)\/[^/]+ compliance: [^›]+ › .+$/.test(n))).toBe(true);
    expect(complianceCaseNames(COMPLIANCE_VENDORS[2]!, 'vtd/Intel VT-d compliance: the driver')).toHaveLength(3);
  });

  it('runs the cases in-process: a broken unit fails the staleness case with what the check saw', async () => {
    // A VT-d unit that reports user invalidations handled and flushes nothing.
    const broken: NoViommuKit = {
      ...vtdKit,
      createHost() {
        const made = vtdKit.createHost();
        (made.host.driver('dmar0') as ReturnType<typeof vtd>).invalidateUser = () => undefined;
        return made;
      },
    };
    const seen: string[] = [];
    const got = await runComplianceVendor({ id: 'vtd', kits: [broken] }, { filter: 'the nested flow', onCase: (c) => seen.push(c.name) });
    expect(seen).toEqual(got.map((c) => c.name));
    const stale = got.find((c) => c.name.includes('keeps the old translation until the guest invalidates'))!;
    expect(stale).toMatchObject({ suite: 'compliance.vtd', status: 'fail' });
    expect(stale.message).toContain('DMA after the guest invalidated: expected "new page", got "old page"');
    // It handles every entry, the bad one too; the rest of the flow holds on that unit.
    const bad = got.find((c) => c.name.includes('reports how many entries it handled when one is bad'))!;
    expect(bad.message).toContain('HWPT_INVALIDATE of a batch with a bad entry: expected "EOPNOTSUPP", got "ok"');
    expect(got.filter((c) => c.status !== 'pass').map((c) => c.name)).toEqual([stale.name, bad.name]);
  }, NO_LIMIT);

  it('lists without running, and reports a kit the suite refuses as one failed case', async () => {
    const never: NoViommuKit = { ...vtdKit, createHost: () => { throw new Error('listed cases must not run'); } };
    const listed = await runComplianceVendor({ id: 'vtd', kits: [never] }, { listOnly: 'not here' });
    expect(listed).toHaveLength(14);
    expect(listed.every((c) => c.status === 'skip' && c.message === 'not here')).toBe(true);
    const both = { ...smmuv3Kit, refresh: { what: 'nothing', apply: () => { throw new Error('unreachable'); } } };
    const refused = await runComplianceVendor({ id: 'smmuv3', kits: [both] });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ name: 'smmuv3/(compliance suite)', status: 'fail' });
    expect(refused[0]!.message).toContain('kit ARM SMMUv3: give exactly one of invalidation and refresh');
  });

  it("runs a vendor's compliance suite on the simulator, one case per test, in every output format", async () => {
    const r = await run(['conformance', '--cases', 'compliance', '--filter', 'mock/', '--json']);
    const doc = JSON.parse(r.out) as { runs: { passed: number; failed: number; cases: { name: string; suite: string; status: string }[] }[] };
    const cases = doc.runs[0]!.cases;
    // The selftest mock kit: driver interface (3), nested flow, hostile input and fail_nth.
    expect(cases.length).toBeGreaterThan(12);
    expect(cases.every((c) => c.name.startsWith('mock/selftest mock compliance: ') && c.suite === 'compliance.mock')).toBe(true);
    expect(cases.map((c) => c.name)).toContain('mock/selftest mock compliance: the driver interface › is a DriverV1 the core accepts');
    expect(doc.runs[0]!.failed).toBe(0);
    expect(doc.runs[0]!.passed).toBe(cases.length);
    expect(r.code).toBe(0);
    const one = 'mock/selftest mock compliance: the driver interface › is a DriverV1 the core accepts';
    const tap = await run(['conformance', '--cases', 'compliance', '--filter', one, '--format', 'tap']);
    expect(tap.out).toBe(`TAP version 13\n1..1\nok 1 - sim: ${one}\n`);
    const junit = await run(['conformance', '--cases', 'compliance', '--filter', one, '--format', 'junit']);
    expect(junit.out).toContain(`<testcase classname="sim.compliance.mock" name="${one}"`);
  }, NO_LIMIT);
});
