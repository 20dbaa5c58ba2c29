#!/usr/bin/env node
// Checks every packages/backend-* has what contributing/add-new-backend.md requires:
//   - package.json: @viommu/core as a peer dependency (ADR 0002), @viommu/backend-compliance as a
//     dev dependency, the build/typecheck/lint/test scripts;
//   - README.md;
//   - src/index.ts exporting a backend factory: a function whose result has the DriverV1 members
//     (found with the TypeScript checker, so re-exports and classes implementing DriverV1 count);
//   - src/compliance-kit.ts exporting `complianceKits` without jest, listed in exports as
//     ./compliance-kit (viommu conformance loads it);
//   - a jest test (src/**/*.test.ts or test/**/*.test.ts) that calls runComplianceSuite(.
// Usage: node tooling/scripts/check-backends.mjs [--warn-only]   (exit 1 on a problem unless --warn-only)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { listWorkspacePackages, repoRoot } from './workspace.mjs';

const warnOnly = process.argv.includes('--warn-only');
const DRIVER_MEMBERS = ['apiVersion', 'name', 'probe', 'probeDevice', 'allocPagingDomain', 'attach', 'translate'];
const SCRIPTS = ['build', 'typecheck', 'lint', 'test'];

function testFiles(dir) {
  const out = [];
  const walk = (d) => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.test.ts')) out.push(p);
    }
  };
  walk(join(dir, 'src'));
  walk(join(dir, 'test'));
  return out;
}

/** Exported functions of `indexTs` whose return type has every DriverV1 member. */
function driverFactories(indexTs) {
  const program = ts.createProgram([indexTs], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(indexTs);
  const mod = source && checker.getSymbolAtLocation(source);
  if (!mod) return [];
  const found = [];
  for (const exported of checker.getExportsOfModule(mod)) {
    const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const decl = sym.valueDeclaration ?? sym.declarations?.[0];
    if (!decl || !(sym.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Variable))) continue;
    const type = checker.getTypeOfSymbolAtLocation(sym, decl);
    for (const sig of type.getCallSignatures()) {
      const props = new Set(checker.getReturnTypeOfSignature(sig).getApparentProperties().map((p) => p.name));
      if (DRIVER_MEMBERS.every((m) => props.has(m))) {
        found.push(exported.name);
        break;
      }
    }
  }
  return found;
}

const backends = listWorkspacePackages().filter((p) => p.group === 'packages' && relative(join(repoRoot, 'packages'), p.dir).startsWith('backend-'));
const backendsToCheck = backends.filter((p) => p.manifest.name !== '@viommu/backend-compliance');
let problems = 0;
for (const p of backendsToCheck) {
  const name = p.manifest.name ?? relative(repoRoot, p.dir);
  const issues = [];
  const m = p.manifest;
  if (!m.peerDependencies?.['@viommu/core']) issues.push('package.json: @viommu/core must be a peerDependency (ADR 0002)');
  if (m.dependencies?.['@viommu/core']) issues.push('package.json: @viommu/core must not be a regular dependency (one core per host, ADR 0002)');
  if (!m.devDependencies?.['@viommu/backend-compliance']) issues.push('package.json: @viommu/backend-compliance must be a devDependency');
  for (const s of SCRIPTS) if (!m.scripts?.[s]) issues.push(`package.json: no "${s}" script`);
  if (!existsSync(join(p.dir, 'README.md'))) issues.push('no README.md');
  const index = join(p.dir, 'src', 'index.ts');
  let factories = [];
  if (!existsSync(index)) issues.push('no src/index.ts');
  else {
    factories = driverFactories(index);
    if (factories.length === 0) issues.push('src/index.ts exports no backend factory (a function returning a DriverV1)');
  }
  const kit = join(p.dir, 'src', 'compliance-kit.ts');
  if (!existsSync(kit)) issues.push('no src/compliance-kit.ts (the vendor kits, jest-free, for `viommu conformance`)');
  else {
    const text = readFileSync(kit, 'utf8');
    if (!/export const complianceKits\b/.test(text)) issues.push('src/compliance-kit.ts exports no `complianceKits`');
    if (/@jest\/globals/.test(text)) issues.push('src/compliance-kit.ts imports jest (the harness runs it without jest)');
  }
  if (!m.exports?.['./compliance-kit']) issues.push('package.json: no "./compliance-kit" entry in exports');
  const compliance = testFiles(p.dir).filter((f) => readFileSync(f, 'utf8').includes('runComplianceSuite('));
  if (compliance.length === 0) issues.push('no test calls runComplianceSuite( from @viommu/backend-compliance');
  const found = factories.length ? ` (factory: ${factories.join(', ')})` : '';
  if (issues.length) {
    problems += issues.length;
    console.log(`${name}${found}:`);
    for (const i of issues) console.log(`  - ${i}`);
  } else {
    console.log(`${name}: ok${found}`);
  }
}
console.log(`check-backends: ${backendsToCheck.length} backend(s), ${problems} problem(s)`);
process.exit(problems && !warnOnly ? 1 : 0);
