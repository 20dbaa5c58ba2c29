// Fd passing (feature SCM_RIGHTS, ADR 0129) against a real daemon: a client memfd for
// IOMMU_IOAS_MAP_FILE, memory.alloc backed by a shared memfd, negotiation and the fallback to
// mirrored memory when either end lacks @viommu/native. Skips, saying so, when the addon is not built.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { enc, Self } from '@viommu/backend-mock';
import { connectDaemonProcess, FEATURE, PROTOCOL_MINOR, sealedMemfd, type DaemonProcess } from '@viommu/protocol';
import { IOMMU_TEST_OP_ACCESS_RW, MOCK_ACCESS_RW_WRITE, MOCK_FLAGS_ACCESS_WRITE, iommu_test_cmd_access_rw } from '@viommu/uapi';
import { buildDaemon, sample, startDaemon, type RunningDaemon } from './spawn-daemon.js';
import { addonOrReason } from './testing/daemon-tests.js';

const PAGE = 4096;
const { addon, reason: notBuilt } = addonOrReason();

const describeScm = addon ? describe : describe.skip;
if (!addon) it.skip(`fd passing — skipped: ${notBuilt}`, () => {});

let daemon: RunningDaemon;
/** A daemon that does not offer fd passing (as one without @viommu/native). */
let plain: RunningDaemon;

beforeAll(async () => {
  if (!addon) return;
  buildDaemon();
  daemon = await startDaemon();
  plain = await startDaemon(['--no-fd-passing']);
}, 600_000);

// Each stop waits up to the daemon's shutdown deadline for clients still connected.
afterAll(async () => {
  await daemon?.stop();
  await plain?.stop();
}, 120_000);

/** An IOAS and a selftest access on it: the access reads and writes IOVAs as a device would. */
function rig(p: DaemonProcess) {
  const self = new Self(p, p.memory.alloc(PAGE));
  self.fd = p.open('/dev/iommu');
  self.ioas_id = self.testIoctlIoasAlloc();
  const access = self.testCmdCreateAccess(self.ioas_id, MOCK_FLAGS_ACCESS_WRITE);
  const tmp = self.mem(2 * PAGE);
  /** Device DMA through the IOAS: `length` bytes at `iova` into (or, writing, from) `tmp`. */
  const dma = (iova: number, length: number, write = false) =>
    self.testCmd(
      enc(iommu_test_cmd_access_rw, { op: IOMMU_TEST_OP_ACCESS_RW, id: access, iova, length, uptr: tmp.addr, flags: write ? MOCK_ACCESS_RW_WRITE : 0 }),
    );
  return { self, tmp, dma };
}

