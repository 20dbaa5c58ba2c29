// A Process whose syscalls run in viommud: connectDaemonProcess(socketPath) gives an object that
// scenarios and @viommu/client use exactly like an in-process SimProcess.
import type { IoctlArg, Process, UserMemory } from '@viommu/uapi';
import { IOMMU_FAULT_QUEUE_ALLOC, IOMMU_VEVENTQ_ALLOC, SystemError } from '@viommu/uapi';
import { Reader, Writer } from './buffer.js';
import { toSystemError } from './errno.js';
import { canServeEventFds, FdSender, LocalEventFds, sealedMemfd, type FdBridge } from './fd-channel.js';
import { finishFrame } from './frames.js';
import { MirrorSet } from './mirror.js';
import { SyncChannel } from './sync-channel.js';
import { FEATURE, FLAG, HEADER_SIZE, HELLO_MAGIC, OP, PROTOCOL_MAJOR, PROTOCOL_MINOR, readHeader } from './wire.js';

export interface ConnectOptions {
  /** How long a synchronous call waits for the daemon before failing with ETIMEDOUT. Default 30 s. */
  readonly timeoutMs?: number;
  /** Sent in HELLO and logged by the daemon. */
  readonly clientName?: string;
  /**
   * @viommu/native's addon (`loadAddon()`), to pass fds as SCM_RIGHTS (feature SCM_RIGHTS, ADR 0129)
   * when the daemon offers it too. Without it, or with an older daemon, everything is mirrored.
   */
  readonly fdBridge?: FdBridge;
  /**
   * With SCM_RIGHTS: `memory.alloc` of at least this many bytes is a memfd shared with the daemon
   * instead of a mirrored copy (no per-call page transfer). Default: never (false).
   */
  readonly sharedMemoryMin?: number | false;
  /**
   * With SCM_RIGHTS on a native daemon (1.2, EVENT_FDS): take the vEVENTQ and FAULT fds the kernel
   * returns and serve read/write/poll of them here, on the real fd. Default true; false keeps them
   * in the daemon (READ/POLL/SUBSCRIBE), as a 1.1 client does.
   */
  readonly eventFds?: boolean;
}

export interface SessionInfo {
  readonly sessionId: number;
  readonly backend: string;
  readonly features: number;
  readonly major: number;
  readonly minor: number;
}

/** One record pushed by an event subscription; `lost` counts records the daemon dropped before it. */
export interface StreamedEvent {
  readonly data: Uint8Array;
  readonly lost: number;
}

const IOCTL_NULL = 0;
const IOCTL_NUMBER = 1;
const IOCTL_BYTES = 2;
const PAGE = 4096;

interface Reply {
  ret: number;
  out: Uint8Array;
}

export class DaemonProcess implements Process {
  readonly memory: UserMemory;
  session!: SessionInfo;
  private readonly mirror = new MirrorSet();
  private readonly w = new Writer(4096, HEADER_SIZE);
  private nextId = 1;
  private readonly asyncWaiters = new Map<number, (frame: Uint8Array) => void>();
  private readonly subscriptions = new Map<number, (e: StreamedEvent) => void>();
  private channel!: SyncChannel;
  private bridge: FdBridge | undefined;
  private fds: FdSender | undefined;
  private sharedMin = Infinity;
  private wantEventFds = true;
  /** Event fds the daemon passed us (EVENT_FDS), by their number in the session. */
  private events: LocalEventFds | undefined;
  /** Shared regions by address: our own mapping of the memfd, unmapped at free or disconnect. */
  private readonly shared = new Map<number, { local: bigint; length: number }>();

