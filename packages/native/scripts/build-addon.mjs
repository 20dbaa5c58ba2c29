#!/usr/bin/env node
// Builds the N-API addon with node-gyp against this machine's own Node.js headers (nothing is
// downloaded). The addon is optional: a failed build prints why and exits 0, so `pnpm build` of
// the workspace never fails because of it; `--required` makes a failure an error (bench, lane).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const required = process.argv.includes('--required');
const output = join(pkg, 'build', 'Release', 'viommu_native.node');

function fail(why) {
  const line = `@viommu/native: addon not built (${why}); openNativeProcess() will report it as not built`;
  if (required) {
    console.error(line);
    process.exit(1);
  }
  console.warn(`warning: ${line}`);
  process.exit(0);
}

if (process.platform !== 'linux') fail(`platform ${process.platform} is not Linux`);

// Node's headers: npm's `nodedir` setting when given, else the prefix Node itself was installed
// under (Debian and the official tarballs both ship include/node there).
function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, process.env.NODEDIR, join(dirname(process.execPath), '..')];
  for (const dir of candidates) {
    if (dir && existsSync(join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  return undefined;
}

const dir = nodeDir();
if (!dir) fail('Node.js headers (include/node/node_api.h) not found; set npm_config_nodedir');

// Up to date: nothing to do (node-gyp would still spend seconds re-checking).
const sources = [join(pkg, 'binding.gyp'), ...readdirSync(join(pkg, 'src', 'addon')).map((f) => join(pkg, 'src', 'addon', f))];
if (existsSync(output)) {
  const built = statSync(output).mtimeMs;
  if (sources.every((f) => statSync(f).mtimeMs <= built)) process.exit(0);
}

let gyp;
try {
  gyp = createRequire(join(pkg, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  fail('node-gyp is not installed');
}
const run = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${dir}`, '--jobs=2'], {
  cwd: pkg,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
  env: { ...process.env, npm_config_nodedir: dir },
});
if (run.status !== 0 || !existsSync(output)) {
  process.stderr.write((run.stdout ?? '').slice(-2000) + (run.stderr ?? '').slice(-4000));
  fail(`node-gyp exited with ${run.status ?? run.signal}`);
}
console.log(`@viommu/native: built ${output}`);
