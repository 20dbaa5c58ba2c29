// Runs viommud as a child process from dist (tests and the load benchmark): a real process on a
// real Unix socket, so a client blocking in Atomics.wait never blocks the daemon.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** apps/viommud, whether this module runs from src (jest) or from dist. */
export const APP_DIR = join(here, '..');

/**
 * tsc --build of the app and everything it references (incremental: fast when up to date). When a
 * referenced package does not compile right now (someone mid-change), fall back to compiling just
 * the protocol and the app against the referenced packages' existing dist.
 */
export function buildDaemon(): void {
  // Test files run in parallel workers and each builds first: one tsc at a time in this directory.
  const lock = join(APP_DIR, '.build-lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock left by a killed run is stale after ten minutes.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 600_000) rmdirSync(lock);
      } catch {
        // gone meanwhile
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    buildOnce();
  } finally {
    rmdirSync(lock);
  }
}

function buildOnce(): void {
  const tsc = join(APP_DIR, '../../node_modules/.bin/tsc');
  try {
    execFileSync(tsc, ['--build'], { cwd: APP_DIR, stdio: 'pipe' });
  } catch {
    execFileSync(tsc, ['-p', join(APP_DIR, '../../packages/protocol/tsconfig.json')], { stdio: 'inherit' });
    execFileSync(tsc, ['-p', join(APP_DIR, 'tsconfig.json')], { stdio: 'inherit' });
  }
}

export interface RunningDaemon {
  readonly child: ChildProcess;
  readonly socketPath: string;
  readonly metricsPort: number;
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>;
  metrics(): Promise<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Extra environment (NOTIFY_SOCKET, ...). */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Socket activation: a listening socket fd passed to the daemon as fd 3 with LISTEN_FDS=1 and
   * LISTEN_PID set to the daemon's pid (through `sh -c 'exec'`, which keeps the pid, as systemd
   * sets it between fork and exec); `socketPath` is where that socket is bound.
   */
  readonly activation?: { readonly fd: number; readonly socketPath: string };
}

export async function startDaemon(extraArgs: string[] = [], opts: StartOptions = {}): Promise<RunningDaemon> {
  const socketPath = opts.activation?.socketPath ?? join(mkdtempSync(join(tmpdir(), 'viommud-')), 'viommud.sock');
  const args = [join(APP_DIR, 'dist/cli.js'), ...(opts.activation ? [] : ['--socket', socketPath]), '--backend', 'sim', '--metrics-port', '0', ...extraArgs];
  const env = { ...process.env, ...opts.env };
  const child = opts.activation
    ? spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit', opts.activation.fd], env })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let metricsPort = 0;
  await new Promise<void>((resolve, reject) => {
    let listening = false;
    child.once('exit', (code) => reject(new Error(`viommud exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(rec);
      if (rec['msg'] === 'listening') listening = true;
      if (rec['msg'] === 'metrics listening') metricsPort = rec['metricsPort'] as number;
      if (listening && metricsPort) resolve();
    });
  });
  return {
    child,
    socketPath,
    metricsPort,
    logs,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return res.text();
    },
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The value of one sample in Prometheus text (0 when absent). */
export function sample(text: string, name: string, labels = ''): number {
  const re = new RegExp(`^${name}${labels ? `\\{${labels.replace(/[{}]/g, '')}\\}` : ''} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Polls `cond` until it holds. The bound is generous (the machine may be busy), not a latency check. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, tries = 6000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}
