// One ioctl round trip through the addon, against the same ioctl in a plain C loop compiled with
// cc in this run (the physical limit). The ioctl is FIONREAD on a pipe holding 5 bytes: it needs
// no /dev/iommu, reads nothing and writes a 4-byte out value, like a small iommufd query.
// Prints ratios to the C baseline and writes bench-results/ioctl.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openNativeProcess } from '../native-process.js';

const FIONREAD = 0x541b;
const ITERATIONS = 1_000_000;
const ROUNDS = 5;
const pkg = fileURLToPath(new URL('../../', import.meta.url));

function compileBaseline(): string {
  const exe = join(mkdtempSync(join(tmpdir(), 'viommu-bench-')), 'ioctl-loop');
  execFileSync('cc', ['-O2', '-o', exe, join(pkg, 'src', 'bench', 'ioctl-loop.c')]);
  return exe;
}

/** One round of the C loop: ns per call. */
function cRound(exe: string): number {
  return (JSON.parse(execFileSync(exe, [String(ITERATIONS), '1'], { encoding: 'utf8' })) as { nsPerCall: number }).nsPerCall;
}

/** One round of `f`: ns per call. */
function jsRound(f: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) f();
  return Number(process.hrtime.bigint() - t0) / ITERATIONS;
}

const proc = openNativeProcess({ checkDevice: false });
const [r, w] = proc.pipe();
proc.write(w, new TextEncoder().encode('hello'));
const arg = new Uint8Array(4);
const addon = proc.addon;

const viaAddon = () => {
  if (addon.ioctl(r, FIONREAD, arg) !== 0) throw new Error('ioctl failed');
};
const viaProcess = () => {
  proc.ioctl(r, FIONREAD, arg);
};
const exe = compileBaseline();
jsRound(viaAddon); // warm-up: let the JIT settle before anything is timed
jsRound(viaProcess);
// Rounds interleave the three so a noisy neighbour on the machine hits them alike; best of each.
const results = { c: Infinity, addon: Infinity, process: Infinity };
for (let round = 0; round < ROUNDS; round++) {
  results.c = Math.min(results.c, cRound(exe));
  results.addon = Math.min(results.addon, jsRound(viaAddon));
  results.process = Math.min(results.process, jsRound(viaProcess));
}
if (new DataView(arg.buffer).getInt32(0, true) !== 5) throw new Error('FIONREAD did not write back 5');
proc.dispose();

const ratio = (x: number) => (x / results.c).toFixed(2);
console.log(`ioctl round trip (FIONREAD on a pipe), best of ${ROUNDS} x ${ITERATIONS.toLocaleString('en')} calls:`);
console.log(`  C loop (baseline)            ${results.c.toFixed(1)} ns/call   1.00x`);
console.log(`  addon.ioctl (raw N-API)      ${results.addon.toFixed(1)} ns/call   ${ratio(results.addon)}x`);
console.log(`  NativeProcess.ioctl          ${results.process.toFixed(1)} ns/call   ${ratio(results.process)}x`);

mkdirSync(join(pkg, 'bench-results'), { recursive: true });
const json = {
  benchmark: 'ioctl-round-trip',
  ioctl: 'FIONREAD on a pipe',
  iterations: ITERATIONS,
  rounds: ROUNDS,
  node: process.version,
  nsPerCall: results,
  ratioToC: { addon: results.addon / results.c, process: results.process / results.c },
  date: new Date().toISOString(),
};
writeFileSync(join(pkg, 'bench-results', 'ioctl.json'), JSON.stringify(json, null, 2) + '\n');
