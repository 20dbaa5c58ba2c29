// Runs every ```ts block of README.md, so the walkthrough stays true. A block's imports of
// workspace packages are bound to the modules jest resolves (their sources); the rest is compiled
// with TypeScript's transpiler and run as an async function body (top-level await allowed).
//
// Vendor backends are optional here: they are loaded by name, and a block whose backend is not
// installed is skipped. (A backend that runs @viommu/backend-compliance cannot also be a dev
// dependency of this package without a dependency cycle; see ADR 0080.)

import { beforeAll, describe, expect, it } from '@jest/globals';
import * as core from '@viommu/core';
import * as uapi from '@viommu/uapi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import * as client from './index.js';

const modules: Record<string, unknown> = {
  '@viommu/client': client,
  '@viommu/core': core,
  '@viommu/uapi': uapi,
};
const OPTIONAL = ['@viommu/backend-smmuv3-cmdqv'];

beforeAll(async () => {
  for (const name of OPTIONAL) {
    try {
      modules[name] = (await import(name)) as unknown;
    } catch {
      // not installed: its examples are skipped
    }
  }
});

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1]!);

class MissingModule extends Error {
  constructor(readonly module: string) {
    super(module);
  }
}

/** `import { a, b as c, type T } from 'm'` / `import * as X from 'm'` -> bindings from `modules`. */
function bindImports(src: string): { prelude: string; body: string } {
  const lines: string[] = [];
  const body = src.replace(/^import\s+([\s\S]*?)\s+from\s+'([^']+)';\n/gm, (_all, what: string, from: string) => {
    if (!(from in modules)) throw new MissingModule(from);
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
      let bound: ReturnType<typeof bindImports>;
      try {
        bound = bindImports(block);
      } catch (e) {
        if (e instanceof MissingModule && OPTIONAL.includes(e.message)) {
          console.warn(`README example ${i + 1} skipped: ${e.message} is not installed`);
          return;
        }
        throw e;
      }
      const { prelude, body } = bound;
      const js = ts.transpileModule(body, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
      await new AsyncFunction('__modules', `${prelude}\n${js}`)(modules);
    });
  });
});
