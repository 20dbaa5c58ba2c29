// File descriptors between client and daemon (feature SCM_RIGHTS, ADR 0129). Node's sockets cannot
// carry SCM_RIGHTS — a read without room for ancillary data makes the kernel close the passed fds —
// so fds travel on a second connection that both ends drive with @viommu/native's syscalls, never
// through libuv. The main connection names them by a tag the client picks.
//
//   fd channel:   client connects to the path HELLO returned, sends
//                 { u32 magic "VFDC", u32 session_id, 16 bytes token } once, then for each fd
//                 { u32 tag } with exactly one fd attached (SCM_RIGHTS).
//   main socket:  FD_IMPORT / MEM_SHARED name the tag; the daemon drains the channel when it
//                 needs one (the client sent it before the request, so it is already queued).
//   daemon → client (1.2, EVENT_FDS): { u32 fd } with one fd attached: a vEVENTQ or FAULT fd the
//                 kernel returned, named by its number in the session's process; sent before the
//                 reply of the ioctl that made it, so the client drains it when that reply arrives.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { POLLIN, POLLNVAL, POLLOUT, SystemError } from '@viommu/uapi';
import { toSystemError } from './errno.js';

/** The syscalls fd passing needs: a structural subset of @viommu/native's addon (pass `loadAddon()`). */
export interface FdBridge {
  unixListen(path: string, backlog: number): number;
  unixConnect(path: string): number;
  accept(fd: number): number;
  sendFds(fd: number, data: Uint8Array, fds: number[]): number;
  recvFds(fd: number, buf: Uint8Array): [number, number[], number] | number;
  close(fd: number): number;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: number | bigint): number;
  fcntl(fd: number, cmd: number, arg?: number): number;
  fstat(fd: number): [number, number] | number;
  mmap(fd: number, length: number, offset: bigint, prot: number, flags: number): [bigint, ArrayBuffer] | number;
  munmap(addr: bigint, length: number): number;
}

export const FD_CHANNEL_MAGIC = 0x43444656; // "VFDC"
export const FD_TOKEN_BYTES = 16;
const HELLO_BYTES = 8 + FD_TOKEN_BYTES;
const EAGAIN = 11;

// fcntl(2), memfd_create(2) and mmap(2) numbers (the same on x86-64 and arm64).
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const MFD_ALLOW_SEALING = 0x2;
export const PROT_RW = 0x3;
export const MAP_SHARED = 0x1;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

function fail(ret: number, syscall: string, detail?: string): never {
  throw new SystemError(ret === -EAGAIN ? 'EAGAIN' : 'EIO', syscall, detail ?? `errno ${-ret}`);
}

/** A memfd of `length` bytes that cannot shrink or grow (so a peer can map it safely), and our mapping of it. */
export function sealedMemfd(bridge: FdBridge, name: string, length: number): { fd: number; addr: bigint; bytes: Uint8Array } {
  const fd = bridge.memfdCreate(name, MFD_ALLOW_SEALING);
  if (fd < 0) fail(fd, 'memfd_create');
  let ok = false;
  try {
    let r = bridge.ftruncate(fd, length);
    if (r < 0) fail(r, 'ftruncate');
    r = bridge.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    if (r < 0) fail(r, 'fcntl');
    const m = bridge.mmap(fd, length, 0n, PROT_RW, MAP_SHARED);
    if (typeof m === 'number') fail(m, 'mmap');
    ok = true;
    return { fd, addr: m[0], bytes: new Uint8Array(m[1]) };
  } finally {
    if (!ok) bridge.close(fd);
  }
}

/**
 * What the daemon may map of a received fd: a regular file (memfd) sealed against shrinking, so
 * a client truncating it later cannot make the daemon's accesses fault (SIGBUS). Returns its size.
 */
export function mappableSize(bridge: FdBridge, fd: number): number {
  const st = bridge.fstat(fd);
  if (typeof st === 'number') throw new SystemError('EBADF', 'fstat', `errno ${-st}`);
  if ((st[0] & S_IFMT) !== S_IFREG) throw new SystemError('EINVAL', 'mmap', 'the passed fd is not a memfd or regular file');
  const seals = bridge.fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) === 0) throw new SystemError('EPERM', 'mmap', 'the passed memfd must be sealed with F_SEAL_SHRINK');
  return st[1];
}

