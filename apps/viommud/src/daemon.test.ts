// viommud end to end: a real daemon process on a real Unix socket in a temp dir, real clients.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { iommufd_viommu } from '@viommu/backend-mock';
import { connectDaemonProcess, FLAG, FrameReader, PROTOCOL_MINOR, finishFrame, frameWriter, HELLO_MAGIC, OP, type DaemonProcess, type Frame } from '@viommu/protocol';
import {
  ERRNO,
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  iommu_destroy,
  iommu_ioas_alloc,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_viommu_event_selftest,
  iommufd_vevent_header,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
} from '@viommu/uapi';
import { buildDaemon, sample, startDaemon, type RunningDaemon } from './spawn-daemon.js';
import { selftestThroughDaemon } from './testing/daemon-tests.js';

let daemon: RunningDaemon;
/** A fresh simulated host per connection, as each in-process scenario gets one. */
let perClient: RunningDaemon;
/** One simulated host for every connection (the default), with default limits. */
let shared: RunningDaemon;

beforeAll(async () => {
  buildDaemon();
  daemon = await startDaemon(['--stall-ms', '300', '--max-frame', String(1 << 20)]);
  perClient = await startDaemon(['--sim-host-per-client']);
  shared = await startDaemon();
  // The build runs first and takes as long as the machine needs (not a limit on the daemon).
}, 600_000);

// Each stop waits up to the daemon's shutdown deadline for clients still connected.
afterAll(async () => {
  await daemon?.stop();
  await perClient?.stop();
  await shared?.stop();
}, 120_000);

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

function allocIoas(p: DaemonProcess, fd: number): number {
  const arg = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size, flags: 0, out_ioas_id: 0 });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, arg);
  return iommu_ioas_alloc.get(arg, 'out_ioas_id') as number;
}

function mapFixed(p: DaemonProcess, fd: number, ioas: number, va: bigint, length: number, iova: bigint): void {
  const arg = iommu_ioas_map.encode({
    size: iommu_ioas_map.size,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas,
    __reserved: 0,
    user_va: va,
    length: BigInt(length),
    iova,
  });
  p.ioctl(fd, IOMMU_IOAS_MAP, arg);
}

/** A raw connection for malformed input: sends bytes, collects frames, reports close. */
function raw(path: string): Promise<{ sock: Socket; frames: Frame[]; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const reader = new FrameReader();
    const frames: Frame[] = [];
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('data', (d) => frames.push(...reader.push(d)));
    sock.on('error', () => {});
    sock.once('connect', () => resolve({ sock, frames, closed }));
  });
}

function hello(id = 1, major = 1): Uint8Array {
  const w = frameWriter();
  w.u32(HELLO_MAGIC).u32(major).u32(0).u32(0).string('raw-test');
  return finishFrame(w, id, OP.HELLO, 0).slice();
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('the socket', () => {
  it('is created 0600, and the handshake reports version, features and backend', async () => {
    expect(statSync(daemon.socketPath).mode & 0o777).toBe(0o600);
    const p = await connectDaemonProcess(daemon.socketPath);
    expect(p.session).toMatchObject({ major: 1, minor: PROTOCOL_MINOR, backend: 'sim' });
    expect(p.session.features & 1).toBe(1);
    p.disconnect();
  });

  it('logs each connection as JSON with its peer credentials (SO_PEERCRED through @viommu/native)', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { clientName: 'cred-test' });
    await until(() => daemon.logs.some((l) => l['msg'] === 'client greeted' && l['client'] === 'cred-test'), 'the greeting log');
    const rec = daemon.logs.find((l) => l['msg'] === 'client greeted' && l['client'] === 'cred-test')!;
    expect(rec['peer']).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    p.disconnect();
  });
});

/**
 * The selftest port, on a host per client and on one host shared by every client. Shared, the
 * physical memory each client gets depends on what all clients allocated before; the huge-page
 * dirty-tracking cases pass there because core places big allocations on 2 MiB boundaries both
 * virtually and physically (ADR 0128).
 */
describe.each([
  ['a sim host per client', () => perClient],
  ['one shared sim host', () => shared],
])('iommufd selftest through the daemon, %s', (_mode, target) => {
  selftestThroughDaemon(() =>
    // A generous per-call timeout: a busy machine must not fail a scenario (ADR 0121's 30 s default).
    connectDaemonProcess(target().socketPath, { timeoutMs: 3_600_000 }));
});

