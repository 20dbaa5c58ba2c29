// One client connection: its own process on the backend (so its own fd table, address space and
// iommufd contexts — nothing another connection can name), the frame loop, and teardown.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import {
  EPROTO,
  errnoName,
  errnoOfError,
  FEATURE,
  FLAG,
  FrameReader,
  finishFrame,
  frameWriter,
  HELLO_MAGIC,
  MAP_SHARED,
  mappableSize,
  MirrorSet,
  OP,
  OP_NAMES,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  PROT_RW,
  ProtocolError,
  Reader,
  type FdBridge,
  type FdInbox,
  type Frame,
  type Writer,
} from '@viommu/protocol';
import {
  ERRNO,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  iommu_fault_alloc,
  iommu_veventq_alloc,
  ioctlByRequest,
  POLLIN,
  SystemError,
  type IoctlArg,
} from '@viommu/uapi';
import type { Backend, BackendProcess } from './backend.js';
import { importMemfd, sharedMemory } from './sim-shared-memory.js';
import type { SessionMetrics } from './metrics.js';

export interface SessionLimits {
  /** Largest frame accepted from the client. */
  readonly maxFrame: number;
  /** A frame started but not finished within this time disconnects the client (a stalled sender). */
  readonly stallMs: number;
  /** Unsent bytes queued to a client beyond which it is disconnected (it stopped reading). */
  readonly maxUnsent: number;
}

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

const FEATURES = FEATURE.MIRRORED_MEMORY | FEATURE.EVENT_STREAM | FEATURE.MEMFD;
const MEM_FEATURE_OPS = new Set<number>([OP.MEMFD_CREATE, OP.FTRUNCATE]);
const FD_OPS = new Set<number>([OP.FD_IMPORT, OP.MEM_SHARED]);

/** The daemon's end of fd passing (feature SCM_RIGHTS), when @viommu/native loaded. */
export interface FdPassing {
  readonly inbox: FdInbox;
  readonly bridge: FdBridge;
}

class Failure extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

interface Subscription {
  readonly id: number;
  readonly fd: number;
  readonly readSize: number;
  readonly maxQueued: number;
  /** EVENT frames handed to the socket and not yet flushed to the kernel. */
  queued: number;
  /** Bytes of those frames (the stream's share of the daemon's memory for this client). */
  queuedBytes: number;
  /** Reads dropped since the last EVENT that reported them. */
  lost: number;
  /** Reads dropped over the stream's life. */
  lostTotal: number;
  active: boolean;
}