/** What a client needs to serve passed event fds itself: @viommu/native's io and poll calls (the addon has them). */
export interface EventFdBridge extends FdBridge {
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  pollNow(fd: number, events: number): number;
  Watcher: new (fd: number, callback: (status: number, uvEvents: number) => void) => { start(uvEvents: number): number; stop(): void; close(): void };
  readonly uv: { READABLE: number; WRITABLE: number; DISCONNECT: number };
}

export function canServeEventFds(bridge: FdBridge | undefined): bridge is EventFdBridge {
  const b = bridge as Partial<EventFdBridge> | undefined;
  return typeof b?.read === 'function' && typeof b.write === 'function' && typeof b.pollNow === 'function' && typeof b.Watcher === 'function' && b.uv !== undefined;
}

/** A negative return of the addon as the SystemError the kernel's errno makes. */
function check(ret: number, syscall: string): number {
  if (ret < 0) throw toSystemError(-ret, syscall, '');
  return ret;
}

interface PollWaiter {
  readonly events: number;
  readonly resolve: (revents: number) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The event fds the daemon passed to this client (EVENT_FDS), by the number the session knows them
 * by: read, write and poll run on the real fd here, with the kernel's own errnos. One libuv watcher
 * per fd (libuv allows no more), shared by the polls waiting on it.
 */
export class LocalEventFds {
  private readonly local = new Map<number, number>();
  private readonly watches = new Map<number, { watcher: InstanceType<EventFdBridge['Watcher']>; waiters: Set<PollWaiter>; on: boolean }>();

  constructor(private readonly bridge: EventFdBridge) {}

  has(fd: number): boolean {
    return this.local.has(fd);
  }

  get size(): number {
    return this.local.size;
  }

  /** Our own fd for the session's `fd` (a later fd with the same number replaces a stale one). */
  add(fd: number, ours: number): void {
    this.drop(fd);
    this.local.set(fd, ours);
  }

  read(fd: number, buf: Uint8Array): number {
    return check(this.bridge.read(this.local.get(fd)!, buf), 'read');
  }

  write(fd: number, buf: Uint8Array): number {
    return check(this.bridge.write(this.local.get(fd)!, buf), 'write');
  }

  poll(fd: number, events: number, timeoutMs: number): Promise<number> {
    const ours = this.local.get(fd)!;
    const now = this.bridge.pollNow(ours, events);
    if (now < 0) return Promise.reject(toSystemError(-now, 'poll', ''));
    if (now !== 0 || timeoutMs === 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      let watch = this.watches.get(fd);
      if (!watch) {
        const w = { watcher: new this.bridge.Watcher(ours, () => this.ready(fd)), waiters: new Set<PollWaiter>(), on: false };
        this.watches.set(fd, (watch = w));
      }
      const waiter: PollWaiter = { events, resolve, timer: undefined };
      watch.waiters.add(waiter);
      if (timeoutMs > 0) waiter.timer = setTimeout(() => this.settle(fd, waiter, 0), timeoutMs);
      this.rearm(fd);
    });
  }

  /** Closes our copy (the session's copy is the daemon's to close). */
  drop(fd: number): void {
    const ours = this.local.get(fd);
    if (ours === undefined) return;
    const watch = this.watches.get(fd);
    if (watch) {
      // poll(2) reports a closed fd as POLLNVAL.
      for (const w of [...watch.waiters]) this.settle(fd, w, POLLNVAL);
      watch.watcher.close();
      this.watches.delete(fd);
    }
    this.local.delete(fd);
    this.bridge.close(ours);
  }

  dropAll(): void {
    for (const fd of [...this.local.keys()]) this.drop(fd);
  }

  private ready(fd: number): void {
    const watch = this.watches.get(fd);
    const ours = this.local.get(fd);
    if (!watch || ours === undefined) return;
    for (const w of [...watch.waiters]) {
      const revents = this.bridge.pollNow(ours, w.events);
      if (revents !== 0) this.settle(fd, w, revents < 0 ? POLLNVAL : revents);
    }
  }

