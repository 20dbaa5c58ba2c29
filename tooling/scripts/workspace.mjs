// Lists the workspace's packages (packages/*, apps/*, tooling/*) with their manifests.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function listWorkspacePackages() {
  const out = [];
  for (const group of ['packages', 'apps', 'tooling']) {
    const groupDir = join(repoRoot, group);
    if (!existsSync(groupDir)) continue;
    for (const name of readdirSync(groupDir).sort()) {
      const dir = join(groupDir, name);
      const file = join(dir, 'package.json');
      if (existsSync(file)) out.push({ dir, group, manifest: JSON.parse(readFileSync(file, 'utf8')) });
    }
  }
  return out;
}