export class Session {
  readonly process: BackendProcess;
  readonly started = Date.now();
  clientName = '';
  ioctlCount = 0;
  eventsSent = 0;
  private readonly reader: FrameReader;
  private readonly mirror = new MirrorSet();
  private readonly anon = new Set<number>();
  private readonly subs = new Map<number, Subscription>();
  private nextSub = 1;
  private greeted = false;
  private closed = false;
  private stallTimer: NodeJS.Timeout | undefined;
  /** Armed while bytes wait in our socket buffer: fires when the client has not read for stallMs. */
  private writeTimer: NodeJS.Timeout | undefined;
  /** When the socket last accepted queued bytes (or when the queue started filling). */
  private lastFlush = Date.now();
  private lostOfEndedStreams = 0;
  private readonly reply: Writer = frameWriter(4096);
  /** Granted in HELLO when both ends can pass fds. */
  private scmRights = false;
  /** Granted in HELLO (1.2, native backend): vEVENTQ and FAULT fds are passed to the client too. */
  private eventFds = false;
  private nextLocalKey = 1;
  /** Our mappings of client memfds, by key (native backend; the simulator's go with its pages, ADR 0193). */
  private readonly outer = new Map<number, bigint>();
  /** MEM_SHARED regions (native backend): address in the session's process → key of their mapping. */
  private readonly sharedAt = new Map<number, number>();

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly backend: Backend,
    private readonly log: Logger,
    private readonly metrics: SessionMetrics,
    private readonly limits: SessionLimits,
    readonly peer: PeerCredentials | undefined,
    private readonly onClose: (s: Session) => void,
    private readonly fdPassing?: FdPassing,
  ) {
    this.reader = new FrameReader(limits.maxFrame);
    this.process = backend.spawn();
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('close', () => this.teardown('disconnected'));
    socket.on('error', (e) => this.log.debug({ err: e.message }, 'socket error'));
  }

  /** Queued event records over all subscriptions (a metric and an inspection figure). */
  get queueDepth(): number {
    let n = 0;
    for (const s of this.subs.values()) n += s.queued;
    return n;
  }

  /** Bytes queued to this client that the kernel has not taken yet (the client is not reading). */
  get unsent(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  /** Bytes of EVENT frames among them (bounded by each subscription's max_queued). */
  get unsentEventBytes(): number {
    let n = 0;
    for (const s of this.subs.values()) n += s.queuedBytes;
    return n;
  }

  /** Event reads dropped over all of this session's streams. */
  get eventsLost(): number {
    let n = this.lostOfEndedStreams;
    for (const s of this.subs.values()) n += s.lostTotal;
    return n;
  }

  liveObjects(): Map<string, number> {
    return this.closed ? new Map() : this.backend.liveObjects(this.process);
  }

  /** Server shutdown or an operator: close the connection (teardown follows on 'close'). */
  end(reason = 'shutdown'): void {
    this.teardown(reason);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      this.protocolError('framing', (e as Error).message);
      return;
    }
    for (const f of frames) {
      if (this.closed) return;
      this.handle(f);
    }
    if (this.reader.buffered > 0 && !this.stallTimer) {
      this.stallTimer = setTimeout(() => this.protocolError('stalled', `partial frame not completed in ${this.limits.stallMs} ms`), this.limits.stallMs);
    } else if (this.reader.buffered === 0 && this.stallTimer) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
  }

  /** A frame we cannot make sense of as a frame: say why, then disconnect. */
  private protocolError(kind: string, message: string, id = 0): void {
    this.metrics.protocolErrors.inc({ kind });
    this.log.warn({ session: this.id, kind, message }, 'protocol error, disconnecting');
    const w = frameWriter(64);
    w.string(message);
    this.send(finishFrame(w, id, OP.PROTOCOL_ERROR, FLAG.REPLY, EPROTO));
    this.socket.end();
    this.socket.destroySoon?.();
    this.teardown(kind);
  }

  private send(frame: Uint8Array): boolean {
    if (this.closed || this.socket.destroyed) return false;
    // Copy: frames built in the shared reply writer are reused by the next reply.
    this.write(Buffer.from(frame));
    if (this.socket.writableLength > this.limits.maxUnsent) {
      this.stalledReader(`more than ${this.limits.maxUnsent} bytes unsent`);
      return false;
    }
    return true;
  }

  /**
   * Every frame to the client goes through here. The socket never blocks us: what the kernel does not
   * take waits in the socket's buffer, and a client that takes nothing for stallMs is disconnected.
   */
  private write(frame: Uint8Array, flushed?: () => void): void {
    if (this.socket.writableLength === 0) this.lastFlush = Date.now();
    this.socket.write(frame, () => {
      this.lastFlush = Date.now();
      flushed?.();
    });
    if (this.socket.writableLength > 0 && !this.writeTimer) this.armWriteTimer(this.limits.stallMs);
  }

  private armWriteTimer(ms: number): void {
    this.writeTimer = setTimeout(() => {
      this.writeTimer = undefined;
      if (this.closed || this.socket.writableLength === 0) return;
      const idle = Date.now() - this.lastFlush;
      if (idle >= this.limits.stallMs) this.stalledReader(`nothing read for ${idle} ms with ${this.socket.writableLength} bytes waiting`);
      else this.armWriteTimer(this.limits.stallMs - idle);
    }, ms);
  }

  /** The client stopped reading: disconnect; 'close' tears its objects down like any disconnect. */
  private stalledReader(why: string): void {
    this.log.warn({ session: this.id, unsent: this.socket.writableLength, why }, 'client stopped reading, disconnecting');
    this.metrics.protocolErrors.inc({ kind: 'stalled-reader' });
    this.socket.destroy();
  }

  private handle(f: Frame): void {
    if (f.flags & FLAG.REPLY) return this.protocolError('unexpected-reply', 'clients send requests only', f.id);
    if (!this.greeted) {
      if (f.op !== OP.HELLO) return this.protocolError('no-hello', 'the first frame must be HELLO', f.id);
      return this.hello(f);
    }
    const opName = OP_NAMES.get(f.op);
    if (opName === undefined || f.op === OP.HELLO || f.op === OP.EVENT || f.op === OP.PROTOCOL_ERROR) {
      this.metrics.syscalls.inc({ op: 'unknown', errno: 'ENOSYS' });
      this.send(this.errorReply(f, ERRNO.ENOSYS, `unknown opcode ${f.op}`));
      return;
    }
    if (f.op === OP.POLL) return void this.poll(f);
    this.syncCall(f, opName);
  }

  private hello(f: Frame): void {
    const r = new Reader(f.payload);
    let major: number;
    let wanted: number;
    try {
      if (r.u32() !== HELLO_MAGIC) throw new ProtocolError('bad magic');
      major = r.u32();
      r.u32();
      wanted = r.u32();
      this.clientName = r.string().slice(0, 128);
    } catch (e) {
      return this.protocolError('bad-hello', (e as Error).message, f.id);
    }
    if (major !== PROTOCOL_MAJOR) {
      return this.protocolError('version', `protocol major ${major} is not supported (this daemon speaks ${PROTOCOL_MAJOR})`, f.id);
    }
    this.greeted = true;
    // SCM_RIGHTS only when asked for: a 1.0 client gets exactly the 1.0 reply.
    this.scmRights = this.fdPassing !== undefined && (wanted & FEATURE.SCM_RIGHTS) !== 0;
    // Only real fds can be passed: the simulator's vEVENTQ and FAULT files exist in its model only.
    this.eventFds = this.scmRights && this.backend.name === 'native' && (wanted & FEATURE.EVENT_FDS) !== 0;
    const granted = FEATURES | (this.scmRights ? FEATURE.SCM_RIGHTS : 0) | (this.eventFds ? FEATURE.EVENT_FDS : 0);
    const w = frameWriter(64);
    w.u32(HELLO_MAGIC).u32(PROTOCOL_MAJOR).u32(PROTOCOL_MINOR).u32(granted).u32(this.id).string(this.backend.name);
    if (this.scmRights) w.string(this.fdPassing!.inbox.path).bytes(this.fdPassing!.inbox.register(this.id));
    this.send(finishFrame(w, f.id, OP.HELLO, FLAG.REPLY));
    this.log.info({ session: this.id, client: this.clientName, peer: this.peer, scmRights: this.scmRights, eventFds: this.eventFds }, 'client greeted');
  }

  private errorReply(f: Frame, errno: number, detail: string): Uint8Array {
    const w = frameWriter(64);
    w.f64(0).u32(0).string(detail);
    return finishFrame(w, f.id, f.op, FLAG.REPLY, errno);
  }

  /** A synchronous syscall: apply the client's memory changes, run it, return result and our changes. */
  private syncCall(f: Frame, opName: string): void {
    const r = new Reader(f.payload);
    let run: () => { ret: number; out?: Uint8Array };
    let ioctlName: string | undefined;
    try {
      const parsed = this.parse(f.op, r);
      run = parsed.run;
      ioctlName = parsed.ioctlName;
      if (f.flags & FLAG.MEM) this.mirror.applyChanges(r);
      r.end();
    } catch (e) {
      const errno = e instanceof Failure ? e.errno : EPROTO;
      if (errno === EPROTO) this.metrics.protocolErrors.inc({ kind: 'payload' });
      this.metrics.syscalls.inc({ op: opName, errno: errnoName(errno) });
      this.send(this.errorReply(f, errno, (e as Error).message));
      return;
    }
    let ret = 0;
    let out: Uint8Array | undefined;
    let errno = 0;
    let detail = '';
    const t0 = ioctlName ? process.hrtime.bigint() : 0n;
    try {
      ({ ret, out } = run());
    } catch (e) {
      errno = errnoOfError(e);
      detail = (e as { detail?: string }).detail ?? (errno === ERRNO.EIO ? String((e as Error)?.message ?? e) : '');
      out = (e as { out?: Uint8Array }).out;
    }
    if (ioctlName) {
      this.ioctlCount++;
      this.metrics.latency.observe({ ioctl: ioctlName }, Number(process.hrtime.bigint() - t0) / 1e9);
      this.metrics.ioctls.inc({ ioctl: ioctlName, errno: errno ? errnoName(errno) : '0' });
    }
    this.metrics.syscalls.inc({ op: opName, errno: errno ? errnoName(errno) : '0' });
    const w = this.reply.reset(16);
    w.f64(ret).bytes(out ?? EMPTY).string(detail);
    this.mirror.writeChanges(w);
    this.send(finishFrame(w, f.id, f.op, FLAG.REPLY | FLAG.MEM, errno));
  }

  /** Decodes a request body into the call to make (parsing first, so a bad payload runs nothing). */
  private parse(op: number, r: Reader): { run: () => { ret: number; out?: Uint8Array }; ioctlName?: string } {
    const p = this.process;
    if (MEM_FEATURE_OPS.has(op) && (!p.memfdCreate || !p.ftruncate)) throw new Failure(ERRNO.ENOSYS, 'memfd is not offered by this backend');
    if (FD_OPS.has(op) && !this.scmRights) throw new Failure(ERRNO.EOPNOTSUPP, 'fd passing (SCM_RIGHTS) was not negotiated');
    switch (op) {
      case OP.OPEN: {
        const flags = r.u32();
        const path = r.string();
        return { run: () => ({ ret: p.open(path, flags) }) };
      }
      case OP.CLOSE: {
        const fd = r.i32();
        return { run: () => (this.dropSubsOf(fd), p.close(fd), { ret: 0 }) };
      }
      case OP.IOCTL: {
        const fd = r.i32();
        const request = r.u32();
        const kind = r.u8();
        let arg: IoctlArg;
        if (kind === 0) arg = null;
        else if (kind === 1) arg = r.f64();
        else if (kind === 2) arg = r.bytes().slice();
        else throw new ProtocolError(`bad ioctl argument kind ${kind}`);
        const ioctlName = ioctlByRequest(request)?.name ?? `0x${request.toString(16)}`;
        return {
          ioctlName,
          run: () => {
            try {
              const ret = p.ioctl(fd, request, arg);
              if (this.eventFds && arg instanceof Uint8Array) this.passEventFd(request, arg);
              return { ret, out: arg instanceof Uint8Array ? arg : undefined };
            } catch (e) {
              // Out fields the kernel writes on failure travel back too.
              if (arg instanceof Uint8Array && e && typeof e === 'object') (e as { out?: Uint8Array }).out = arg;
              throw e;
            }
          },
        };
      }
      case OP.READ: {
        const fd = r.i32();
        const length = r.u32();
        if (length > this.limits.maxFrame) throw new ProtocolError(`read of ${length} bytes is over the frame limit`);
        return {
          run: () => {
            const buf = new Uint8Array(length);
            const n = p.read(fd, buf);
            return { ret: n, out: buf.subarray(0, Math.max(0, n)) };
          },
        };
      }
      case OP.WRITE: {
        const fd = r.i32();
        const data = r.bytes().slice();
        return { run: () => ({ ret: p.write(fd, data) }) };
      }
      case OP.MMAP: {
        const fd = r.i32();
        const length = r.f64();
        const offset = r.u64();
        return {
          run: () => {
            const m = p.mmap(fd, length, offset);
            this.mirror.add(Number(m.addr), m.bytes);
            return { ret: Number(m.addr), out: m.bytes };
          },
        };
      }
      case OP.MUNMAP: {
        const addr = r.u64();
        const length = r.f64();
        return { run: () => (p.munmap(addr, length), this.forget(Number(addr)), { ret: 0 }) };
      }
      case OP.MEM_ALLOC: {
        const length = r.f64();
        return {
          run: () => {
            const m = p.memory.alloc(length);
            const addr = Number(m.addr);
            this.mirror.add(addr, m.bytes);
            this.anon.add(addr);
            // The mapping's real length (page-rounded here, maybe not on every backend), as a u32.
            const len = new Uint8Array(4);
            new DataView(len.buffer).setUint32(0, m.bytes.length, true);
            return { ret: addr, out: len };
          },
        };
      }
      case OP.MEM_FREE: {
        const addr = r.u64();
        return { run: () => (this.freeMemory(addr), this.forget(Number(addr)), { ret: 0 }) };
      }
      case OP.FD_IMPORT: {
        const tag = r.u32();
        return { run: () => ({ ret: this.importFd(tag) }) };
      }
      case OP.MEM_SHARED: {
        const tag = r.u32();
        const length = r.f64();
        return {
          run: () => {
            const addr = this.sharedMemory(tag, length);
            const len = new Uint8Array(4);
            new DataView(len.buffer).setUint32(0, length, true);
            return { ret: addr, out: len };
          },
        };
      }
      case OP.MEMFD_CREATE: {
        const name = r.string();
        return { run: () => ({ ret: p.memfdCreate!(name) }) };
      }
      case OP.FTRUNCATE: {
        const fd = r.i32();
        const size = r.f64();
        return { run: () => (p.ftruncate!(fd, size), { ret: 0 }) };
      }
      case OP.SUBSCRIBE: {
        const fd = r.i32();
        const readSize = Math.min(r.u32(), this.limits.maxFrame - 64);
        const maxQueued = Math.max(1, r.u32());
        return { run: () => ({ ret: this.subscribe(fd, readSize, maxQueued) }) };
      }
      case OP.UNSUBSCRIBE: {
        const sub = r.u32();
        return {
          run: () => {
            const s = this.subs.get(sub);
            if (s) this.endStream(s);
            return { ret: 0 };
          },
        };
      }
      default:
        throw new Failure(ERRNO.ENOSYS, `opcode ${op} is not a synchronous call`);
    }
  }

  /**
   * A vEVENTQ or FAULT fd the kernel just returned goes to the client too (EVENT_FDS), before the
   * reply that names it, so the client finds it queued on its fd channel when the reply arrives.
   * The session keeps its own copy: the client names the fd by this number in every later call.
   */
  private passEventFd(request: number, arg: Uint8Array): void {
    let fd = -1;
    if (request === IOMMU_VEVENTQ_ALLOC && arg.length >= iommu_veventq_alloc.size) fd = iommu_veventq_alloc.get(arg, 'out_veventq_fd');
    else if (request === IOMMU_FAULT_QUEUE_ALLOC && arg.length >= iommu_fault_alloc.size) fd = iommu_fault_alloc.get(arg, 'out_fault_fd');
    if (fd < 0) return;
    // A client that never attached its channel still has the fd here, through READ/POLL/SUBSCRIBE.
    if (!this.fdPassing!.inbox.give(this.id, fd)) this.log.debug({ session: this.id, fd }, 'no fd channel attached: event fd not passed');
  }

  /** The fd the client passed with `tag`, now ours; EBADF when none came. */
  private takeFd(tag: number): number {
    const fd = this.fdPassing!.inbox.take(this.id, tag);
    if (fd === undefined) throw new SystemError('EBADF', 'recvmsg', `no fd was passed with tag ${tag}`);
    return fd;
  }

  /** Maps `length` bytes (default: all) of a passed memfd, which must be sealed against shrinking so our accesses cannot fault. */
  private mapOuter(fd: number, length?: number): { addr: bigint; bytes: Uint8Array } {
    const size = mappableSize(this.fdPassing!.bridge, fd);
    length ??= size;
    if (length <= 0 || length > size) throw new SystemError('EINVAL', 'mmap', `the memfd holds ${size} bytes, ${length} asked for`);
    const m = this.fdPassing!.bridge.mmap(fd, length, 0n, PROT_RW, MAP_SHARED);
    if (typeof m === 'number') throw new SystemError('ENOMEM', 'mmap', `errno ${-m}`);
    return { addr: m[0], bytes: new Uint8Array(m[1]) };
  }

  /**
   * FD_IMPORT: the passed fd as an fd of the session's process. The real kernel takes it as is; the
   * simulator gets a memfd whose pages are the client's (ADR 0193).
   */
  private importFd(tag: number): number {
    const fd = this.takeFd(tag);
    const p = this.process as BackendProcess & { adopt?(fd: number): number };
    if (this.backend.name === 'native' && p.adopt) return p.adopt(fd);
    try {
      return importMemfd(p, this.fdPassing!.bridge, fd);
    } finally {
      this.fdPassing!.bridge.close(fd);
    }
  }

  /** MEM_SHARED: user memory backed by the client's memfd (on the simulator, its pages adopted: ADR 0193). */
  private sharedMemory(tag: number, length: number): number {
    const fd = this.takeFd(tag);
    try {
      if (this.backend.name !== 'native') {
        // Freed like MEM_ALLOC's memory (MEM_FREE or teardown); our mapping goes with the pages.
        const addr = sharedMemory(this.process, this.fdPassing!.bridge, fd, length);
        this.anon.add(addr);
        return addr;
      }
      const outer = this.mapOuter(fd, length);
      const key = this.nextLocalKey++;
      this.outer.set(key, outer.addr);
      // The real kernel pins our mapping itself: the same pages as the client's.
      const addr = Number(outer.addr);
      this.sharedAt.set(addr, key);
      return addr;
    } finally {
      this.fdPassing!.bridge.close(fd);
    }
  }

  private freeMemory(addr: bigint): void {
    const key = this.sharedAt.get(Number(addr));
    // Native shared memory is only our mapping of the memfd; everything else is the process's.
    if (key === undefined) return this.process.memory.free(addr);
    this.sharedAt.delete(Number(addr));
    this.fdPassing!.bridge.munmap(this.outer.get(key)!, -1);
    this.outer.delete(key);
  }

  private forget(addr: number): void {
    this.mirror.delete(addr);
    this.anon.delete(addr);
  }

  private async poll(f: Frame): Promise<void> {
    let ret = 0;
    let errno = 0;
    try {
      const r = new Reader(f.payload);
      const fd = r.i32();
      const events = r.u32();
      const timeout = r.i32();
      r.end();
      ret = await this.process.poll(fd, events, timeout);
    } catch (e) {
      errno = e instanceof ProtocolError ? EPROTO : errnoOfError(e);
    }
    this.metrics.syscalls.inc({ op: 'POLL', errno: errno ? errnoName(errno) : '0' });
    const w = frameWriter(32);
    w.f64(ret).u32(0).string('');
    this.send(finishFrame(w, f.id, OP.POLL, FLAG.REPLY, errno));
  }

  /** Starts streaming reads of `fd`; EBADF if it is not open (checked by a zero-timeout poll). */
  private subscribe(fd: number, readSize: number, maxQueued: number): number {
    // Reading zero bytes would be meaningless; an fd the process does not hold fails like read would.
    const id = this.nextSub++;
    const sub: Subscription = { id, fd, readSize, maxQueued, queued: 0, queuedBytes: 0, lost: 0, lostTotal: 0, active: true };
    this.subs.set(id, sub);
    void this.pump(sub);
    return id;
  }

  /**
   * Waits for the fd to be readable, reads a record batch and queues it to the client. A stream
   * never blocks on its client: the fd is always drained (so the kernel queue does not overflow on
   * our account), and a read that finds max_queued frames still unsent is dropped and counted.
   */
  private async pump(sub: Subscription): Promise<void> {
    const buf = new Uint8Array(sub.readSize);
    while (sub.active && !this.closed) {
      let revents: number;
      try {
        // A bounded wait, so an unsubscribed or closed stream stops within a second.
        revents = await this.process.poll(sub.fd, POLLIN, 1000);
      } catch {
        break;
      }
      if (!sub.active || this.closed) break;
      if ((revents & POLLIN) === 0) {
        if (revents & ~POLLIN) break; // POLLNVAL/POLLERR/POLLHUP: the fd is gone
        continue;
      }
      let n: number;
      try {
        n = this.process.read(sub.fd, buf);
      } catch (e) {
        if ((e as { code?: string }).code === 'EAGAIN') continue;
        break;
      }
      if (n <= 0) continue;
      if (sub.queued >= sub.maxQueued) {
        sub.lost++;
        sub.lostTotal++;
        this.metrics.lostEvents.inc();
        continue;
      }
      this.eventsSent++;
      this.pushEvent(sub, buf.subarray(0, n));
    }
    this.endStream(sub);
  }

  /** One EVENT frame: the reads lost since the last one, then the data (maybe none). */
  private pushEvent(sub: Subscription, data: Uint8Array): void {
    if (this.closed || this.socket.destroyed) return;
    const w = frameWriter(data.length + 32);
    w.u32(sub.lost).bytes(data);
    sub.lost = 0;
    const frame = finishFrame(w, sub.id, OP.EVENT, FLAG.PUSH);
    sub.queued++;
    sub.queuedBytes += frame.length;
    this.write(frame, () => {
      sub.queued--;
      sub.queuedBytes -= frame.length;
      // Room again: report a loss at once rather than with the next record, which may never come.
      if (sub.lost > 0 && sub.active && sub.queued < sub.maxQueued) this.pushEvent(sub, EMPTY);
    });
  }

  private endStream(sub: Subscription): void {
    sub.active = false;
    if (this.subs.get(sub.id) === sub) this.subs.delete(sub.id);
    this.lostOfEndedStreams += sub.lostTotal;
    sub.lostTotal = 0;
  }

  private dropSubsOf(fd: number): void {
    for (const s of [...this.subs.values()]) if (s.fd === fd) this.endStream(s);
  }

  /** Disconnect or death: every object the client held goes, as at process exit. */
  private teardown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stallTimer) clearTimeout(this.stallTimer);
    if (this.writeTimer) clearTimeout(this.writeTimer);
    for (const s of [...this.subs.values()]) this.endStream(s);
    const objects = Object.fromEntries(this.backend.liveObjects(this.process));
    try {
      this.backend.exit(this.process);
      for (const addr of this.anon) this.process.memory.free(BigInt(addr));
    } catch (e) {
      this.log.error({ session: this.id, err: (e as Error).message }, 'teardown failed');
    }
    this.anon.clear();
    if (this.fdPassing) {
      this.fdPassing.inbox.unregister(this.id);
      for (const addr of this.outer.values()) this.fdPassing.bridge.munmap(addr, -1);
    }
    this.outer.clear();
    this.log.info({ session: this.id, reason, ioctls: this.ioctlCount, objectsTornDown: objects }, 'client gone, context torn down');
    this.onClose(this);
  }
}

const EMPTY = new Uint8Array(0);
