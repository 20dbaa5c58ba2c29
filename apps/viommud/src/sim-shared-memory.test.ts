// Zero-copy shared memory on the simulator backend (ADR 0129, 0193), against a real daemon: the
// client's memfd pages are the simulator's frames. A mock device's DMA reads exactly what the
// client wrote into its own mapping and its writes are in that mapping when the ioctl returns; the
// daemon holds no copy of the region; and the daemon's mapping of the memfd lives exactly as long
// as the simulator uses the pages (user mapping or memfd, and every pin), then goes. Skips, saying
// so, when @viommu/native is not built.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { enc, Self } from '@viommu/backend-mock';
import { connectDaemonProcess, sealedMemfd, type DaemonProcess } from '@viommu/protocol';
import { IOMMU_TEST_OP_ACCESS_RW, MOCK_ACCESS_RW_WRITE, MOCK_FLAGS_ACCESS_WRITE, iommu_test_cmd_access_rw } from '@viommu/uapi';
import { buildDaemon, eventually, startDaemon, type RunningDaemon } from './spawn-daemon.js';
import { addonOrReason, selftestThroughDaemon } from './testing/daemon-tests.js';

const PAGE = 4096;
const { addon, reason: notBuilt } = addonOrReason();

const describeShared = addon ? describe : describe.skip;
if (!addon) it.skip(`simulator shared memory — skipped: ${notBuilt}`, () => {});

let daemon: RunningDaemon;

beforeAll(async () => {
  if (!addon) return;
  buildDaemon();
  daemon = await startDaemon();
}, 600_000);

afterAll(async () => {
  await daemon?.stop();
}, 120_000);

/** How many mappings of memfd `name` the daemon has (from /proc/<pid>/maps). */
function daemonMaps(name: string): number {
  const maps = readFileSync(`/proc/${daemon.child.pid}/maps`, 'utf8');
  return maps.split('\n').filter((l) => l.includes(`/memfd:${name} `)).length;
}

