// The compliance flows as conformance cases: each vendor backend's compliance test file (the one
// that calls runComplianceSuite(kit) from @viommu/backend-compliance) run through jest, one case
// per test the suite registers, named `<vendor>/<describe> › <test>`.
//
// Why jest and not the cases as data: the suite registers jest tests and asserts with jest's
// `expect`, and the vendor kits live in the backends' test files (not built, not exported). Until
// backend-compliance offers its cases as data (ADR 0181), jest is what runs them, exactly as each
// backend's own `pnpm test` does.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaseResult } from './formats.js';
import { APP_ROOT } from './daemon.js';

export interface ComplianceVendor {
  /** The workload's vendor id (`viommu demo --vendor`). */
  readonly id: string;
  readonly pkg: string;
}

export const COMPLIANCE_VENDORS: readonly ComplianceVendor[] = [
  { id: 'mock', pkg: '@viommu/backend-mock' },
  { id: 'smmuv3', pkg: '@viommu/backend-smmuv3-cmdqv' },
  { id: 'vtd', pkg: '@viommu/backend-vtd' },
  { id: 'amd', pkg: '@viommu/backend-amd-vi' },
];

/** The top-level describe of every test runComplianceSuite registers contains this. */
const SUITE_MARK = ' compliance: ';
const SEP = ' › ';

export function complianceSuiteName(v: ComplianceVendor): string {
  return `compliance.${v.id}`;
}

/**
 * Which vendors a `--filter` can select, and the jest test-name pattern that selects its cases
 * (names are `<vendor>/<jest full name with › between titles>`, and a filter is a substring).
 */
export function plan(filter: string | undefined): Array<{ vendor: ComplianceVendor; namePattern?: string }> {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const jestName = (s: string) => s.split(SEP).join(' ');
  const out: Array<{ vendor: ComplianceVendor; namePattern?: string }> = [];
  for (const vendor of COMPLIANCE_VENDORS) {
    if (filter === undefined || `${vendor.id}/`.includes(filter)) {
      out.push({ vendor });
      continue;
    }
    const slash = filter.indexOf('/');
    // A substring with a '/' aligns its first '/' with the separator (vendor ids have none).
    if (slash >= 0) {
      if (vendor.id.endsWith(filter.slice(0, slash))) out.push({ vendor, namePattern: `^${esc(jestName(filter.slice(slash + 1)))}` });
    } else {
      out.push({ vendor, namePattern: esc(jestName(filter)) });
    }
  }
  return out;
}

function packageDir(pkg: string): string {
  return realpathSync(join(APP_ROOT, 'node_modules', ...pkg.split('/')));
}

/** The backend's test files that call runComplianceSuite (as tooling/scripts/check-backends.mjs finds them). */
export function complianceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.test.ts') && readFileSync(p, 'utf8').includes('runComplianceSuite(')) out.push(p);
    }
  };
  walk(join(dir, 'src'));
  return out;
}

interface JestAssertion {
  ancestorTitles: string[];
  title: string;
  status: 'passed' | 'failed' | 'pending' | 'skipped' | 'todo' | 'disabled' | 'focused';
  duration?: number | null;
  failureMessages?: string[];
}

interface JestJson {
  testResults: Array<{ assertionResults: JestAssertion[]; message?: string; status?: string }>;
}

const ANSI = /\u001b\[[0-9;]*m/g;

/** Jest's assertions as cases; only those runComplianceSuite registered (a file may add its own tests). */
export function casesFromJest(vendor: ComplianceVendor, doc: JestJson, listOnly: string | undefined): CaseResult[] {
  const cases: CaseResult[] = [];
  for (const file of doc.testResults) {
    for (const a of file.assertionResults) {
      if (!a.ancestorTitles[0]?.includes(SUITE_MARK)) continue;
      const name = `${vendor.id}/${[...a.ancestorTitles, a.title].join(SEP)}`;
      const base = { name, suite: complianceSuiteName(vendor), ms: a.duration ?? 0 };
      if (listOnly !== undefined) cases.push({ ...base, status: 'skip', message: listOnly });
      else if (a.status === 'passed') cases.push({ ...base, status: 'pass' });
      else if (a.status === 'failed') cases.push({ ...base, status: 'fail', message: (a.failureMessages ?? []).join('\n').replace(ANSI, '').split('\n').slice(0, 12).join('\n') });
      else cases.push({ ...base, status: 'skip', message: `${a.status} in the suite` });
    }
  }
  return cases;
}

/** Matches no test name: jest then loads the file and reports every test as skipped, which lists them. */
const NOTHING = '^\\b\\B$';

/**
 * Runs (or, with `listOnly` set to the skip reason, only lists) one vendor's compliance cases
 * through jest in a child process, with the backend's own jest config.
 */
export async function runComplianceVendor(vendor: ComplianceVendor, opts: { namePattern?: string; listOnly?: string } = {}): Promise<CaseResult[]> {
  const dir = packageDir(vendor.pkg);
  const files = complianceFiles(dir);
  if (!files.length) return [{ name: `${vendor.id}/(compliance suite)`, suite: complianceSuiteName(vendor), status: 'fail', message: `${vendor.pkg} has no test calling runComplianceSuite(`, ms: 0 }];
  const jest = createRequire(join(APP_ROOT, 'package.json')).resolve('jest/bin/jest');
  const tmp = mkdtempSync(join(tmpdir(), 'viommu-compliance-'));
  const outFile = join(tmp, 'jest.json');
  const pattern = opts.listOnly !== undefined ? NOTHING : opts.namePattern;
  const args = [jest, '--config', join(dir, 'jest.config.cjs'), '--ci', '--silent', '--json', '--outputFile', outFile, '--runTestsByPath', ...files, ...(pattern ? ['--testNamePattern', pattern] : [])];
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
      const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: 'true', NO_COLOR: '1' } });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
      child.once('error', fail);
      child.once('close', (c) => done({ code: c, stderr }));
    });
    if (!existsSync(outFile)) {
      return [{ name: `${vendor.id}/(compliance suite)`, suite: complianceSuiteName(vendor), status: 'fail', message: `jest exited ${code} without results: ${stderr.replace(ANSI, '').trim().slice(-1500)}`, ms: 0 }];
    }
    const doc = JSON.parse(readFileSync(outFile, 'utf8')) as JestJson;
    const cases = casesFromJest(vendor, doc, opts.listOnly);
    // A file that failed to load has no assertions: say so rather than report nothing.
    const broken = doc.testResults.find((f) => f.status === 'failed' && f.assertionResults.length === 0);
    if (broken) cases.push({ name: `${vendor.id}/(compliance suite)`, suite: complianceSuiteName(vendor), status: 'fail', message: (broken.message ?? '').replace(ANSI, '').slice(0, 1500), ms: 0 });
    return cases;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
