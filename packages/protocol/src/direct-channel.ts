// The synchronous round trip without the worker hop (ADR 0131): when the client has @viommu/native,
// the calling thread owns the connected socket and blocks in the kernel (poll(2)) until the reply
// arrives. Frames that are not the awaited reply (EVENT pushes, replies to poll) are queued and
// delivered afterwards from the event loop; between calls a libuv watcher on the socket delivers
// them. The surface and the error semantics are those of the worker channel (sync-channel.ts).
import { SystemError } from '@viommu/uapi';
import { errnoName } from './errno.js';

/** The addon calls the direct channel needs: a structural subset of @viommu/native (ABI 5). */
export interface DirectBridge {
  unixConnect(path: string): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array): number;
  write(fd: number, buf: Uint8Array): number;
  pollWait(fd: number, events: number, timeoutMs: number): number;
  Watcher: new (fd: number, callback: (status: number, uvEvents: number) => void) => DirectWatcher;
  readonly uv: { READABLE: number; WRITABLE: number };
}

export interface DirectWatcher {
  start(uvEvents: number): number;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface ChannelEvents {
  onFrame(frame: Uint8Array): void;
  onClosed(message: string): void;
}

/** Whether `bridge` has what the direct channel needs (an addon older than ABI 5 has no pollWait). */
export function isDirectBridge(bridge: unknown): bridge is DirectBridge {
  const b = bridge as Partial<DirectBridge> | undefined;
  return typeof b?.pollWait === 'function' && typeof b.unixConnect === 'function' && typeof b.Watcher === 'function';
}

const POLLIN = 0x1;
const POLLOUT = 0x4;
const EAGAIN = 11;
const EINTR = 4;
const HEADER = 16;
const PUSH = 4;
/** A frame length beyond this is a broken stream, not a big reply (the daemon's own limit is far below). */
const MAX_FRAME = 1 << 30;
const READS_PER_WAKE = 64;

export class DirectChannel {
  closed = false;
  private rx = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;
  /** Frames read but not yet delivered (they arrived while a synchronous call waited). */
  private readonly queue: Uint8Array[] = [];
  private deliverScheduled = false;
  /** Bytes of asynchronous sends the socket did not take yet, in order. */
  private readonly out: Uint8Array[] = [];
  private outOffset = 0;
  private paused = false;
  private refs = 0;
  private watchMask = 0;
  private readonly watcher: DirectWatcher;
  private closedReported = false;
  private closeMessage = 'closed';

  private constructor(
    private readonly bridge: DirectBridge,
    private readonly fd: number,
    private readonly events: ChannelEvents,
    private readonly timeoutMs: number,
  ) {
    this.watcher = new bridge.Watcher(fd, (status) => this.onReady(status));
    this.watcher.unref();
    this.rewatch();
  }

