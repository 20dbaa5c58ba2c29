#!/usr/bin/env node
// Compares runner reports case by case: a run on the real kernel against baselines.
//   node compare.mjs KERNEL.json [--native NATIVE.json] [--sim SIM.json] [--table TABLE_OUT]
// KERNEL.json is the run under test: the scenarios through @viommu/native in-process (suites
// selftest, fail_nth), or through viommud's native backend (suite daemon). Baselines: --native, the
// same cases in-process on the same kernel in the same boot (for the daemon suite); --sim, the
// simulator. Prints the result lines and every case whose status differs from a baseline; writes
// the full table to TABLE_OUT if given. A case the run under test skipped because its target lacks
// an optional member of the Process contract (Node.js cannot fork; the daemon has no fail-nth
// control) is environment-bound, not a difference: it is listed as ENV with its reason. A case the
// run deferred (runner --defer: not run there, for its cost) is listed as DEFER. Exit 0
// only when the run under test has no failure and every other case agrees with every baseline.
import { readFileSync, writeFileSync } from 'node:fs';

const [kernelPath, ...rest] = process.argv.slice(2);
const option = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const load = (path) => (path ? JSON.parse(readFileSync(path, 'utf8')) : undefined);
const kernel = load(kernelPath);
const baselines = [
  ['native', load(option('--native'))],
  ['sim', load(option('--sim'))],
].filter(([, report]) => report !== undefined);
const tablePath = option('--table');

const note = (r) => (r ? (r.status === 'pass' ? 'pass' : `${r.status}: ${r.reason ?? r.message}`) : 'not run');
const targetLacks = (r) => r.status === 'skip' && /this target does not offer/.test(r.reason ?? '');
const label = (name) => `${name}:`.padEnd(8);
const byName = baselines.map(([name, report]) => [name, new Map(report.results.map((r) => [r.name, r]))]);
const counts = new Map(baselines.map(([name]) => [name, { same: 0, differ: 0, env: 0, deferred: 0 }]));
const rows = [];
for (const k of kernel.results) {
  let mark = 'same ';
  const lines = [`        ${label(kernel.target === 'sim' ? 'sim' : kernel.target === 'daemon' ? 'daemon' : 'kernel')}${note(k)}`];
  for (const [name, map] of byName) {
    const b = map.get(k.name);
    const c = counts.get(name);
    lines.push(`        ${label(name)}${note(b)}`);
    if (k.deferred) {
      c.deferred += 1;
      mark = 'DEFER';
    } else if (b !== undefined && b.status === k.status) c.same += 1;
    else if (targetLacks(k)) {
      c.env += 1;
      if (mark === 'same ') mark = 'ENV  ';
    } else {
      c.differ += 1;
      mark = 'DIFF ';
    }
  }
  rows.push(`${mark} ${k.name}\n${lines.join('\n')}`);
}

const what = kernel.target === 'daemon' ? 'through viommud --backend native' : 'in-process (@viommu/native)';
console.log(`real kernel ${kernel.kernel}, ${what}: ${kernel.line}${kernel.seconds !== undefined ? ` in ${kernel.seconds} s` : ''}`);
for (const [name, report] of baselines) {
  const c = counts.get(name);
  console.log(`${name === 'sim' ? 'simulator' : 'in-process on the same kernel'}: ${report.line}`);
  console.log(`  per case against ${name}: ${c.same} same, ${c.differ} different, ${c.env} environment-bound${c.deferred ? `, ${c.deferred} deferred` : ''}`);
}
for (const row of rows) if (!row.startsWith('same')) console.log(row);
if (tablePath) writeFileSync(tablePath, rows.join('\n') + '\n');
const differ = [...counts.values()].reduce((a, c) => a + c.differ, 0);
process.exitCode = kernel.failed === 0 && differ === 0 ? 0 : 1;
