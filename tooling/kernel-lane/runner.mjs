#!/usr/bin/env node
// Runs scenario modules on one target and reports case by case.
//   node runner.mjs --target native|sim|daemon --module PATH [--module PATH...] [--export NAME]
//                   [--socket PATH] [--fd-passing] [--fail-nth] [--filter REGEX] [--defer REGEX WHY]
//                   [--case-timeout SECONDS] [--json OUT]
// A scenario module exports `scenarios`: [{ name, run(process) -> Outcome | void }] where Outcome is
// { status: 'pass' } | { status: 'skip', reason } | { status: 'fail', message } (the shape of
// @viommu/backend-mock and @viommu/native's smoke set). Each case gets a fresh process:
// `openNativeProcess()` on the real kernel, `createSimHost().spawn()` on the simulator, and with
// `--target daemon --socket PATH` one `connectDaemonProcess(PATH)` (a connection to a running
// viommud, so one context in the daemon) per case, disconnected after it.
// --defer records the matching cases as skipped ("deferred: WHY") without running them: the lane
// uses it for the few cases too costly for a target under TCG (compare.mjs lists them as DEFER).
// --export picks another export (e.g. failNthScenarios). --fail-nth passes each case a fault
// injection control as run(process, control): /proc/thread-self/fail-nth on the real kernel (see
// linuxFailNth below), the host's failNth switch on the simulator.
// Prints one line per case and then "N passed, N failed, N skipped"; exit 1 if any failed.
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function parseArgs(argv) {
  const opts = { target: 'native', modules: [], exportName: 'scenarios', socket: undefined, fdPassing: false, failNth: false, filter: undefined, defer: undefined, deferWhy: '', caseTimeout: 300, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--target') opts.target = next();
    else if (a === '--module') opts.modules.push(next());
    else if (a === '--export') opts.exportName = next();
    else if (a === '--socket') opts.socket = next();
    else if (a === '--fd-passing') opts.fdPassing = true;
    else if (a === '--fail-nth') opts.failNth = true;
    else if (a === '--filter') opts.filter = new RegExp(next());
    else if (a === '--defer') {
      opts.defer = new RegExp(next());
      opts.deferWhy = next();
    }
    else if (a === '--case-timeout') opts.caseTimeout = Number(next());
    else if (a === '--json') opts.json = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!['native', 'sim', 'daemon'].includes(opts.target)) throw new Error(`--target must be native, sim or daemon, not ${opts.target}`);
  if (opts.target === 'daemon' && !opts.socket) throw new Error('--target daemon needs --socket PATH (a running viommud)');
  if (opts.modules.length === 0) opts.modules.push('packages/native/dist/smoke.js');
  return opts;
}

/**
 * fail-nth of the calling thread (Node's main thread issues every ioctl), as iommufd_fail_nth.c
 * drives it: the control file is opened once before anything is armed (opening it while armed
 * would itself take the injected failure), re-read with pread, disarmed by writing 0.
 */
function linuxFailNth(process) {
  const fd = process.open('/proc/thread-self/fail-nth', 2 /* O_RDWR */);
  const put = (text) => process.write(fd, new TextEncoder().encode(text));
  return {
    enable: (n) => put(String(n)),
    disable() {
      const buf = new Uint8Array(32);
      const left = Number(new TextDecoder().decode(buf.subarray(0, process.pread(fd, buf, 0))).trim());
      put('0');
      return left === 0; // counted down to zero: the injected failure fired
    },
  };
}

/**
 * Why the daemon target runs no fail_nth sweep. fail-nth counts down every failure point the task
 * passes (slab and page allocations, user copies), and a sweep stays armed across the whole body of
 * many syscalls. Through viommud the task is the daemon's main thread, which between two of the
 * client's calls also receives and sends the frames (skb allocations, user copies on the socket):
 * the countdown would land in the daemon's own transport (a reply lost, the session dropped) as
 * often as in iommufd, and the sweep would not be the C test's sweep. Arming around one ioctl in
 * the daemon (a protocol op) would not reproduce a countdown spanning open + several ioctls either.
 */
const DAEMON_NO_FAIL_NTH =
  'fail-nth through the daemon: this target does not offer a fault-injection control (the countdown is per task and would span the daemon\'s own socket I/O between calls)';

/**
 * A process factory for the target: spawn() -> { process, control } (possibly a promise), where
 * control is the fault-injection switch for --fail-nth; dispose(process) after each case.
 * `noFailNth` is the reason a target cannot inject (its cases then skip with it).
 */