  private settle(fd: number, waiter: PollWaiter, revents: number): void {
    const watch = this.watches.get(fd);
    if (!watch?.waiters.delete(waiter)) return;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.resolve(revents);
    this.rearm(fd);
  }

  /** Watches while someone waits; readable and writable as they asked (errors always come). */
  private rearm(fd: number): void {
    const watch = this.watches.get(fd);
    if (!watch) return;
    let mask = 0;
    for (const w of watch.waiters) mask |= (w.events & POLLIN ? this.bridge.uv.READABLE : 0) | (w.events & POLLOUT ? this.bridge.uv.WRITABLE : 0);
    if (watch.waiters.size === 0) {
      if (watch.on) watch.watcher.stop();
      watch.on = false;
      return;
    }
    watch.watcher.start(mask || this.bridge.uv.DISCONNECT);
    watch.on = true;
  }
}

/** The client's end: one connection, each fd sent with a fresh tag. */
export class FdSender {
  private nextTag = 1;
  private constructor(
    private readonly bridge: FdBridge,
    private readonly fd: number,
  ) {}

  static connect(bridge: FdBridge, path: string, sessionId: number, token: Uint8Array): FdSender {
    const fd = bridge.unixConnect(path);
    if (fd < 0) fail(fd, 'connect', `fd channel ${path}: errno ${-fd}`);
    const hello = new Uint8Array(HELLO_BYTES);
    const v = new DataView(hello.buffer);
    v.setUint32(0, FD_CHANNEL_MAGIC, true);
    v.setUint32(4, sessionId, true);
    hello.set(token.subarray(0, FD_TOKEN_BYTES), 8);
    const sent = bridge.sendFds(fd, hello, []);
    if (sent !== HELLO_BYTES) {
      bridge.close(fd);
      fail(sent < 0 ? sent : -5, 'sendmsg', 'fd channel hello');
    }
    return new FdSender(bridge, fd);
  }

  /** Sends `fd` (it stays open here too); the daemon finds it by the returned tag. */
  send(fd: number): number {
    const tag = this.nextTag++;
    const msg = new Uint8Array(4);
    new DataView(msg.buffer).setUint32(0, tag, true);
    // Four bytes into an empty local socket buffer: sendmsg takes them at once or fails.
    const sent = this.bridge.sendFds(this.fd, msg, [fd]);
    if (sent !== 4) fail(sent < 0 ? sent : -5, 'sendmsg', 'passing an fd');
    return tag;
  }

  /**
   * The fds the daemon sent us (EVENT_FDS) and are queued now: [the session's number, our fd].
   * The socket is non-blocking, so an empty channel ends the drain at once.
   */
  receive(): Array<[number, number]> {
    const got: Array<[number, number]> = [];
    const msg = new Uint8Array(4);
    for (;;) {
      const r = this.bridge.recvFds(this.fd, msg);
      if (typeof r === 'number' || r[0] === 0) return got;
      const [n, fds] = r;
      if (n === 4 && fds.length === 1) got.push([new DataView(msg.buffer).getInt32(0, true), fds[0]!]);
      else for (const f of fds) this.bridge.close(f);
    }
  }

  close(): void {
    this.bridge.close(this.fd);
  }
}

interface Channel {
  fd: number;
  readonly token: Uint8Array;
  readonly fds: Map<number, number>;
}

/**
 * The daemon's end: a listening socket (0600, in a private directory) and, per session, the
 * channel its client attached with the session's token. Fds arrive in the daemon's own fd table;
 * whoever takes one owns it.
 */
export class FdInbox {
  readonly path: string;
  private readonly listenFd: number;
  private readonly channels = new Map<number, Channel>();
  /** Accepted connections whose hello has not arrived yet. */
  private pending: Array<{ fd: number; tries: number }> = [];
  private readonly buf = new Uint8Array(HELLO_BYTES);

  constructor(
    private readonly bridge: FdBridge,
    dir: string,
    name = 'fds.sock',
  ) {
    this.path = join(dir, name);
    rmSync(this.path, { force: true });
    const old = process.umask(0o177);
    try {
      this.listenFd = bridge.unixListen(this.path, 64);
    } finally {
      process.umask(old);
    }
    if (this.listenFd < 0) fail(this.listenFd, 'bind', `${this.path}: errno ${-this.listenFd}`);
  }

