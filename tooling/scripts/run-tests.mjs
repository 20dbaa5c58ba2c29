#!/usr/bin/env node
// The root test command: runs every package's jest suite through turbo, then prints one line
// "N passed, N failed, N skipped" summed from the JSON results each jest run wrote.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { listWorkspacePackages, repoRoot } from './workspace.mjs';

const RESULTS = 'jest-results.json';
const tested = listWorkspacePackages().filter((p) => p.manifest.scripts?.test);

// Stale results must never be counted: turbo restores them from its cache or jest rewrites them.
for (const p of tested) rmSync(join(p.dir, RESULTS), { force: true });

// lint and typecheck run with the tests: a tree that does not type-check or lint is not green.
const turbo = spawnSync(join(repoRoot, 'node_modules', '.bin', 'turbo'), ['run', 'lint', 'typecheck', 'test', '--continue', ...process.argv.slice(2)], {
  cwd: repoRoot,
  stdio: 'inherit',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
});

// Every packages/backend-* must carry the files a vendor package needs and run the compliance suite.
// After turbo: the check resolves re-exported factories through the built declarations.
const backends = spawnSync(process.execPath, [join(repoRoot, 'tooling', 'scripts', 'check-backends.mjs')], { cwd: repoRoot, stdio: 'inherit' });

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const p of tested) {
  const file = join(p.dir, RESULTS);
  if (!existsSync(file)) {
    missing.push(p.manifest.name);
    failed += 1; // a package whose jest never reported is a failure, not a silent zero
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
  skipped += r.numPendingTests + r.numTodoTests;
}
if (missing.length) console.log(`no jest results from: ${missing.join(', ')}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(turbo.status === 0 && backends.status === 0 && failed === 0 ? 0 : 1);