describe('isolation', () => {
  it('one client cannot name, use or destroy another client\'s objects', async () => {
    const a = await connectDaemonProcess(daemon.socketPath);
    const b = await connectDaemonProcess(daemon.socketPath);
    try {
      const fdA = a.open('/dev/iommu');
      const ioasA = allocIoas(a, fdA);
      const fdB = b.open('/dev/iommu');
      // Same fd number in both: two fd tables, as two processes.
      expect(fdB).toBe(fdA);
      const ranges = iommu_ioas_iova_ranges.encode({ size: iommu_ioas_iova_ranges.size, ioas_id: ioasA, num_iovas: 0, __reserved: 0, out_iova_alignment: 0n, allowed_iovas: 0n });
      expect(errnoOf(() => b.ioctl(fdB, IOMMU_IOAS_IOVA_RANGES, ranges))).toBe('ENOENT');
      expect(errnoOf(() => b.ioctl(fdB, IOMMU_DESTROY, iommu_destroy.encode({ size: iommu_destroy.size, id: ioasA })))).toBe('ENOENT');
      // B's own first IOAS gets its own id space.
      expect(allocIoas(b, fdB)).toBe(ioasA);
      // A's object is still there and usable.
      const mine = iommu_ioas_iova_ranges.encode({ size: iommu_ioas_iova_ranges.size, ioas_id: ioasA, num_iovas: 0, __reserved: 0, out_iova_alignment: 0n, allowed_iovas: 0n });
      expect(errnoOf(() => a.ioctl(fdA, IOMMU_IOAS_IOVA_RANGES, mine))).toBe('EMSGSIZE');
      // The out field the kernel writes on EMSGSIZE came back through the protocol.
      expect(iommu_ioas_iova_ranges.get(mine, 'num_iovas')).toBeGreaterThan(0);
      // B's address space is its own too: A's mapping is not one B can unmap.
      const buf = a.memory.alloc(4096);
      mapFixed(a, fdA, ioasA, buf.addr, 4096, 0x10000n);
      expect(errnoOf(() => b.memory.free(buf.addr))).toBe('EINVAL');
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });
});

describe('disconnect', () => {
  it('tears down every object the client held and unpins its memory', async () => {
    // Earlier tests' disconnects are processed by the daemon asynchronously.
    await until(async () => sample(await daemon.metrics(), 'viommud_clients') === 0, 'earlier clients to be gone');
    const p = await connectDaemonProcess(daemon.socketPath);
    const fd = p.open('/dev/iommu');
    const ioas = allocIoas(p, fd);
    allocIoas(p, fd);
    const buf = p.memory.alloc(8 * 4096);
    buf.bytes.fill(0xa5);
    mapFixed(p, fd, ioas, buf.addr, 8 * 4096, 0x100000n);
    const live = await daemon.metrics();
    expect(sample(live, 'viommud_live_objects', 'type="IOAS"')).toBe(2);
    expect(sample(live, 'viommud_clients')).toBe(1);
    expect(sample(live, 'viommud_ioctls_total', 'ioctl="IOMMU_IOAS_MAP",errno="0"')).toBeGreaterThanOrEqual(1);
    p.disconnect();
    await until(async () => sample(await daemon.metrics(), 'viommud_clients') === 0, 'the session to end');
    const after = await daemon.metrics();
    expect(sample(after, 'viommud_live_objects', 'type="IOAS"')).toBe(0);
    const gone = daemon.logs.find((l) => l['msg'] === 'client gone, context torn down' && (l['objectsTornDown'] as Record<string, number>)?.['IOAS'] === 2);
    expect(gone).toBeDefined();
  });
});

describe('malformed input', () => {
  it('an oversized length gets a PROTOCOL_ERROR and a disconnect; the daemon keeps serving', async () => {
    const c = await raw(daemon.socketPath);
    const bad = new Uint8Array(16);
    new DataView(bad.buffer).setUint32(0, 0xffff_fff0, true);
    c.sock.write(bad);
    await c.closed;
    expect(c.frames[0]).toMatchObject({ op: OP.PROTOCOL_ERROR, errno: ERRNO.EPROTO });
    const p = await connectDaemonProcess(daemon.socketPath);
    expect(p.open('/dev/iommu')).toBe(3);
    p.disconnect();
  });

  it('a frame before HELLO, or a HELLO of another major version, is refused with a disconnect', async () => {
    const c = await raw(daemon.socketPath);
    const w = frameWriter();
    w.u32(2).string('/dev/iommu');
    c.sock.write(finishFrame(w, 7, OP.OPEN, FLAG.MEM).slice());
    await c.closed;
    expect(c.frames[0]).toMatchObject({ id: 7, op: OP.PROTOCOL_ERROR });
    const d = await raw(daemon.socketPath);
    d.sock.write(hello(1, 99));
    await d.closed;
    expect(d.frames[0]).toMatchObject({ op: OP.PROTOCOL_ERROR });
    expect(Buffer.from(d.frames[0]!.payload).toString()).toMatch(/major 99/);
  });

  it('an unknown opcode gets ENOSYS and a truncated payload EPROTO, and the connection stays usable', async () => {
    const c = await raw(daemon.socketPath);
    c.sock.write(hello());
    c.sock.write(finishFrame(frameWriter(), 2, 999, 0).slice());
    const shortIoctl = frameWriter();
    shortIoctl.u32(3);
    c.sock.write(finishFrame(shortIoctl, 3, OP.IOCTL, FLAG.MEM).slice());
    const open = frameWriter();
    open.u32(2).string('/dev/iommu').u32(0);
    c.sock.write(finishFrame(open, 4, OP.OPEN, FLAG.MEM).slice());
    await until(() => c.frames.length >= 4, 'four replies');
    expect(c.frames.map((f) => [f.id, f.errno])).toEqual([
      [1, 0],
      [2, ERRNO.ENOSYS],
      [3, ERRNO.EPROTO],
      [4, 0],
    ]);
    c.sock.destroy();
  });

  it('a client that stalls in the middle of a frame is disconnected', async () => {
    const c = await raw(daemon.socketPath);
    c.sock.write(hello());
    c.sock.write(new Uint8Array([64, 0, 0, 0, 1]));
    await c.closed;
    expect(c.frames.at(-1)).toMatchObject({ op: OP.PROTOCOL_ERROR });
  });

  it('random garbage never takes the daemon down', async () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 20; i++) {
      const c = await raw(daemon.socketPath);
      c.sock.write(hello());
      const junk = new Uint8Array(16 + Math.floor(rnd() * 200)).map(() => Math.floor(rnd() * 256));
      new DataView(junk.buffer).setUint32(0, junk.length, true);
      c.sock.write(junk);
      await new Promise((r) => setTimeout(r, 5));
      c.sock.destroy();
    }
    const p = await connectDaemonProcess(daemon.socketPath);
    const fd = p.open('/dev/iommu');
    expect(allocIoas(p, fd)).toBeGreaterThan(0);
    p.disconnect();
    expect(daemon.child.exitCode).toBeNull();
  });
});

