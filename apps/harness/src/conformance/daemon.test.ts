// `viommu conformance --target daemon`: a real viommud child on a temp socket, one connection per
// case; --socket for a daemon already running; --compare sim,daemon agreeing case by case.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { forkCases } from '@viommu/backend-mock';
import { APP_ROOT, startDaemon, viommudCli, type DaemonHandle } from './daemon.js';
import { runTarget } from './targets.js';
import { runCaptured } from '../cli/capture.js';

/** Cases run real processes (a daemon, the workload): no time limit on them (the machine may be loaded). */
const NO_LIMIT = 3_600_000;

const run = runCaptured;

interface Doc {
  ok: boolean;
  runs: { target: string; passed: number; failed: number; skipped: number; cases: { name: string; status: string; message?: string }[] }[];
  comparison?: { differing: number; cases: { name: string; a: string; b: string; same: boolean }[] };
}

/** viommud children of this process still running (none must outlive a run). */
function daemonChildren(): string[] {
  const ps = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes('viommud') && l.includes('cli.js'));
}

/** The 27 cases of one fixture variant: two of them fork. */
const SUBSET = 'iommufd_ioas.no_domain.';

beforeAll(() => {
  // The daemon runs from its dist: build it (and what it references), as `turbo run build --filter=@viommu/harness...` does.
  execFileSync(join(APP_ROOT, '../../node_modules/.bin/tsc'), ['--build'], { cwd: join(APP_ROOT, '../viommud'), stdio: 'inherit' });
  expect(existsSync(viommudCli())).toBe(true);
}, 600_000);

describe('viommu conformance --target daemon', () => {
  it('runs the selftest cases through a spawned viommud, skips the fork cases with the daemon tests\' reason, and stops the daemon', async () => {
    const r = await run(['conformance', '--target', 'daemon', '--cases', 'selftest', '--filter', SUBSET, '--json']);
    const doc = JSON.parse(r.out) as Doc;
    const cases = doc.runs[0]!.cases;
    expect(doc.runs[0]!.target).toBe('daemon');
    expect(cases).toHaveLength(27);
    const skipped = cases.filter((c) => c.status === 'skip');
    expect(skipped.map((c) => c.name).sort()).toEqual([`${SUBSET}fork_gone`, `${SUBSET}fork_present`]);
    for (const c of skipped) expect(c.message).toBe(forkCases.get(c.name));
    expect(cases.filter((c) => c.status === 'fail')).toEqual([]);
    expect(doc.runs[0]!.passed).toBe(25);
    expect(r.code).toBe(0);
    expect(daemonChildren()).toEqual([]);
  }, NO_LIMIT);

  it('--compare sim,daemon: a case either target cannot run is skipped on both, and no case differs', async () => {
    const r = await run(['conformance', '--compare', 'sim,daemon', '--filter', SUBSET, '--json']);
    const doc = JSON.parse(r.out) as Doc;
    expect(doc.comparison!.differing).toBe(0);
    expect(doc.comparison!.cases).toHaveLength(27);
    const [sim, daemon] = doc.runs;
    expect(sim!.passed).toBe(25);
    expect(daemon!.passed).toBe(25);
    expect(sim!.cases.find((c) => c.name === `${SUBSET}fork_gone`)).toEqual(expect.objectContaining({ status: 'skip', message: expect.stringMatching(/^not run on daemon: needs fork/) }));
    expect(r.code).toBe(0);
    const text = await run(['conformance', '--compare', 'sim,daemon', '--cases', 'selftest', '--filter', 'iommufd.']);
    expect(text.out).toContain('sim vs daemon: 11 cases agree, 0 differ');
    expect(text.code).toBe(0);
  }, NO_LIMIT);

  it('lists the compliance cases as skipped on the daemon, with why, so a comparison still agrees', async () => {
    const r = await run(['conformance', '--compare', 'sim,daemon', '--cases', 'compliance', '--filter', 'mock/', '--json']);
    const doc = JSON.parse(r.out) as Doc;
    const [sim, daemon] = doc.runs;
    expect(daemon!.cases.length).toBeGreaterThan(12);
    expect(daemon!.skipped).toBe(daemon!.cases.length);
    expect(daemon!.cases[0]!.message).toMatch(/viommud's sim host has only the selftest mock/);
    expect(sim!.cases.map((c) => c.name)).toEqual(daemon!.cases.map((c) => c.name));
    expect(sim!.cases.every((c) => c.status === 'skip' && c.message!.startsWith('not run on daemon: '))).toBe(true);
    expect(doc.comparison!.differing).toBe(0);
  }, NO_LIMIT);

  describe('--socket: a daemon someone else runs', () => {
    let d: DaemonHandle;
    beforeAll(async () => {
      d = await startDaemon({ perClientHost: true });
    }, NO_LIMIT);
    afterAll(async () => {
      await d?.stop();
    }, NO_LIMIT);

    it('runs the cases over it and leaves it running', async () => {
      const r = await run(['conformance', '--target', 'daemon', '--socket', d.socketPath, '--cases', 'selftest', '--filter', 'iommufd.', '--json']);
      const doc = JSON.parse(r.out) as Doc;
      expect(doc.runs[0]!.passed).toBe(11);
      expect(r.code).toBe(0);
      expect(daemonChildren()).toHaveLength(1);
      expect(existsSync(d.socketPath)).toBe(true);
      // Every connection (a probe, then one per case) was closed and its context torn down.
      const count = (msg: string) => d.recentLogs().filter((l) => l.includes(`"msg":"${msg}"`)).length;
      for (let i = 0; i < 500 && count('client gone, context torn down') < 12; i++) await new Promise((res) => setTimeout(res, 10));
      expect(count('client greeted')).toBe(12);
      expect(count('client gone, context torn down')).toBe(12);
    }, NO_LIMIT);
  });

  it('disposes the daemon and its clients when the run ends', async () => {
    const run1 = await runTarget('daemon', { cases: 'selftest', filter: 'iommufd.simple_close' });
    expect(run1.passed).toBe(1);
    expect(daemonChildren()).toEqual([]);
  }, NO_LIMIT);
});
