#!/usr/bin/env node
// Runs scenario modules on one target and reports case by case.
//   node runner.mjs --target native|sim --module PATH [--module PATH...] [--filter REGEX]
//                   [--case-timeout SECONDS] [--json OUT]
// A scenario module exports `scenarios`: [{ name, run(process) -> Outcome | void }] where Outcome is
// { status: 'pass' } | { status: 'skip', reason } | { status: 'fail', message } (the shape of
// @viommu/backend-mock and @viommu/native's smoke set). Each case gets a fresh process:
// `openNativeProcess()` on the real kernel, `createSimHost().spawn()` on the simulator.
// Prints one line per case and then "N passed, N failed, N skipped"; exit 1 if any failed.
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function parseArgs(argv) {
  const opts = { target: 'native', modules: [], filter: undefined, caseTimeout: 300, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--target') opts.target = next();
    else if (a === '--module') opts.modules.push(next());
    else if (a === '--filter') opts.filter = new RegExp(next());
    else if (a === '--case-timeout') opts.caseTimeout = Number(next());
    else if (a === '--json') opts.json = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!['native', 'sim'].includes(opts.target)) throw new Error(`--target must be native or sim, not ${opts.target}`);
  if (opts.modules.length === 0) opts.modules.push('packages/native/dist/smoke.js');
  return opts;
}

/** A process factory for the target, plus how to dispose of a process after its case. */
async function targetOf(name) {
  if (name === 'native') {
    const native = await import(pathToFileURL(resolve(repo, 'packages/native/dist/index.js')).href);
    native.openNativeProcess(); // fails early, with the reason, if /dev/iommu cannot be used
    return { spawn: () => native.openNativeProcess({ checkDevice: false }), dispose: (p) => p.dispose() };
  }
  const core = await import(pathToFileURL(resolve(repo, 'packages/core/dist/index.js')).href);
  if (typeof core.createSimHost !== 'function') throw new Error('@viommu/core (dist) has no createSimHost yet');
  return { spawn: () => core.createSimHost().spawn(), dispose: () => {} };
}

async function loadScenarios(path) {
  const mod = await import(pathToFileURL(resolve(repo, path)).href);
  const list = mod.scenarios ?? mod.default;
  if (!Array.isArray(list)) throw new Error(`${path} exports no \`scenarios\` array`);
  return list;
}

function describeError(e) {
  if (e instanceof Error) return `${typeof e.code === 'string' ? `${e.code}: ` : ''}${e.message}`;
  return String(e);
}

/** Normalises whatever a case returned (or threw) into an outcome. */
async function runCase(scenario, process, timeoutS) {
  let timer;
  const watchdog = new Promise((resolvePromise) => {
    timer = setTimeout(() => resolvePromise({ status: 'fail', message: `no result after ${timeoutS} s` }), timeoutS * 1000);
  });
  try {
    const result = await Promise.race([Promise.resolve().then(() => scenario.run(process)), watchdog]);
    if (result && typeof result === 'object' && ['pass', 'skip', 'fail'].includes(result.status)) return result;
    return { status: 'pass' };
  } catch (e) {
    return { status: 'fail', message: describeError(e) };
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const target = await targetOf(opts.target);
  const results = [];
  const started = Date.now();
  let n = 0;
  for (const path of opts.modules) {
    for (const scenario of await loadScenarios(path)) {
      if (opts.filter && !opts.filter.test(scenario.name)) continue;
      const proc = target.spawn();
      const outcome = await runCase(scenario, proc, opts.caseTimeout);
      try {
        target.dispose(proc);
      } catch (e) {
        console.log(`# dispose after ${scenario.name}: ${describeError(e)}`);
      }
      n += 1;
      results.push({ name: scenario.name, module: path, ...outcome });
      const why = outcome.status === 'skip' ? ` # SKIP ${outcome.reason}` : outcome.status === 'fail' ? ` # ${outcome.message}` : '';
      console.log(`${outcome.status === 'fail' ? 'not ok' : 'ok'} ${n} ${scenario.name}${why}`);
    }
  }
  const count = (s) => results.filter((r) => r.status === s).length;
  const summary = { passed: count('pass'), failed: count('fail'), skipped: count('skip') };
  const line = `${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`;
  const report = { target: opts.target, kernel: release(), node: process.version, seconds: (Date.now() - started) / 1000, ...summary, line, results };
  if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 1));
  console.log(`${opts.target}: ${line}`);
  process.exitCode = summary.failed ? 1 : 0;
}

main().catch((e) => {
  console.error(`runner: ${e?.stack ?? e}`);
  process.exitCode = 2;
});
