// Runs every ```ts block of README.md, so the walkthrough stays true. A block's imports of
// workspace packages are bound to the modules jest resolves (their sources); the rest is compiled
// with TypeScript's transpiler and run as an async function body (top-level await allowed).

import { describe, expect, it } from '@jest/globals';
import * as smmu from '@viommu/backend-smmuv3-cmdqv';
import * as core from '@viommu/core';
import * as uapi from '@viommu/uapi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import * as client from './index.js';

const modules: Record<string, unknown> = {
  '@viommu/backend-smmuv3-cmdqv': smmu,
  '@viommu/client': client,
  '@viommu/core': core,
  '@viommu/uapi': uapi,
};

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1]!);

/** `import { a, b as c, type T } from 'm'` / `import * as X from 'm'` -> bindings from `modules`. */
function bindImports(src: string): { prelude: string; body: string } {
  const lines: string[] = [];
  const body = src.replace(/^import\s+([\s\S]*?)\s+from\s+'([^']+)';\n/gm, (_all, what: string, from: string) => {
    if (!(from in modules)) throw new Error(`README imports ${from}, which the test does not provide`);
    const m = `__modules[${JSON.stringify(from)}]`;
    const star = /^\*\s+as\s+(\w+)$/.exec(what.trim());
    if (star) lines.push(`const ${star[1]} = ${m};`);
    else {
      const names = what.replace(/[{}]/g, '').split(',').map((s) => s.trim()).filter((s) => s && !s.startsWith('type '));
      lines.push(`const { ${names.map((n) => n.replace(/\s+as\s+/, ': ')).join(', ')} } = ${m};`);
    }
    return '';
  });
  return { prelude: lines.join('\n'), body };
}

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (mods: unknown) => Promise<void>;

describe('README examples', () => {
  it('has runnable examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  blocks.forEach((block, i) => {
    const title = /^## (.*)$/gm;
    let heading = '';
    for (const m of readme.slice(0, readme.indexOf(block)).matchAll(title)) heading = m[1]!;
    it(`runs example ${i + 1} (${heading})`, async () => {
      const { prelude, body } = bindImports(block);
      const js = ts.transpileModule(body, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
      await new AsyncFunction('__modules', `${prelude}\n${js}`)(modules);
    });
  });
});