/** Anonymous memory the daemon has resident, in bytes (RssAnon of /proc/<pid>/status). */
function daemonRssAnon(): number {
  const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** An IOAS with a mock domain (which pins what is mapped) and a selftest access (a device's DMA). */
function rig(p: DaemonProcess) {
  const self = new Self(p, p.memory.alloc(PAGE));
  self.fd = p.open('/dev/iommu');
  self.ioas_id = self.testIoctlIoasAlloc();
  const domain = self.testCmdMockDomain(self.ioas_id);
  const access = self.testCmdCreateAccess(self.ioas_id, MOCK_FLAGS_ACCESS_WRITE);
  const tmp = self.mem(2 * PAGE);
  /** Device DMA: `length` bytes at `iova` into (or, writing, from) `tmp`. */
  const dma = (iova: number, length: number, write = false) =>
    self.testCmd(
      enc(iommu_test_cmd_access_rw, { op: IOMMU_TEST_OP_ACCESS_RW, id: access, iova, length, uptr: tmp.addr, flags: write ? MOCK_ACCESS_RW_WRITE : 0 }),
    );
  return { self, hwpt: domain.hwptId, tmp, dma };
}

/** Allocations of 8 pages or more are shared memfds (the rig's small buffers stay mirrored). */
const SHARED_MIN = 8 * PAGE;
const connectShared = () => connectDaemonProcess(daemon.socketPath, { fdBridge: addon, sharedMemoryMin: SHARED_MIN });
/** Earlier tests' clients are torn down after they disconnect: wait until their mappings are gone. */
const noSharedLeft = () => eventually(() => daemonMaps('viommu-shared') === 0, 'earlier sessions to be torn down');

describeShared('shared memory on the simulator (MEM_SHARED)', () => {
  it('device DMA reads the client bytes and writes into them; the pages are the memfd pages (MD_CHECK_MAP, MD_CHECK_REFS)', async () => {
    const p = await connectShared();
    try {
      const { self, hwpt, tmp, dma } = rig(p);
      const buf = p.memory.alloc(8 * PAGE);
      for (let i = 0; i < buf.bytes.length; i++) buf.bytes[i] = (i * 11) & 0xff;
      const iova = self.testIoctlIoasMap(buf, 8 * PAGE);
      self.checkMap(hwpt, iova, 8 * PAGE, buf);
      self.checkRefs(buf, 8 * PAGE, 1);
      dma(iova + 5 * PAGE + 3, 100);
      for (let i = 0; i < 100; i++) expect(tmp.bytes[i]).toBe(((5 * PAGE + 3 + i) * 11) & 0xff);
      buf.bytes.fill(0xd7, 7 * PAGE, 7 * PAGE + 16);
      dma(iova + 7 * PAGE, 16);
      expect([...tmp.bytes.subarray(0, 16)]).toEqual(new Array(16).fill(0xd7));
      tmp.bytes.fill(0x29, 0, 24);
      dma(iova + PAGE - 12, 24, true);
      expect([...buf.bytes.subarray(PAGE - 12, PAGE + 12)]).toEqual(new Array(24).fill(0x29));
      expect(buf.bytes[PAGE - 13]).toBe(((PAGE - 13) * 11) & 0xff);
      expect(buf.bytes[PAGE + 12]).toBe(((PAGE + 12) * 11) & 0xff);
      self.testIoctlIoasUnmap(iova, 8 * PAGE);
      self.checkRefs(buf, 8 * PAGE, 0);
    } finally {
      p.disconnect();
    }
  });

  it('the daemon keeps no copy of a 64 MiB region the client filled', async () => {
    const p = await connectShared();
    try {
      const { self, tmp, dma } = rig(p);
      const before = daemonRssAnon();
      const buf = p.memory.alloc(64 << 20);
      buf.bytes.fill(0x6b);
      const iova = self.testIoctlIoasMap(buf, 64 << 20);
      dma(iova + (63 << 20), 8);
      expect([...tmp.bytes.subarray(0, 8)]).toEqual(new Array(8).fill(0x6b));
      // Mirrored (or kept in step, as before ADR 0193) it would cost the daemon 128 MiB: a copy and a shadow.
      expect(daemonRssAnon() - before).toBeLessThan(16 << 20);
      self.testIoctlIoasUnmap(iova, 64 << 20);
    } finally {
      p.disconnect();
    }
  });

  it('a region freed while the domain pins it outlives the free; the unmap gives the pages back', async () => {
    const p = await connectShared();
    try {
      await noSharedLeft();
      const { self, tmp, dma } = rig(p);
      const buf = p.memory.alloc(SHARED_MIN);
      expect(daemonMaps('viommu-shared')).toBe(1);
      buf.bytes.fill(0x4e, 2 * PAGE, 3 * PAGE);
      const iova = self.testIoctlIoasMap(buf, SHARED_MIN);
      p.memory.free(buf.addr); // MEM_FREE: the client's munmap
      expect(daemonMaps('viommu-shared')).toBe(1);
      dma(iova + 2 * PAGE + 9, 4);
      expect([...tmp.bytes.subarray(0, 4)]).toEqual([0x4e, 0x4e, 0x4e, 0x4e]);
      self.testIoctlIoasUnmap(iova, SHARED_MIN);
      expect(daemonMaps('viommu-shared')).toBe(0);
      // Unpinned, a free gives them back at once.
      const other = p.memory.alloc(SHARED_MIN);
      expect(daemonMaps('viommu-shared')).toBe(1);
      p.memory.free(other.addr);
      expect(daemonMaps('viommu-shared')).toBe(0);
    } finally {
      p.disconnect();
    }
  });
});

describeShared('a passed memfd on the simulator (FD_IMPORT, IOAS_MAP_FILE)', () => {
  it('maps the client pages: DMA both ways; a close keeps them while mapped; the unmap gives them back', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
    const mfd = sealedMemfd(addon!, 'zc-file', 4 * PAGE);
    try {
      const { self, tmp, dma } = rig(p);
      for (let i = 0; i < mfd.bytes.length; i++) mfd.bytes[i] = (i * 5) & 0xff;
      const dfd = p.passFd(mfd.fd);
      expect(daemonMaps('zc-file')).toBe(1);
      const iova = self.testIoctlIoasMapFile(dfd, PAGE, 3 * PAGE);
      dma(iova + 50, 32);
      for (let i = 0; i < 32; i++) expect(tmp.bytes[i]).toBe(((PAGE + 50 + i) * 5) & 0xff);
      mfd.bytes[3 * PAGE + 1] = 0xab;
      dma(iova + 2 * PAGE + 1, 1);
      expect(tmp.bytes[0]).toBe(0xab);
      tmp.bytes.fill(0x17, 0, 10);
      dma(iova + PAGE + 20, 10, true);
      expect([...mfd.bytes.subarray(2 * PAGE + 20, 2 * PAGE + 30)]).toEqual(new Array(10).fill(0x17));
      // Sealed like the client's file: no shrinking through the daemon either.
      expect(() => p.ftruncate!(dfd, PAGE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
      p.close(dfd);
      expect(daemonMaps('zc-file')).toBe(1); // the IOAS still maps (and the domain pins) the file
      dma(iova, 1);
      expect(tmp.bytes[0]).toBe((PAGE * 5) & 0xff);
      self.testIoctlIoasUnmap(iova, 3 * PAGE);
      expect(daemonMaps('zc-file')).toBe(0);
    } finally {
      p.disconnect();
      addon!.munmap(mfd.addr, -1);
      addon!.close(mfd.fd);
    }
  });

  it('a file whose size is not a page multiple: its last page is mapped, nothing past it', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
    const mfd = sealedMemfd(addon!, 'zc-odd', PAGE + 100);
    try {
      const { self, tmp, dma } = rig(p);
      mfd.bytes[PAGE + 99] = 0xc4;
      const dfd = p.passFd(mfd.fd);
      const iova = self.testIoctlIoasMapFile(dfd, 0, 2 * PAGE);
      dma(iova + PAGE + 99, 1);
      expect(tmp.bytes[0]).toBe(0xc4);
      self.errIoctlIoasMapFile('EINVAL', dfd, 0, 3 * PAGE);
    } finally {
      p.disconnect();
      addon!.munmap(mfd.addr, -1);
      addon!.close(mfd.fd);
    }
  });
});

describeShared('disconnect', () => {
  it('gives back every adopted page: shared regions and passed memfds still mapped and pinned', async () => {
    const p = await connectShared();
    const mfd = sealedMemfd(addon!, 'zc-gone', 2 * PAGE);
    try {
      await noSharedLeft();
      const { self } = rig(p);
      const buf = p.memory.alloc(SHARED_MIN);
      self.testIoctlIoasMap(buf, SHARED_MIN);
      self.testIoctlIoasMapFile(p.passFd(mfd.fd), 0, 2 * PAGE);
      expect(daemonMaps('viommu-shared')).toBe(1);
      expect(daemonMaps('zc-gone')).toBe(1);
    } finally {
      p.disconnect();
    }
    await eventually(() => daemonMaps('zc-gone') === 0 && daemonMaps('viommu-shared') === 0, 'the daemon to unmap the client memfds');
    expect(daemon.logs.some((l) => l['msg'] === 'teardown failed')).toBe(false);
    addon!.munmap(mfd.addr, -1);
    addon!.close(mfd.fd);
  });
});

/**
 * The selftest port through the daemon with every allocation a shared memfd (sharedMemoryMin 0):
 * the kernel's scenarios over adopted pages, huge-page dirty tracking and pin accounting included,
 * end as they do in-process.
 */
describeShared('iommufd selftest through the daemon, all memory shared', () => {
  selftestThroughDaemon(() => connectDaemonProcess(daemon.socketPath, { timeoutMs: 3_600_000, fdBridge: addon, sharedMemoryMin: 0 }));
});