  /** Connects at once (a Unix stream connect does not linger) or fails with ECONNREFUSED, as the worker channel does. */
  static async open(path: string, events: ChannelEvents, timeoutMs: number, bridge: DirectBridge): Promise<DirectChannel> {
    // A full listen backlog (EAGAIN) is the one transient failure: many clients connecting at once.
    for (let attempt = 0; ; attempt++) {
      const fd = bridge.unixConnect(path);
      if (fd >= 0) return new DirectChannel(bridge, fd, events, timeoutMs);
      if (fd !== -EAGAIN || attempt >= 200) throw new SystemError('ECONNREFUSED', 'connect', `${path}: ${errnoName(-fd)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Sends `frame` and blocks until the reply with `id` arrives; returns the reply frame (a copy). */
  call(frame: Uint8Array, id: number, syscall: string): Uint8Array {
    if (this.closed) throw new SystemError('ENOTCONN', syscall, 'the daemon connection is closed');
    const deadline = Date.now() + this.timeoutMs;
    // Earlier asynchronous sends go first, then the request, both without ever refusing to read.
    if (!this.flushBlocking(deadline, syscall) || !this.writeBlocking(frame, 0, deadline, syscall)) this.timedOut(syscall);
    if (this.paused) {
      // Same contract as the worker channel: the request goes out, but nothing is read while
      // paused, so its reply cannot arrive; the call waits out its timeout.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, deadline - Date.now()));
      this.timedOut(syscall);
    }
    for (;;) {
      const reply = this.takeReply(id);
      if (reply !== undefined) {
        if (this.queue.length) this.scheduleDelivery();
        return reply;
      }
      if (this.closed) throw new SystemError('ECONNRESET', syscall, 'the daemon closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) this.timedOut(syscall);
      const revents = this.bridge.pollWait(this.fd, POLLIN, left);
      if (revents === 0 || revents === -EINTR) continue;
      // Readable, hung up or failed: read what is there (a reply may precede the end of the stream).
      if (revents < 0) this.fail(errnoName(-revents));
      else if (!this.readAvailable()) this.fail(this.closeMessage);
    }
  }

  /** Sends without waiting (the reply comes through onFrame). */
  send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.out.length === 0) {
      const n = this.writeSome(frame, 0);
      if (n < 0) return this.fail(this.closeMessage);
      if (n === frame.length) return;
      // The socket is full: the rest goes out when the watcher sees it writable again.
      this.out.push(frame.slice(n));
      this.outOffset = 0;
    } else {
      this.out.push(frame.slice());
    }
    this.rewatch();
  }

  /** Stops (or resumes) reading the socket: flow control, and a stalled client for tests. */
  pauseReading(): void {
    if (this.closed) return;
    this.paused = true;
    this.rewatch();
  }
  resumeReading(): void {
    if (this.closed) return;
    this.paused = false;
    this.rewatch();
    if (this.queue.length) this.scheduleDelivery();
  }

  /** Keeps the event loop alive while asynchronous requests are outstanding. */
  hold(): void {
    if (this.refs++ === 0 && !this.closed) this.watcher.ref();
  }
  release(): void {
    if (--this.refs === 0 && !this.closed) this.watcher.unref();
  }
  unrefAll(): void {
    if (this.refs === 0 && !this.closed) this.watcher.unref();
  }

  close(): void {
    if (this.closed) return;
    // Whatever asynchronous sends are still queued get a brief chance, as the worker's sock.end() gives them.
    this.flushBlocking(Date.now() + 50, 'close');
    this.fail('closed by the client');
  }

  // --- reading ---------------------------------------------------------------------------------

  /**
   * Reads what the socket has now (at most READS_PER_WAKE reads, so a daemon that never stops
   * sending cannot keep us here: the fd stays readable and we come back); false when the daemon
   * has closed it (EOF or error).
   */
  private readAvailable(): boolean {
    for (let reads = 0; reads < READS_PER_WAKE; reads++) {
      if (this.end === this.rx.length) this.makeRoom();
      const n = this.bridge.read(this.fd, this.rx.subarray(this.end));
      if (n > 0) {
        this.end += n;
        continue;
      }
      if (n === -EAGAIN) return true;
      if (n === -EINTR) continue;
      this.closeMessage = n === 0 ? 'closed by the daemon' : errnoName(-n);
      return false;
    }
    return true;
  }

  /** Compacts the buffer, and grows it when the frame at its start needs more than it holds. */
  private makeRoom(): void {
    const live = this.end - this.start;
    let size = this.rx.length;
    const need = live >= HEADER ? this.frameLength(this.start) : 0;
    while (size < Math.max(need, live + 4096)) size *= 2;
    const next = size === this.rx.length ? this.rx : new Uint8Array(size);
    next.set(this.rx.subarray(this.start, this.end), 0);
    this.rx = next;
    this.start = 0;
    this.end = live;
  }

  /** A little-endian u32 of the receive buffer (no DataView per frame). */
  private u32(at: number): number {
    const b = this.rx;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  }

  private frameLength(at: number): number {
    return this.u32(at);
  }

  /**
   * Cuts every complete frame out of the buffer: the reply to `id` (not a push) is returned, the
   * rest is queued. A malformed length ends the connection.
   */
  private takeReply(id: number): Uint8Array | undefined {
    let reply: Uint8Array | undefined;
    while (this.end - this.start >= HEADER) {
      const len = this.frameLength(this.start);
      if (len < HEADER || len > MAX_FRAME) {
        this.closeMessage = 'bad frame length from the daemon';
        this.fail(this.closeMessage);
        return reply;
      }
      if (this.end - this.start < len) break;
      const mine = reply === undefined && id >= 0 && (this.rx[this.start + 10]! & PUSH) === 0 && this.u32(this.start + 4) === id;
      const frame = this.rx.slice(this.start, this.start + len);
      this.start += len;
      if (mine) reply = frame;
      else this.queue.push(frame);
    }
    if (this.start === this.end) this.start = this.end = 0;
    return reply;
  }

  /** The libuv watcher: the socket is readable (between calls) or writable again (queued sends). */
  private onReady(status: number): void {
    if (this.closed) return;
    if (status < 0) return this.fail(errnoName(-status));
    if (this.out.length && !this.flushSome()) return this.fail('closed by the daemon');
    if (!this.paused) {
      const open = this.readAvailable();
      this.takeReply(-1);
      this.deliver();
      if (!open) return this.fail(this.closeMessage);
    }
    this.rewatch();
  }

  private scheduleDelivery(): void {
    if (this.deliverScheduled) return;
    this.deliverScheduled = true;
    setImmediate(() => {
      this.deliverScheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    while (this.queue.length) this.events.onFrame(this.queue.shift()!);
    if (this.closed) this.reportClosed();
  }

  // --- writing ---------------------------------------------------------------------------------

  /** write(2) once: bytes taken (0 when the socket is full), or -1 when the connection is gone. */
  private writeSome(buf: Uint8Array, offset: number): number {
    for (;;) {
      const n = this.bridge.write(this.fd, offset ? buf.subarray(offset) : buf);
      if (n >= 0) return n;
      if (n === -EAGAIN) return 0;
      if (n !== -EINTR) {
        this.closeMessage = errnoName(-n);
        return -1;
      }
    }
  }

  /**
   * Writes all of `buf` before the deadline, reading whatever arrives meanwhile (a daemon whose
   * own sends are blocked on us must not deadlock us). False on timeout; a lost connection throws.
   */
  private writeBlocking(buf: Uint8Array, offset: number, deadline: number, syscall: string): boolean {
    while (offset < buf.length) {
      const n = this.writeSome(buf, offset);
      if (n < 0) this.lost(syscall);
      offset += n;
      if (offset === buf.length) break;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      // Paused means nothing is read, even here (the daemon buffers, as it does for the worker channel).
      const revents = this.bridge.pollWait(this.fd, this.paused ? POLLOUT : POLLIN | POLLOUT, left);
      if (revents > 0 && revents & POLLIN && !this.readAvailable()) this.lost(syscall);
    }
    return true;
  }

  private flushBlocking(deadline: number, syscall: string): boolean {
    while (this.out.length) {
      const head = this.out[0]!;
      if (!this.writeBlocking(head, this.outOffset, deadline, syscall)) return false;
      this.out.shift();
      this.outOffset = 0;
    }
    this.rewatch();
    return true;
  }

  /** Writes what the socket takes now of the queued sends; false when the connection is gone. */
  private flushSome(): boolean {
    while (this.out.length) {
      const head = this.out[0]!;
      const n = this.writeSome(head, this.outOffset);
      if (n < 0) return false;
      this.outOffset += n;
      if (this.outOffset < head.length) return true;
      this.out.shift();
      this.outOffset = 0;
    }
    return true;
  }

  // --- state -----------------------------------------------------------------------------------

  /** Watches for what is wanted now: readable unless paused, writable while sends are queued. */
  private rewatch(): void {
    if (this.closed) return;
    const mask = (this.paused ? 0 : this.bridge.uv.READABLE) | (this.out.length ? this.bridge.uv.WRITABLE : 0);
    if (mask === this.watchMask) return;
    this.watchMask = mask;
    if (mask === 0) this.watcher.stop();
    else if (this.watcher.start(mask) < 0) this.fail('cannot watch the daemon socket');
  }

  private timedOut(syscall: string): never {
    this.close();
    throw new SystemError('ETIMEDOUT', syscall, `no answer from the daemon in ${this.timeoutMs} ms`);
  }

  /** The connection broke while a synchronous call was writing. */
  private lost(syscall: string): never {
    this.fail(this.closeMessage);
    throw new SystemError('ECONNRESET', syscall, 'the daemon closed the connection');
  }

  /** Closes the socket; frames already read are still delivered, then onClosed, from the event loop. */
  private fail(message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeMessage = message;
    this.watcher.close();
    this.bridge.close(this.fd);
    this.out.length = 0;
    this.scheduleDelivery();
  }

  private reportClosed(): void {
    if (this.closedReported) return;
    this.closedReported = true;
    this.events.onClosed(this.closeMessage);
  }
}
