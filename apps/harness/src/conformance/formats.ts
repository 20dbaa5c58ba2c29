// Conformance results as JUnit XML, TAP 13 and JSON: pure functions of the results.

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface CaseResult {
  /** `fixture.variant.test`, as the kselftest harness prints it. */
  readonly name: string;
  readonly suite: string;
  readonly status: CaseStatus;
  /** Failure message or skip reason. */
  readonly message?: string;
  readonly ms: number;
}

export interface TargetRun {
  readonly target: string;
  readonly cases: readonly CaseResult[];
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly ms: number;
}

export function tally(target: string, cases: readonly CaseResult[], ms: number): TargetRun {
  const count = (s: CaseStatus) => cases.filter((c) => c.status === s).length;
  return { target, cases, passed: count('pass'), failed: count('fail'), skipped: count('skip'), ms };
}

export function xmlEscape(s: string): string {
  // Characters XML 1.0 cannot carry at all are dropped; the five specials are escaped.
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export function toJunit(runs: readonly TargetRun[]): string {
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const all = runs.reduce((a, r) => ({ t: a.t + r.cases.length, f: a.f + r.failed, s: a.s + r.skipped }), { t: 0, f: 0, s: 0 });
  lines.push(`<testsuites name="viommu conformance" tests="${all.t}" failures="${all.f}" skipped="${all.s}" errors="0">`);
  for (const r of runs) {
    lines.push(`  <testsuite name="${xmlEscape(r.target)}" tests="${r.cases.length}" failures="${r.failed}" skipped="${r.skipped}" errors="0" time="${secs(r.ms)}">`);
    for (const c of r.cases) {
      const open = `    <testcase classname="${xmlEscape(`${r.target}.${c.suite}`)}" name="${xmlEscape(c.name)}" time="${secs(c.ms)}"`;
      if (c.status === 'pass') lines.push(`${open}/>`);
      else if (c.status === 'skip') lines.push(`${open}><skipped message="${xmlEscape(c.message ?? '')}"/></testcase>`);
      else lines.push(`${open}><failure message="${xmlEscape(c.message ?? '')}">${xmlEscape(c.message ?? '')}</failure></testcase>`);
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return lines.join('\n');
}

export function toTap(runs: readonly TargetRun[]): string {
  const lines = ['TAP version 13'];
  const total = runs.reduce((n, r) => n + r.cases.length, 0);
  lines.push(`1..${total}`);
  let i = 0;
  // A TAP description may not contain '#' unescaped; YAML blocks carry the failure text.
  const desc = (s: string) => s.replace(/\\/g, '\\\\').replace(/#/g, '\\#');
  for (const r of runs) {
    for (const c of r.cases) {
      i++;
      const name = desc(`${r.target}: ${c.name}`);
      if (c.status === 'pass') lines.push(`ok ${i} - ${name}`);
      else if (c.status === 'skip') lines.push(`ok ${i} - ${name} # SKIP ${(c.message ?? '').replace(/\n/g, ' ')}`);
      else {
        lines.push(`not ok ${i} - ${name}`);
        lines.push('  ---', `  message: ${JSON.stringify(c.message ?? '')}`, `  target: ${r.target}`, '  ...');
      }
    }
  }
  return lines.join('\n');
}

export interface Comparison {
  readonly targets: readonly [string, string];
  readonly cases: ReadonlyArray<{ readonly name: string; readonly a: CaseStatus | 'absent'; readonly b: CaseStatus | 'absent'; readonly same: boolean }>;
  readonly differing: number;
}

/** Per case, the outcome on each of two targets; a case differs when its status does. */
export function compare(a: TargetRun, b: TargetRun): Comparison {
  const bByName = new Map(b.cases.map((c) => [c.name, c.status] as const));
  const names = [...new Set([...a.cases.map((c) => c.name), ...b.cases.map((c) => c.name)])];
  const aByName = new Map(a.cases.map((c) => [c.name, c.status] as const));
  const cases = names.map((name) => {
    const sa: CaseStatus | 'absent' = aByName.get(name) ?? 'absent';
    const sb: CaseStatus | 'absent' = bByName.get(name) ?? 'absent';
    return { name, a: sa, b: sb, same: sa === sb };
  });
  return { targets: [a.target, b.target], cases, differing: cases.filter((c) => !c.same).length };
}