  private constructor() {
    this.memory = {
      alloc: (length) => {
        if (this.fds && length >= this.sharedMin) return this.allocShared(length);
        const { ret, out } = this.sync(OP.MEM_ALLOC, 'mmap', (w) => w.f64(length));
        const size = out.length === 4 ? new DataView(out.buffer, out.byteOffset).getUint32(0, true) : Math.ceil(length / PAGE) * PAGE;
        const bytes = new Uint8Array(size);
        this.mirror.add(ret, bytes);
        return { addr: BigInt(ret), bytes };
      },
      free: (addr) => {
        this.sync(OP.MEM_FREE, 'munmap', (w) => w.u64(addr));
        this.mirror.delete(Number(addr));
        this.unmapShared(Number(addr));
      },
    };
  }

  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<DaemonProcess> {
    const p = new DaemonProcess();
    p.channel = await SyncChannel.open(
      socketPath,
      { onFrame: (f) => p.onAsyncFrame(f), onClosed: () => p.onClosed() },
      opts.timeoutMs ?? 30_000,
      opts.fdBridge,
    );
    p.channel.unrefAll();
    p.bridge = opts.fdBridge;
    if (typeof opts.sharedMemoryMin === 'number') p.sharedMin = opts.sharedMemoryMin;
    p.wantEventFds = opts.eventFds !== false && canServeEventFds(opts.fdBridge);
    p.hello(opts.clientName ?? 'viommu-client');
    return p;
  }

  private hello(name: string): void {
    const id = this.nextId++;
    const w = this.w.reset(HEADER_SIZE);
    const wanted =
      FEATURE.MIRRORED_MEMORY | FEATURE.EVENT_STREAM | FEATURE.MEMFD | (this.bridge ? FEATURE.SCM_RIGHTS : 0) | (this.wantEventFds ? FEATURE.EVENT_FDS : 0);
    w.u32(HELLO_MAGIC).u32(PROTOCOL_MAJOR).u32(PROTOCOL_MINOR).u32(wanted).string(name);
    const reply = this.channel.call(finishFrame(w, id, OP.HELLO, 0), id, 'connect');
    const h = readHeader(reply);
    const r = new Reader(reply.subarray(HEADER_SIZE));
    if (h.errno !== 0) {
      this.channel.close();
      throw toSystemError(h.errno, 'connect', `daemon refused the handshake: ${r.remaining >= 4 ? r.string() : ''}`);
    }
    if (r.u32() !== HELLO_MAGIC) throw new SystemError('EPROTO', 'connect', 'not a viommud');
    const major = r.u32();
    const minor = r.u32();
    const features = r.u32();
    const sessionId = r.u32();
    const backend = r.string();
    this.session = { sessionId, backend, features, major, minor };
    // 1.1: with SCM_RIGHTS granted, the fd channel's path and this session's token follow.
    if (this.bridge && features & FEATURE.SCM_RIGHTS) {
      const path = r.string();
      const token = r.bytes();
      this.fds = FdSender.connect(this.bridge, path, sessionId, token);
      if (features & FEATURE.EVENT_FDS && canServeEventFds(this.bridge)) this.events = new LocalEventFds(this.bridge);
    }
  }

  /** Whether the daemon passes event fds to us (EVENT_FDS), so their reads run here. */
  get servesEventFds(): boolean {
    return this.events !== undefined;
  }

  /** Whether `fd` (the session's number) is an event fd we hold ourselves. */
  holdsLocally(fd: number): boolean {
    return this.events?.has(fd) ?? false;
  }

  /** Whether fds can be passed to the daemon (both ends have @viommu/native). */
  get canPassFds(): boolean {
    return this.fds !== undefined;
  }

  /**
   * Passes an fd of this process (a memfd for IOMMU_IOAS_MAP_FILE) to the daemon as SCM_RIGHTS and
   * returns the fd number it has in the session's process, for ioctl structs. The memfd must be
   * sealed against shrinking (`sealedMemfd` makes one). EOPNOTSUPP without the SCM_RIGHTS feature.
   */
  passFd(fd: number): number {
    if (!this.fds) throw new SystemError('EOPNOTSUPP', 'sendmsg', 'fd passing needs @viommu/native on both ends (feature SCM_RIGHTS)');
    const tag = this.fds.send(fd);
    return this.sync(OP.FD_IMPORT, 'sendmsg', (w) => w.u32(tag)).ret;
  }

  /** memory.alloc through a sealed memfd mapped on both sides: the bytes are shared, not mirrored. */
  private allocShared(length: number): { addr: bigint; bytes: Uint8Array } {
    const bridge = this.bridge!;
    const size = Math.ceil(length / PAGE) * PAGE;
    const m = sealedMemfd(bridge, 'viommu-shared', size);
    let ret: number;
    try {
      const tag = this.fds!.send(m.fd);
      ret = this.sync(OP.MEM_SHARED, 'mmap', (w) => w.u32(tag).f64(size)).ret;
    } catch (e) {
      bridge.munmap(m.addr, -1);
      throw e;
    } finally {
      // The mappings on both sides keep the memory; the fd itself is no longer needed here.
      bridge.close(m.fd);
    }
    this.shared.set(ret, { local: m.addr, length: size });
    return { addr: BigInt(ret), bytes: m.bytes };
  }

