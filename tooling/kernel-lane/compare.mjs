#!/usr/bin/env node
// Compares two runner reports case by case (the real kernel against the simulator).
//   node compare.mjs KERNEL.json [--sim SIM.json] [--table TABLE_OUT]
// Prints both result lines and every case whose status differs; writes the full table to
// TABLE_OUT if given. A case the kernel-side target had to skip because it lacks an optional
// member of the Process contract (Node.js cannot fork, for one) is environment-bound, not a
// difference: it is listed as ENV with its reason. Exit 0 only when the kernel run has no failure
// and every other case agrees.
import { readFileSync, writeFileSync } from 'node:fs';

const [kernelPath, ...rest] = process.argv.slice(2);
const option = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const simPath = option('--sim');
const tablePath = option('--table');
const kernel = JSON.parse(readFileSync(kernelPath, 'utf8'));
const sim = simPath ? JSON.parse(readFileSync(simPath, 'utf8')) : undefined;

const simByName = new Map((sim?.results ?? []).map((r) => [r.name, r]));
const note = (r) => (r ? (r.status === 'pass' ? 'pass' : `${r.status}: ${r.reason ?? r.message}`) : 'not run');
const rows = [];
let differ = 0;
let envBound = 0;
const targetLacks = (r) => r.status === 'skip' && /this target does not offer/.test(r.reason ?? '');
for (const k of kernel.results) {
  const s = simByName.get(k.name);
  const same = s !== undefined && s.status === k.status;
  const env = !same && targetLacks(k);
  if (env) envBound += 1;
  else if (!same) differ += 1;
  rows.push(`${same ? 'same ' : env ? 'ENV  ' : 'DIFF '} ${k.name}\n        kernel: ${note(k)}\n        sim:    ${note(s)}`);
}

console.log(`real kernel ${kernel.kernel}: ${kernel.line}`);
console.log(`simulator:  ${sim ? sim.line : 'not run'}`);
if (sim) {
  console.log(`per case: ${kernel.results.length - differ - envBound} same, ${differ} different, ${envBound} environment-bound`);
  for (const row of rows) if (!row.startsWith('same')) console.log(row);
}
if (tablePath) writeFileSync(tablePath, rows.join('\n') + '\n');
process.exitCode = kernel.failed === 0 && (!sim || differ === 0) ? 0 : 1;