describeScm('fd passing', () => {
  it('is granted only when both ends ask for it; otherwise memory is mirrored as before', async () => {
    const both = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
    expect(both.session.minor).toBe(PROTOCOL_MINOR);
    expect(both.session.features & FEATURE.SCM_RIGHTS).toBe(FEATURE.SCM_RIGHTS);
    // The simulator's vEVENTQ and FAULT files are not real fds: they stay in the daemon (ADR 0125).
    expect(both.session.features & FEATURE.EVENT_FDS).toBe(0);
    expect(both.servesEventFds).toBe(false);
    expect(both.canPassFds).toBe(true);
    both.disconnect();

    const clientWithout = await connectDaemonProcess(daemon.socketPath);
    expect(clientWithout.session.features & FEATURE.SCM_RIGHTS).toBe(0);
    expect(() => clientWithout.passFd(0)).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP' }));
    clientWithout.disconnect();

    // The daemon without it: the client falls back to mirroring even for big allocations.
    const daemonWithout = await connectDaemonProcess(plain.socketPath, { fdBridge: addon, sharedMemoryMin: 0 });
    expect(daemonWithout.session.features & FEATURE.SCM_RIGHTS).toBe(0);
    expect(daemonWithout.canPassFds).toBe(false);
    const { self, tmp, dma } = rig(daemonWithout);
    const buf = daemonWithout.memory.alloc(4 * PAGE);
    buf.bytes.fill(0x61);
    self.testIoctlIoasMapFixed(buf, 4 * PAGE, 0x100000);
    dma(0x100000 + PAGE, 16);
    expect([...tmp.bytes.subarray(0, 16)]).toEqual(new Array(16).fill(0x61));
    daemonWithout.disconnect();
  });

  it('IOAS_MAP_FILE of a memfd the client passed: the device and the client see the same pages', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
    const mfd = sealedMemfd(addon!, 'guest-ram', 4 * PAGE);
    try {
      const { self, tmp, dma } = rig(p);
      for (let i = 0; i < mfd.bytes.length; i++) mfd.bytes[i] = (i * 7) & 0xff;
      const dfd = p.passFd(mfd.fd);
      expect(dfd).toBeGreaterThanOrEqual(3);
      expect(sample(await daemon.metrics(), 'viommud_requests_total', 'op="FD_IMPORT",errno="0"')).toBe(1);
      const iova = self.testIoctlIoasMapFile(dfd, 0, 4 * PAGE);
      // The device reads what the client wrote into its own mapping.
      dma(iova + PAGE + 100, 64);
      for (let i = 0; i < 64; i++) expect(tmp.bytes[i]).toBe(((PAGE + 100 + i) * 7) & 0xff);
      // Later writes too: nothing but the memfd carries them.
      mfd.bytes[3 * PAGE] = 0xee;
      dma(iova + 3 * PAGE, 1);
      expect(tmp.bytes[0]).toBe(0xee);
      // And the device's writes appear in the client's mapping when the call returns.
      tmp.bytes.fill(0x3c, 0, 32);
      dma(iova + 2 * PAGE + 8, 32, true);
      expect([...mfd.bytes.subarray(2 * PAGE + 8, 2 * PAGE + 40)]).toEqual(new Array(32).fill(0x3c));
      expect(mfd.bytes[2 * PAGE + 7]).toBe(((2 * PAGE + 7) * 7) & 0xff);
    } finally {
      p.disconnect();
      addon!.munmap(mfd.addr, -1);
      addon!.close(mfd.fd);
    }
  });

  it('memory.alloc backed by a shared memfd: maps, DMAs and frees like mirrored memory', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon, sharedMemoryMin: 1 << 20 });
    try {
      const { self, tmp, dma } = rig(p);
      const buf = p.memory.alloc(2 << 20);
      expect(buf.bytes.length).toBe(2 << 20);
      buf.bytes.fill(0x5a, 0, PAGE);
      buf.bytes.fill(0xa5, (2 << 20) - PAGE);
      self.testIoctlIoasMapFixed(buf, 2 << 20, 0x4000000);
      dma(0x4000000, 8);
      expect([...tmp.bytes.subarray(0, 8)]).toEqual(new Array(8).fill(0x5a));
      dma(0x4000000 + (2 << 20) - 8, 8);
      expect([...tmp.bytes.subarray(0, 8)]).toEqual(new Array(8).fill(0xa5));
      tmp.bytes.fill(0x11, 0, 8);
      dma(0x4000000 + 12345, 8, true);
      expect([...buf.bytes.subarray(12345, 12353)]).toEqual(new Array(8).fill(0x11));
      // It went through MEM_SHARED (no page of it in any sync section); small allocations stay mirrored.
      p.memory.alloc(PAGE);
      const text = await daemon.metrics();
      expect(sample(text, 'viommud_requests_total', 'op="MEM_SHARED",errno="0"')).toBe(1);
      expect(sample(text, 'viommud_requests_total', 'op="MEM_ALLOC",errno="0"')).toBeGreaterThanOrEqual(3);
      self.testIoctlIoasUnmap(0x4000000, 2 << 20);
      p.memory.free(buf.addr);
      expect(() => p.memory.free(buf.addr)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    } finally {
      p.disconnect();
    }
  });

  it('an fd channel opened with a wrong token is dropped: another process cannot slip its fd into a session', async () => {
    const path = daemon.logs.find((l) => l['msg'] === 'fd passing (SCM_RIGHTS) offered')!['fdSocket'] as string;
    // Session ids are sequential: the attacker can guess the next one and queue its channel first.
    const probe = await connectDaemonProcess(daemon.socketPath);
    const guessed = probe.session.sessionId + 1;
    probe.disconnect();
    const evil = sealedMemfd(addon!, 'evil', PAGE);
    const mine = sealedMemfd(addon!, 'mine', PAGE);
    const sock = addon!.unixConnect(path);
    let p: DaemonProcess | undefined;
    try {
      evil.bytes.fill(0x66);
      mine.bytes.fill(0x77);
      // Claims the next session with a guessed token and offers an fd under the tag that session will use first.
      const hello = new Uint8Array(24);
      new DataView(hello.buffer).setUint32(0, 0x43444656, true);
      new DataView(hello.buffer).setUint32(4, guessed, true);
      expect(addon!.sendFds(sock, hello, [])).toBe(24);
      expect(addon!.sendFds(sock, Uint8Array.of(1, 0, 0, 0), [evil.fd])).toBe(4);
      p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
      expect(p.session.sessionId).toBe(guessed);
      const { self, tmp, dma } = rig(p);
      const iova = self.testIoctlIoasMapFile(p.passFd(mine.fd), 0, PAGE);
      dma(iova, 4);
      expect([...tmp.bytes.subarray(0, 4)]).toEqual([0x77, 0x77, 0x77, 0x77]);
    } finally {
      p?.disconnect();
      addon!.close(sock);
      for (const m of [evil, mine]) {
        addon!.munmap(m.addr, -1);
        addon!.close(m.fd);
      }
    }
  });

  it('refuses a memfd not sealed against shrinking (EPERM) and keeps serving', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
    const fd = addon!.memfdCreate('unsealed', 0);
    try {
      expect(addon!.ftruncate(fd, PAGE)).toBe(0);
      // A client could shrink it under the daemon's mapping (SIGBUS): not accepted.
      expect(() => p.passFd(fd)).toThrow(expect.objectContaining({ code: 'EPERM' }));
      expect(p.open('/dev/iommu')).toBeGreaterThanOrEqual(3);
      expect(daemon.child.exitCode).toBeNull();
    } finally {
      addon!.close(fd);
      p.disconnect();
    }
  });
});