  private unmapShared(addr: number): void {
    const s = this.shared.get(addr);
    if (!s) return;
    this.shared.delete(addr);
    this.bridge!.munmap(s.local, -1);
  }

  /** One synchronous request: body, then our memory changes; the reply's changes are applied. */
  private sync(op: number, syscall: string, body: (w: Writer) => void): Reply {
    const id = this.nextId++;
    const w = this.w.reset(HEADER_SIZE);
    body(w);
    this.mirror.writeChanges(w);
    const reply = this.channel.call(finishFrame(w, id, op, FLAG.MEM), id, syscall);
    const h = readHeader(reply);
    const r = new Reader(reply.subarray(HEADER_SIZE));
    if (h.op === OP.PROTOCOL_ERROR) throw new SystemError('EPROTO', syscall, r.string());
    const ret = r.f64();
    const out = r.bytes();
    const detail = r.string();
    if (h.flags & FLAG.MEM) this.mirror.applyChanges(r);
    if (h.errno !== 0) {
      const err = toSystemError(h.errno, syscall, detail);
      (err as { out?: Uint8Array }).out = out;
      throw err;
    }
    return { ret, out };
  }

  open(path: string, flags = 2): number {
    return this.sync(OP.OPEN, 'open', (w) => w.u32(flags).string(path)).ret;
  }

  close(fd: number): void {
    // The session's copy first: its errno is the one a close reports; then ours.
    this.sync(OP.CLOSE, 'close', (w) => w.i32(fd));
    this.events?.drop(fd);
  }

  ioctl(fd: number, request: number, arg: IoctlArg): number {
    let reply: Reply;
    try {
      reply = this.sync(OP.IOCTL, 'ioctl', (w) => {
        w.i32(fd).u32(request >>> 0);
        if (arg === null) w.u8(IOCTL_NULL);
        else if (typeof arg === 'number') w.u8(IOCTL_NUMBER).f64(arg);
        else w.u8(IOCTL_BYTES).bytes(arg);
      });
    } catch (e) {
      // The kernel writes some out fields even when it fails (IOAS_IOVA_RANGES' num_iovas on EMSGSIZE).
      const out = (e as { out?: Uint8Array }).out;
      if (arg instanceof Uint8Array && out && out.length === arg.length) arg.set(out);
      throw e;
    }
    if (arg instanceof Uint8Array && reply.out.length === arg.length) arg.set(reply.out);
    // The daemon sent the new fd on the fd channel before this reply: it is queued there now.
    if (this.events && (request === IOMMU_VEVENTQ_ALLOC || request === IOMMU_FAULT_QUEUE_ALLOC)) {
      for (const [fd, ours] of this.fds!.receive()) this.events.add(fd, ours);
    }
    return reply.ret;
  }

  read(fd: number, buf: Uint8Array): number {
    if (this.events?.has(fd)) return this.events.read(fd, buf);
    const { ret, out } = this.sync(OP.READ, 'read', (w) => w.i32(fd).u32(buf.length));
    buf.set(out.subarray(0, Math.min(out.length, buf.length)));
    return ret;
  }

  write(fd: number, buf: Uint8Array): number {
    if (this.events?.has(fd)) return this.events.write(fd, buf);
    return this.sync(OP.WRITE, 'write', (w) => w.i32(fd).bytes(buf)).ret;
  }

  poll(fd: number, events: number, timeoutMs: number): Promise<number> {
    if (this.events?.has(fd)) return this.events.poll(fd, events, timeoutMs);
    const id = this.nextId++;
    const w = new Writer(64, HEADER_SIZE);
    w.i32(fd).u32(events).i32(timeoutMs);
    return new Promise((resolve, reject) => {
      this.channel.hold();
      this.asyncWaiters.set(id, (frame) => {
        this.channel.release();
        const h = readHeader(frame);
        const r = new Reader(frame.subarray(HEADER_SIZE));
        const ret = r.f64();
        r.bytes();
        const detail = r.string();
        if (h.errno !== 0) reject(toSystemError(h.errno, 'poll', detail));
        else resolve(ret);
      });
      if (this.channel.closed) this.onClosed();
      else this.channel.send(finishFrame(w, id, OP.POLL, 0));
    });
  }