  /** A session may attach a channel with the returned token (sent to its client in HELLO). */
  register(sessionId: number): Uint8Array {
    const token = randomBytes(FD_TOKEN_BYTES);
    this.channels.set(sessionId, { fd: -1, token, fds: new Map() });
    return token;
  }

  /** The session is gone: its channel and every fd it passed but never used are closed. */
  unregister(sessionId: number): void {
    const ch = this.channels.get(sessionId);
    if (!ch) return;
    this.channels.delete(sessionId);
    if (ch.fd >= 0) this.bridge.close(ch.fd);
    for (const fd of ch.fds.values()) this.bridge.close(fd);
  }

  /** The fd the session's client sent with `tag` (the caller owns it now), or undefined. */
  take(sessionId: number, tag: number): number | undefined {
    const ch = this.channels.get(sessionId);
    if (!ch) return undefined;
    if (ch.fd < 0) this.acceptPending();
    if (ch.fd >= 0 && !ch.fds.has(tag)) this.drain(ch);
    const fd = ch.fds.get(tag);
    ch.fds.delete(tag);
    return fd;
  }

  /**
   * Sends one of our fds to the session's client (EVENT_FDS), named by its number here; the fd
   * stays open here too. False when the client has not attached its channel (or it is gone).
   */
  give(sessionId: number, fd: number): boolean {
    const ch = this.channels.get(sessionId);
    if (!ch) return false;
    if (ch.fd < 0) this.acceptPending();
    if (ch.fd < 0) return false;
    const msg = new Uint8Array(4);
    new DataView(msg.buffer).setInt32(0, fd, true);
    return this.bridge.sendFds(ch.fd, msg, [fd]) === 4;
  }

  close(): void {
    for (const id of [...this.channels.keys()]) this.unregister(id);
    for (const p of this.pending) this.bridge.close(p.fd);
    this.pending = [];
    this.bridge.close(this.listenFd);
    rmSync(this.path, { force: true });
  }

  private acceptPending(): void {
    for (;;) {
      const fd = this.bridge.accept(this.listenFd);
      if (fd < 0) break;
      this.pending.push({ fd, tries: 0 });
    }
    const still: Array<{ fd: number; tries: number }> = [];
    for (const p of this.pending) {
      const r = this.bridge.recvFds(p.fd, this.buf);
      if (r === -EAGAIN && ++p.tries < 64) {
        still.push(p);
        continue;
      }
      if (typeof r === 'number' || r[0] !== HELLO_BYTES || !this.attach(p.fd)) {
        if (typeof r !== 'number') for (const f of r[1]) this.bridge.close(f);
        this.bridge.close(p.fd);
      }
    }
    // A bounded backlog: connections that never say hello are dropped, oldest first.
    this.pending = still.slice(-64);
  }

  private attach(fd: number): boolean {
    const v = new DataView(this.buf.buffer);
    if (v.getUint32(0, true) !== FD_CHANNEL_MAGIC) return false;
    const ch = this.channels.get(v.getUint32(4, true));
    if (!ch || ch.fd >= 0) return false;
    const token = this.buf.subarray(8, HELLO_BYTES);
    let same = 0;
    for (let i = 0; i < FD_TOKEN_BYTES; i++) same |= token[i]! ^ ch.token[i]!;
    if (same !== 0) return false;
    ch.fd = fd;
    return true;
  }

  /** Reads every message queued on the channel: one tag and one fd each (anything else is dropped). */
  private drain(ch: Channel): void {
    const msg = this.buf.subarray(0, 4);
    for (;;) {
      const r = this.bridge.recvFds(ch.fd, msg);
      if (typeof r === 'number' || r[0] === 0) return;
      const [n, fds] = r;
      if (n === 4 && fds.length === 1) {
        const tag = new DataView(msg.buffer, msg.byteOffset, 4).getUint32(0, true);
        const old = ch.fds.get(tag);
        if (old !== undefined) this.bridge.close(old);
        ch.fds.set(tag, fds[0]!);
      } else {
        for (const f of fds) this.bridge.close(f);
      }
    }
  }
}
