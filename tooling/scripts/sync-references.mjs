#!/usr/bin/env node
// Keeps each package's tsconfig "references" equal to the workspace packages it depends on,
// so `tsc --build` stays incremental and correct. --check only reports (exit 1 on drift).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { listWorkspacePackages } from './workspace.mjs';

const check = process.argv.includes('--check');
const all = listWorkspacePackages();
const byName = new Map(all.map((p) => [p.manifest.name, p]));
let drift = 0;
for (const p of all) {
  const tsconfigPath = join(p.dir, 'tsconfig.json');
  if (!existsSync(tsconfigPath)) continue;
  const tsconfig = JSON.parse(readFileSync(tsconfigPath, 'utf8'));
  const deps = { ...p.manifest.dependencies, ...p.manifest.peerDependencies, ...p.manifest.devDependencies, ...p.manifest.optionalDependencies };
  const want = Object.keys(deps)
    .map((n) => byName.get(n))
    .filter((d) => d && existsSync(join(d.dir, 'tsconfig.json')))
    .map((d) => ({ path: relative(p.dir, d.dir) }))
    .sort((a, b) => a.path.localeCompare(b.path));
  const have = JSON.stringify(tsconfig.references ?? []);
  if (have === JSON.stringify(want)) continue;
  drift += 1;
  if (check) console.log(`${p.manifest.name}: tsconfig references ${have} should be ${JSON.stringify(want)}`);
  else writeFileSync(tsconfigPath, JSON.stringify({ ...tsconfig, references: want }, null, 2) + '\n');
}
if (check && drift) process.exit(1);
