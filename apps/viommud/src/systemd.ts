// systemd integration without a native dependency. Socket activation: LISTEN_PID/LISTEN_FDS name
// fd 3 as our listening socket. Readiness: Node has no AF_UNIX datagram socket, so sd_notify is
// sent by systemd-notify(1), which reads NOTIFY_SOCKET itself (the unit needs NotifyAccess=all,
// because the datagram comes from that child rather than from the main pid).
import { execFile } from 'node:child_process';

export const SD_LISTEN_FDS_START = 3;

/**
 * The listening fd systemd passed, or undefined when not socket-activated. The variables are
 * removed (as sd_listen_fds(1) does), so nothing the daemon starts takes them for its own.
 */
export function listenFdFromEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const mine = env['LISTEN_PID'] === String(pid);
  const n = Number(env['LISTEN_FDS']);
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (!mine || !Number.isInteger(n) || n < 1) return undefined;
  return SD_LISTEN_FDS_START;
}

/** Sends `state` (e.g. "READY=1", "STOPPING=1") when NOTIFY_SOCKET is set; resolves false if it could not. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (!env['NOTIFY_SOCKET']) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile('systemd-notify', [`--pid=${process.pid}`, ...state.split('\n')], { env }, (err) => resolve(!err));
  });
}
