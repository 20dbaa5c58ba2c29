// The daemon target's daemon: a real viommud child process on a Unix socket in a temp dir (sim
// backend), or one already running (--socket). Clients come from @viommu/protocol, one connection
// per case, as the kernel harness forks one child per case.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** apps/harness, from src (jest) or dist. */
export const APP_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The built viommud entry point, found through the harness's workspace dependency on it. */
export function viommudCli(): string {
  return join(realpathSync(join(APP_ROOT, 'node_modules', '@viommu', 'viommud')), 'dist', 'cli.js');
}

export interface DaemonHandle {
  readonly socketPath: string;
  /** Whether this harness started it (and so stops it). */
  readonly owned: boolean;
  /** The daemon's last log lines (JSON, as it wrote them), for error messages. */
  recentLogs(): string[];
  /** SIGTERM and wait for the exit (SIGKILL if it has not gone after `graceMs`); a no-op for a daemon we did not start. */
  stop(graceMs?: number): Promise<void>;
}

export class DaemonUnavailable extends Error {
  override readonly name = 'DaemonUnavailable';
}

/** A daemon someone else runs: only checked to exist. */
export function existingDaemon(socketPath: string): DaemonHandle {
  if (!existsSync(socketPath)) throw new DaemonUnavailable(`no socket at ${socketPath}`);
  return { socketPath, owned: false, recentLogs: () => [], stop: async () => undefined };
}

/**
 * Starts `viommud --backend sim` on a fresh socket and resolves once it logs "listening".
 * `perClientHost`: each connection gets its own simulated host, as each in-process case does.
 */
export async function startDaemon(opts: { perClientHost: boolean }): Promise<DaemonHandle> {
  const cli = viommudCli();
  if (!existsSync(cli)) throw new DaemonUnavailable(`viommud is not built (${cli}); run: npx turbo run build --filter=@viommu/harness...`);
  const dir = mkdtempSync(join(tmpdir(), 'viommu-conformance-'));
  const socketPath = join(dir, 'viommud.sock');
  const args = [cli, '--socket', socketPath, '--backend', 'sim', ...(opts.perClientHost ? ['--sim-host-per-client'] : [])];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const keep = (line: string) => {
    logs.push(line);
    if (logs.length > 400) logs.shift();
  };
  // Both streams are drained for the daemon's whole life: a full pipe would stall it.
  createInterface({ input: child.stderr! }).on('line', keep);
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Should the harness exit without stopping it (an uncaught error, process.exit), the daemon goes too.
  const orphanGuard = () => child.kill('SIGTERM');
  process.once('exit', orphanGuard);
  void exited.then(() => process.removeListener('exit', orphanGuard));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    await new Promise<void>((ready, fail) => {
      child.once('error', fail);
      child.once('exit', (code, signal) => fail(new DaemonUnavailable(`viommud exited (${code ?? signal}) before it listened: ${logs.slice(-5).join(' | ')}`)));
      lines.on('line', (line) => {
        keep(line);
        if (line.includes('"msg":"listening"')) ready();
      });
    });
  } catch (e) {
    if (child.exitCode === null) child.kill('SIGKILL');
    cleanup();
    throw e;
  }
  return {
    socketPath,
    owned: true,
    recentLogs: () => [...logs],
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}
