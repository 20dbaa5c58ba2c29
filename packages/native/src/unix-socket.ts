// Unix sockets for the daemon: SCM_RIGHTS fd passing and SO_PEERCRED, which Node's own net
// module cannot do. Sockets are non-blocking; wait with `proc.poll` (or the helpers below).
import { ERRNO, POLLIN, SystemError } from '@viommu/uapi';
import { check, checked, systemError } from './errors.js';
import type { NativeProcess } from './native-process.js';

export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
/** The most fds one message can carry on Linux (SCM_MAX_FD). */
export const SCM_MAX_FD = 253;

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface Received {
  /** Bytes of data received (0: the peer closed the connection). */
  readonly length: number;
  /** The descriptors that came with them, already owned by `proc` and close-on-exec. */
  readonly fds: number[];
  /** MSG_TRUNC / MSG_CTRUNC: data or descriptors did not fit and were dropped by the kernel. */
  readonly truncated: boolean;
}

export function socketpair(proc: NativeProcess, type = SOCK_STREAM): [number, number] {
  const pair = checked(proc.addon.socketpair(type), 'socketpair');
  pair.forEach((fd) => proc.adopt(fd));
  return pair;
}

/** A listening Unix stream socket bound at `path` (which must not exist yet). */
export function unixListen(proc: NativeProcess, path: string, backlog = 64): number {
  return proc.adopt(check(proc.addon.unixListen(path, backlog), 'bind'));
}

export function unixConnect(proc: NativeProcess, path: string): number {
  return proc.adopt(check(proc.addon.unixConnect(path), 'connect'));
}

/** Waits for and accepts one connection. */
export async function unixAccept(proc: NativeProcess, listenFd: number, signal?: AbortSignal): Promise<number> {
  for (;;) {
    const fd = proc.addon.accept(listenFd);
    if (fd >= 0) return proc.adopt(fd);
    if (fd !== -ERRNO.EAGAIN) throw systemError(fd, 'accept'); // EAGAIN: nobody is waiting yet
    await proc.poll(listenFd, POLLIN, -1, signal);
  }
}

/** sendmsg with SCM_RIGHTS; `data` must be at least one byte when fds are sent. */
export function sendFds(proc: NativeProcess, fd: number, data: Uint8Array, fds: readonly number[]): number {
  if (fds.length > SCM_MAX_FD) throw new SystemError('EINVAL', 'sendmsg', `at most ${SCM_MAX_FD} fds per message`);
  return check(proc.addon.sendFds(fd, data, [...fds]), 'sendmsg');
}

/** recvmsg with room for SCM_RIGHTS; throws EAGAIN when nothing is waiting. */
export function recvFds(proc: NativeProcess, fd: number, buf: Uint8Array): Received {
  const [length, fds, flags] = checked(proc.addon.recvFds(fd, buf), 'recvmsg');
  fds.forEach((f) => proc.adopt(f));
  return { length, fds, truncated: flags !== 0 };
}

/** Waits until something arrives, then receives it. */
export async function recvFdsAsync(proc: NativeProcess, fd: number, buf: Uint8Array, signal?: AbortSignal): Promise<Received> {
  await proc.poll(fd, POLLIN, -1, signal);
  return recvFds(proc, fd, buf);
}

/** Who is connected on the other end (SO_PEERCRED): the daemon's access check. */
export function peerCred(proc: NativeProcess, fd: number): PeerCred {
  const [pid, uid, gid] = checked(proc.addon.peerCred(fd), 'getsockopt');
  return { pid, uid, gid };
}