  mmap(fd: number, length: number, offset: bigint): { addr: bigint; bytes: Uint8Array } {
    const { ret, out } = this.sync(OP.MMAP, 'mmap', (w) => w.i32(fd).f64(length).u64(offset));
    const bytes = out.slice();
    this.mirror.add(ret, bytes);
    return { addr: BigInt(ret), bytes };
  }

  munmap(addr: bigint, length: number): void {
    this.sync(OP.MUNMAP, 'munmap', (w) => w.u64(addr).f64(length));
    this.mirror.delete(Number(addr));
  }

  /** memfd_create(2) on the daemon's side (IOMMU_IOAS_MAP_FILE takes the fd). */
  memfdCreate(name = 'memfd'): number {
    return this.sync(OP.MEMFD_CREATE, 'memfd_create', (w) => w.string(name)).ret;
  }

  ftruncate(fd: number, size: number): void {
    this.sync(OP.FTRUNCATE, 'ftruncate', (w) => w.i32(fd).f64(size));
  }

  /**
   * Streams what `read(fd)` would return (vEVENTQ or FAULT records) as the daemon sees it become
   * readable; at most `maxQueued` records wait in the daemon, the rest are counted as lost.
   */
  subscribe(fd: number, onEvent: (e: StreamedEvent) => void, opts: { readSize?: number; maxQueued?: number } = {}): number {
    const { ret } = this.sync(OP.SUBSCRIBE, 'subscribe', (w) => w.i32(fd).u32(opts.readSize ?? 4096).u32(opts.maxQueued ?? 256));
    this.subscriptions.set(ret, onEvent);
    this.channel.hold();
    return ret;
  }

  unsubscribe(subscription: number): void {
    if (!this.subscriptions.delete(subscription)) return;
    this.channel.release();
    this.sync(OP.UNSUBSCRIBE, 'unsubscribe', (w) => w.u32(subscription));
  }

  /**
   * Stops reading from the daemon (a client that falls behind): replies and EVENT frames wait in
   * the socket and then in the daemon, which drops stream records past `maxQueued` and disconnects
   * a client that reads nothing for its stall timeout. A synchronous call cannot complete while
   * paused (it would wait for its reply, then time out).
   */
  pauseReading(): void {
    this.channel.pauseReading();
  }

  resumeReading(): void {
    this.channel.resumeReading();
  }

  /**
   * Sends a finished frame as is, without waiting (pipelined requests, malformed input in tests).
   * Replies to it are dropped; a request sent this way must not change mirrored memory (ADR 0120).
   */
  sendFrame(frame: Uint8Array): void {
    this.channel.send(frame);
  }

  /** Ends the session: the daemon tears down every object this connection held. */
  disconnect(): void {
    this.channel.close();
    this.events?.dropAll();
    this.fds?.close();
    this.fds = undefined;
    for (const addr of [...this.shared.keys()]) this.unmapShared(addr);
  }

  get connected(): boolean {
    return !this.channel.closed;
  }

  private onAsyncFrame(frame: Uint8Array): void {
    const h = readHeader(frame);
    if (h.flags & FLAG.PUSH) {
      const handler = this.subscriptions.get(h.id);
      if (!handler) return;
      const r = new Reader(frame.subarray(HEADER_SIZE));
      const lost = r.u32();
      handler({ lost, data: r.bytes() });
      return;
    }
    const waiter = this.asyncWaiters.get(h.id);
    if (waiter) {
      this.asyncWaiters.delete(h.id);
      waiter(frame);
    }
  }

  private onClosed(): void {
    for (const [id, waiter] of this.asyncWaiters) {
      this.asyncWaiters.delete(id);
      const w = new Writer(64, HEADER_SIZE);
      w.f64(0).u32(0).string('the daemon connection closed');
      waiter(finishFrame(w, id, OP.POLL, FLAG.REPLY, 104 /* ECONNRESET */));
    }
  }
}

/** Connects to viommud and performs the handshake; the result is a Process. */
export function connectDaemonProcess(socketPath: string, opts?: ConnectOptions): Promise<DaemonProcess> {
  return DaemonProcess.connect(socketPath, opts);
}
