// `viommu conformance`: the scenario set against a target, as text, JSON, JUnit XML or TAP; with
// --compare A,B the per-case comparison of two targets.

import { writeFileSync } from 'node:fs';
import { compare, toJunit, toTap, type TargetRun } from '../conformance/formats.js';
import { CASE_SETS, TARGETS, TargetUnavailable, complianceUnavailableOn, pendingOn, runTarget, type CaseSet, type RunOptions, type TargetName } from '../conformance/targets.js';
import { UsageError, optionHelp, parseArgs, type OptionSpec } from './args.js';
import { EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNAVAILABLE, type Io } from './io.js';
import { table, type Term } from './term.js';

const FORMATS = ['text', 'json', 'junit', 'tap'] as const;

const options: Record<string, OptionSpec> = {
  target: { type: 'string', help: `where the cases run: ${TARGETS.join(' | ')} (default sim)` },
  compare: { type: 'string', help: 'two targets, e.g. sim,native: run both and compare case by case' },
  format: { type: 'string', help: `${FORMATS.join(' | ')} (default text)` },
  output: { type: 'string', help: 'write the formatted result to this file instead of stdout' },
  filter: { type: 'string', help: 'only cases whose name contains this (compliance cases: <vendor>/<test>)' },
  cases: { type: 'string', help: `${CASE_SETS.join(' | ')}: the selftest port, the compliance flows, or both (default all)` },
  socket: { type: 'string', help: 'daemon target: the socket of a running viommud (default: start one on a temp socket)' },
  'shared-host': { type: 'boolean', help: 'daemon target: start viommud with one simulated host for all connections (default: one per connection, as in-process)' },
  json: { type: 'boolean', help: 'same as --format json' },
  help: { type: 'boolean', help: 'show this help' },
};

export const conformanceHelp = `viommu conformance — run the conformance scenarios against a target

The scenario set is the port of the kernel's iommufd selftest (tools/testing/selftests/iommu/
iommufd.c, Linux 7.2.13) from @viommu/backend-mock, one fresh process per case (on the daemon: one
connection per case), and the compliance flows of every vendor backend (@viommu/backend-compliance
with each backend's kits, in-process), named <vendor>/<test>; those run on the simulator only and
are listed as skipped elsewhere. With --compare, a case either target cannot run is skipped on both.

Usage: viommu conformance [--target sim|native|daemon] [--compare A,B] [--format text|json|junit|tap]

${optionHelp(options)}

Exit codes: 0 no case failed (and, with --compare, no case differs), 1 a case failed or differs,
2 usage error, 3 internal error, 4 a target is not available here (e.g. no /dev/iommu).`;

function targetName(s: string): TargetName {
  if (!(TARGETS as readonly string[]).includes(s)) throw new UsageError(`unknown target '${s}' (one of ${TARGETS.join(', ')})`);
  return s as TargetName;
}

/** What `other` cannot run and `self` can: skipped on `self` too when the two are compared. */
function skipsOf(other: TargetName, self: TargetName): NonNullable<RunOptions['alsoSkip']> {
  const mine = pendingOn(self);
  const selftest = new Map([...pendingOn(other)].filter(([n]) => !mine.has(n)).map(([n, why]) => [n, `not run on ${other}: ${why}`] as const));
  const c = complianceUnavailableOn(other);
  return { selftest, ...(c !== undefined ? { compliance: `not run on ${other}: ${c}` } : {}) };
}

export async function conformance(argv: readonly string[], io: Io, term: Term): Promise<number> {
  const { values, positionals } = parseArgs(argv, options);
  if (values.help) {
    io.out(conformanceHelp);
    return EXIT_OK;
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const format = values.json ? 'json' : ((values.format as string | undefined) ?? 'text');
  if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`unknown format '${format}' (one of ${FORMATS.join(', ')})`);
  const cases = (values.cases as string | undefined) ?? 'all';
  if (!(CASE_SETS as readonly string[]).includes(cases)) throw new UsageError(`unknown case set '${cases}' (one of ${CASE_SETS.join(', ')})`);
  let names: TargetName[];
  if (typeof values.compare === 'string') {
    const parts = values.compare.split(',');
    if (parts.length !== 2) throw new UsageError('--compare takes two targets, e.g. sim,native');
    names = parts.map(targetName);
    if (names[0] === names[1]) throw new UsageError('--compare takes two different targets');
  } else {
    names = [targetName((values.target as string | undefined) ?? 'sim')];
  }

  if ((values.socket !== undefined || values['shared-host']) && !names.includes('daemon')) throw new UsageError('--socket and --shared-host are for the daemon target');
  if (values.socket !== undefined && values['shared-host']) throw new UsageError('--shared-host starts a daemon; --socket uses a running one: give one of them');
  const runs: TargetRun[] = [];
  for (const name of names) {
    const other = names.find((n) => n !== name);
    let lastShown = 0;
    try {
      runs.push(
        await runTarget(name, {
          ...(typeof values.filter === 'string' ? { filter: values.filter } : {}),
          ...(typeof values.socket === 'string' ? { socket: values.socket } : {}),
          ...(values['shared-host'] ? { sharedHost: true } : {}),
          ...(other ? { alsoSkip: skipsOf(other, name) } : {}),
          cases: cases as CaseSet,
          onCase: (c, i, total) => {
            if (term.live) {
              if (i === total || Date.now() - lastShown > 80) {
                lastShown = Date.now();
                io.err(`\r\u001b[2K${term.dim(`[${name}]`)} ${i}/${total} ${c.name}`, false);
              }
            } else if (c.status === 'fail') {
              io.err(`[${name}] FAIL ${c.name}: ${c.message ?? ''}`);
            }
          },
        }),
      );
      if (term.live) io.err('\r\u001b[2K', false);
    } catch (e) {
      if (e instanceof TargetUnavailable) {
        io.err(`viommu conformance: target ${name} is not available: ${e.message}`);
        return EXIT_UNAVAILABLE;
      }
      throw e;
    }
  }
  const cmp = runs.length === 2 ? compare(runs[0]!, runs[1]!) : undefined;
  const failed = runs.some((r) => r.failed > 0) || (cmp !== undefined && cmp.differing > 0);

  let text: string;
  if (format === 'json') {
    text = JSON.stringify({ command: 'conformance', ok: !failed, runs, ...(cmp ? { comparison: cmp } : {}) }, null, 2);
  } else if (format === 'junit') {
    text = toJunit(runs);
  } else if (format === 'tap') {
    text = toTap(runs);
  } else {
    const lines: string[] = [];
    for (const r of runs) {
      for (const c of r.cases.filter((x) => x.status === 'fail')) lines.push(`${term.red('FAIL')} ${r.target}: ${c.name} — ${c.message ?? ''}`);
      lines.push(`${term.bold(r.target)}: ${r.cases.length} cases: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (${(r.ms / 1000).toFixed(1)} s)`);
    }
    if (cmp) {
      const diff = cmp.cases.filter((c) => !c.same);
      if (diff.length) lines.push('', table(['case', cmp.targets[0], cmp.targets[1]], diff.map((c) => [c.name, c.a, c.b])));
      lines.push(`${cmp.targets.join(' vs ')}: ${cmp.cases.length - cmp.differing} cases agree, ${cmp.differing} differ`);
    }
    text = lines.join('\n');
  }
  if (typeof values.output === 'string') {
    writeFileSync(values.output, `${text}\n`);
    io.err(`wrote ${values.output}`);
  } else {
    io.out(text);
  }
  return failed ? EXIT_CHECK_FAILED : EXIT_OK;
}