async function targetOf(name, failNth, socket, fdPassing) {
  if (name === 'daemon') {
    const protocol = await import(pathToFileURL(resolve(repo, 'packages/protocol/dist/index.js')).href);
    // --fd-passing: SCM_RIGHTS with @viommu/native, so vEVENTQ and FAULT fds come to this process
    // and are read and polled here on the real fd (protocol 1.2 EVENT_FDS, ADR 0126).
    const fdBridge = fdPassing ? (await import(pathToFileURL(resolve(repo, 'packages/native/dist/index.js')).href)).loadAddon() : undefined;
    // One probe connection up front, so a daemon that is not there fails the run with the reason.
    // Its wait is as generous as a case's: under TCG the first session process (ADR 0125) can take
    // a minute to start.
    (await protocol.connectDaemonProcess(socket, { clientName: 'kernel-lane probe', timeoutMs: 600_000 })).disconnect();
    return {
      noFailNth: failNth ? DAEMON_NO_FAIL_NTH : undefined,
      async spawn() {
        // TCG is slow and a call may compare a 128 MiB mirrored buffer (ADR 0120): a generous wait.
        const process = await protocol.connectDaemonProcess(socket, { clientName: 'kernel-lane', timeoutMs: 600_000, fdBridge });
        return { process, control: undefined };
      },
      dispose: (p) => p.disconnect(),
    };
  }
  if (name === 'native') {
    const native = await import(pathToFileURL(resolve(repo, 'packages/native/dist/index.js')).href);
    native.openNativeProcess(); // fails early, with the reason, if /dev/iommu cannot be used
    return {
      spawn() {
        const process = native.openNativeProcess({ checkDevice: false });
        return { process, control: failNth ? linuxFailNth(process) : undefined };
      },
      dispose: (p) => p.dispose(),
    };
  }
  const core = await import(pathToFileURL(resolve(repo, 'packages/core/dist/index.js')).href);
  if (typeof core.createSimHost !== 'function') throw new Error('@viommu/core (dist) has no createSimHost yet');
  return {
    spawn() {
      const host = core.createSimHost();
      const control = host.failNth && {
        enable: (n) => host.failNth.arm(n),
        disable: () => {
          const fired = host.failNth.fired;
          host.failNth.disarm();
          return fired;
        },
      };
      return { process: host.spawn(), control };
    },
    dispose: () => {},
  };
}

async function loadScenarios(path, exportName) {
  const mod = await import(pathToFileURL(resolve(repo, path)).href);
  const list = mod[exportName] ?? (exportName === 'scenarios' ? mod.default : undefined);
  if (!Array.isArray(list)) throw new Error(`${path} exports no \`${exportName}\` array`);
  return list;
}

function describeError(e) {
  if (e instanceof Error) return `${typeof e.code === 'string' ? `${e.code}: ` : ''}${e.message}`;
  return String(e);
}

/** Normalises whatever a case returned (or threw) into an outcome. */
async function runCase(scenario, process, control, timeoutS) {
  let timer;
  const watchdog = new Promise((resolvePromise) => {
    timer = setTimeout(() => resolvePromise({ status: 'fail', message: `no result after ${timeoutS} s` }), timeoutS * 1000);
  });
  try {
    const result = await Promise.race([Promise.resolve().then(() => (control ? scenario.run(process, control) : scenario.run(process))), watchdog]);
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
  const target = await targetOf(opts.target, opts.failNth, opts.socket, opts.fdPassing);
  const results = [];
  const started = Date.now();
  let n = 0;
  for (const path of opts.modules) {
    const list = await loadScenarios(path, opts.exportName);
    for (const scenario of list) {
      if (opts.filter && !opts.filter.test(scenario.name)) continue;
      let outcome;
      if (opts.defer && opts.defer.test(scenario.name)) outcome = { status: 'skip', reason: `deferred: ${opts.deferWhy}`, deferred: true };
      else if (target.noFailNth) outcome = { status: 'skip', reason: target.noFailNth };
      else {
        const { process: proc, control } = await target.spawn();
        if (opts.failNth && !control) throw new Error(`--fail-nth: no fault-injection control on ${opts.target} for ${path}`);
        outcome = await runCase(scenario, proc, opts.failNth ? control : undefined, opts.caseTimeout);
        try {
          target.dispose(proc);
        } catch (e) {
          console.log(`# dispose after ${scenario.name}: ${describeError(e)}`);
        }
      }
      n += 1;
      results.push({ name: scenario.name, module: path, ...outcome });
      const iterations = typeof outcome.iterations === 'number' ? ` (${outcome.iterations} injection runs)` : '';
      const why = outcome.status === 'skip' ? ` # SKIP ${outcome.reason}` : outcome.status === 'fail' ? ` # ${outcome.message}` : '';
      console.log(`${outcome.status === 'fail' ? 'not ok' : 'ok'} ${n} ${scenario.name}${iterations}${why}`);
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