describe('event streams', () => {
  it('streams vEVENTQ records to the client as the daemon reads them', async () => {
    const p = await connectDaemonProcess(daemon.socketPath);
    try {
      const self = await iommufd_viommu.setup(p, { viommu: 1 });
      const q = self.testCmdVeventqAlloc(self.viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 16);
      self.testCmdVdeviceAlloc(self.viommu_id, self.device_id, 0x99);
      self.testCmdMockDomainReplace(self.stdev_id, self.nested_hwpt_id);
      const got: Uint8Array[] = [];
      let lost = 0;
      p.subscribe(q.veventqFd, (e) => {
        got.push(e.data);
        lost += e.lost;
      });
      self.testCmdTriggerVevents(self.device_id, 3);
      const record = iommufd_vevent_header.size + iommu_viommu_event_selftest.size;
      await until(() => got.reduce((a, b) => a + b.length, 0) >= 3 * record, 'three streamed records');
      const all = Buffer.concat(got);
      expect(all.length).toBe(3 * record);
      for (let i = 0; i < 3; i++) {
        const hdr = iommufd_vevent_header.decode(all.subarray(i * record));
        expect(hdr.sequence).toBe(i);
        expect(iommu_viommu_event_selftest.decode(all.subarray(i * record + iommufd_vevent_header.size)).virt_id).toBe(0x99);
      }
      expect(lost).toBe(0);
      const text = await daemon.metrics();
      expect(sample(text, 'viommud_events_lost_total')).toBe(0);
    } finally {
      p.disconnect();
    }
  });
});

describe('SIGTERM', () => {
  it('stops accepting, disconnects clients after the deadline and exits 0', async () => {
    const d = await startDaemon(['--shutdown-deadline', '200']);
    const p = await connectDaemonProcess(d.socketPath);
    const fd = p.open('/dev/iommu');
    allocIoas(p, fd);
    const code = await d.stop('SIGTERM');
    expect(code).toBe(0);
    expect(d.logs.some((l) => l['msg'] === 'client gone, context torn down')).toBe(true);
    expect(errnoOf(() => p.open('/dev/iommu'))).toMatch(/ECONNRESET|ENOTCONN/);
  });
});
