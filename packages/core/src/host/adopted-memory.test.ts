// Adopted memory end to end on a simulated host with the selftest mock (ADR 0193): pages someone
// else owns (as viommud's mapping of a client's memfd) backing user memory and a memfd. A mock
// device's DMA (IOMMU_TEST_OP_ACCESS_RW) reads exactly what the owner wrote, with no call in
// between copying anything, and its writes are in the owner's bytes when the ioctl returns.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { framePinCount, adjustPins } from '../ioas/pin-counts.js';
import { checkAllReleased, checkInvariants } from '../invariants.js';
import { mockIommu } from '../selftest/mock-driver.js';
import '../selftest/test-cmd.js';
import { errnoOf } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';
import { FRAME_SIZE } from './physical-memory.js';
import { createSimHost } from './sim-host.js';

const PAGE = U.PAGE_SIZE;
const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
const IOVA = BigInt(U.MOCK_APERTURE_START);

/** Memory the simulator does not own: an ArrayBuffer, as the addon's mmap gives. */
function clientPages(bytes: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(bytes));
}

function rig(opts: { domain?: boolean } = {}) {
  const host = createSimHost({ iommus: [() => mockIommu()] });
  const p = host.spawn();
  const fd = p.open('/dev/iommu', U.O_RDWR);
  const ioctl = (req: number, arg: Uint8Array) => p.ioctl(fd, req, arg);
  const a = U.iommu_ioas_alloc.encode({});
  ioctl(U.IOMMU_IOAS_ALLOC, a);
  const ioas = U.iommu_ioas_alloc.get(a, 'out_ioas_id');
  let hwpt = 0;
  if (opts.domain !== false) {
    const d = U.iommu_test_cmd_mock_domain.encode({ op: U.IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas });
    ioctl(U.IOMMU_TEST_CMD, d);
    hwpt = U.iommu_test_cmd_mock_domain.get(d, 'out_hwpt_id');
  }
  const c = U.iommu_test_cmd_create_access.encode({ op: U.IOMMU_TEST_OP_CREATE_ACCESS, id: ioas, flags: U.MOCK_FLAGS_ACCESS_WRITE });
  ioctl(U.IOMMU_TEST_CMD, c);
  const access = U.iommu_test_cmd_create_access.get(c, 'out_access_fd');
  // The device's side of a DMA: ordinary simulator memory.
  const tmp = p.memory.alloc(2 * PAGE);
  /** Device DMA of `length` bytes at `iova` into tmp (or, writing, from tmp). */
  const dma = (iova: bigint, length: number, write = false) =>
    ioctl(
      U.IOMMU_TEST_CMD,
      U.iommu_test_cmd_access_rw.encode({ op: U.IOMMU_TEST_OP_ACCESS_RW, id: access, iova, length: BigInt(length), uptr: tmp.addr, flags: write ? U.MOCK_ACCESS_RW_WRITE : 0 }),
    );
  const mapUser = (va: bigint, length: number, iova = IOVA) =>
    ioctl(U.IOMMU_IOAS_MAP, U.iommu_ioas_map.encode({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | RW, ioas_id: ioas, user_va: va, length: BigInt(length), iova }));
  const mapFile = (mfd: number, start: number, length: number, iova = IOVA) =>
    ioctl(U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file.encode({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | RW, ioas_id: ioas, fd: mfd, start: BigInt(start), length: BigInt(length), iova }));
  const unmap = (length: number, iova = IOVA) => ioctl(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap.encode({ ioas_id: ioas, iova, length: BigInt(length) }));
  const checkMap = (uptr: bigint, length: number, iova = IOVA) =>
    errnoOf(() => ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_check_map.encode({ op: U.IOMMU_TEST_OP_MD_CHECK_MAP, id: hwpt, iova, length: BigInt(length), uptr })));
  return { host, p, fd, tmp, dma, mapUser, mapFile, unmap, checkMap };
}

describe('adopted user memory (viommud MEM_SHARED)', () => {
  it('device DMA reads what the owner wrote and writes into the owner bytes, with nothing copied in between', () => {
    const t = rig();
    const owned = clientPages(4 * PAGE);
    let released = 0;
    const m = t.p.adoptMemory(owned, () => released++);
    for (let i = 0; i < owned.length; i++) owned[i] = (i * 13) & 0xff;
    t.mapUser(m.addr, 4 * PAGE);
    expect(t.checkMap(m.addr, 4 * PAGE)).toBe('OK');
    t.dma(IOVA + BigInt(PAGE + 100), 64);
    for (let i = 0; i < 64; i++) expect(t.tmp.bytes[i]).toBe(((PAGE + 100 + i) * 13) & 0xff);
    // The owner writes again: the next DMA sees it, though no call ran between.
    owned.fill(0xee, 3 * PAGE, 3 * PAGE + 8);
    t.dma(IOVA + BigInt(3 * PAGE), 8);
    expect([...t.tmp.bytes.subarray(0, 8)]).toEqual(new Array(8).fill(0xee));
    // A DMA write lands in the owner's bytes, and only where it was aimed.
    t.tmp.bytes.fill(0x3c, 0, 32);
    t.dma(IOVA + BigInt(2 * PAGE + 8), 32, true);
    expect([...owned.subarray(2 * PAGE + 8, 2 * PAGE + 40)]).toEqual(new Array(32).fill(0x3c));
    expect(owned[2 * PAGE + 7]).toBe(((2 * PAGE + 7) * 13) & 0xff);
    expect(owned[2 * PAGE + 40]).toBe(((2 * PAGE + 40) * 13) & 0xff);
    // Pinned for the mock domain like any other page (MD_CHECK_REFS sees the same counts).
    expect(framePinCount(t.host.physical, t.p.memory.frameOf(m.addr)!)).toBe(1);
    checkInvariants(t.host);
    t.unmap(4 * PAGE);
    expect(framePinCount(t.host.physical, t.p.memory.frameOf(m.addr)!)).toBe(0);
    expect(released).toBe(0);
    t.p.memory.free(m.addr);
    expect(released).toBe(1);
    t.p.exit();
    checkAllReleased(t.host);
  });

  it('a pinned run outlives munmap, as the kernel pin keeps the page; the last unpin gives it back', () => {
    const t = rig();
    const owned = clientPages(2 * PAGE);
    let released = 0;
    const m = t.p.adoptMemory(owned, () => released++);
    t.mapUser(m.addr, 2 * PAGE);
    t.p.memory.free(m.addr); // the client's munmap while the domain pins the pages
    expect(released).toBe(0);
    expect(t.host.physical.adoptedRunCount).toBe(1);
    owned[PAGE + 5] = 0x81;
    t.dma(IOVA + BigInt(PAGE + 5), 1);
    expect(t.tmp.bytes[0]).toBe(0x81);
    t.tmp.bytes[0] = 0x18;
    t.dma(IOVA + 6n, 1, true);
    expect(owned[6]).toBe(0x18);
    // The address is gone for new pins and copies.
    expect(errnoOf(() => t.mapUser(m.addr, PAGE, IOVA + 0x100000n))).toBe('EFAULT');
    checkInvariants(t.host);
    t.unmap(2 * PAGE);
    expect(released).toBe(1);
    expect(t.host.physical.adoptedRunCount).toBe(0);
    t.p.exit();
    checkAllReleased(t.host);
  });

  it('unpinned (no domain), munmap gives it back at once; DMA through the access pins only for the call', () => {
    const t = rig({ domain: false });
    const owned = clientPages(PAGE);
    let released = 0;
    const m = t.p.adoptMemory(owned, () => released++);
    t.mapUser(m.addr, PAGE);
    owned[0] = 0x42;
    t.dma(IOVA, 1);
    expect(t.tmp.bytes[0]).toBe(0x42);
    expect(t.host.physical.adoptedRunCount).toBe(1);
    t.p.memory.free(m.addr);
    expect(released).toBe(1);
    expect(t.host.physical.adoptedRunCount).toBe(0);
    t.p.exit();
    checkAllReleased(t.host);
  });

  it('huge: a 2 MiB region is placed congruent, so the mock domain maps it with huge pages', () => {
    const t = rig();
    const HUGE = 2 << 20;
    const owned = clientPages(HUGE);
    const m = t.p.adoptMemory(owned);
    expect(Number(m.addr) % HUGE).toBe(0);
    expect((t.p.memory.frameOf(m.addr)! * FRAME_SIZE) % HUGE).toBe(0);
    t.mapUser(m.addr, HUGE);
    expect(t.checkMap(m.addr, HUGE)).toBe('OK');
    owned[HUGE - 1] = 0xfe;
    t.dma(IOVA + BigInt(HUGE - 1), 1);
    expect(t.tmp.bytes[0]).toBe(0xfe);
    t.p.exit();
    checkAllReleased(t.host);
  });
});

describe('adopted memfd (viommud FD_IMPORT, then IOAS_MAP_FILE)', () => {
  it('IOAS_MAP_FILE maps the owner pages: DMA both ways without copies; close keeps them until unmap', () => {
    const t = rig();
    const owned = clientPages(4 * PAGE);
    let released = 0;
    const mfd = t.p.memfdAdopt(owned, { size: 4 * PAGE, name: 'scm-rights', release: () => released++ });
    for (let i = 0; i < owned.length; i++) owned[i] = (i * 7) & 0xff;
    t.mapFile(mfd, PAGE, 3 * PAGE);
    t.dma(IOVA + 100n, 64);
    for (let i = 0; i < 64; i++) expect(t.tmp.bytes[i]).toBe(((PAGE + 100 + i) * 7) & 0xff);
    owned[3 * PAGE] = 0xee;
    t.dma(IOVA + BigInt(2 * PAGE), 1);
    expect(t.tmp.bytes[0]).toBe(0xee);
    t.tmp.bytes.fill(0x3c, 0, 32);
    t.dma(IOVA + BigInt(PAGE + 8), 32, true);
    expect([...owned.subarray(2 * PAGE + 8, 2 * PAGE + 40)]).toEqual(new Array(32).fill(0x3c));
    // An mmap of the fd is the same pages too.
    const view = t.p.mmap(mfd, 4 * PAGE, 0n);
    expect(view.bytes.buffer).toBe(owned.buffer);
    t.p.munmap(view.addr, 4 * PAGE);
    // Sealed against shrinking like the client's file.
    expect(errnoOf(() => t.p.ftruncate(mfd, PAGE))).toBe('EPERM');
    t.p.close(mfd);
    expect(released).toBe(0); // the area holds the file, its pins the pages
    t.dma(IOVA, 1);
    expect(t.tmp.bytes[0]).toBe((PAGE * 7) & 0xff);
    checkInvariants(t.host);
    t.unmap(3 * PAGE);
    expect(released).toBe(1);
    expect(t.host.physical.adoptedRunCount).toBe(0);
    t.p.exit();
    checkAllReleased(t.host);
  });

  it('a file smaller than its last page: pages past the size are not mappable (EINVAL), as for any memfd', () => {
    const t = rig();
    const owned = clientPages(2 * PAGE);
    const mfd = t.p.memfdAdopt(owned, { size: PAGE + 1 });
    t.mapFile(mfd, 0, 2 * PAGE);
    expect(errnoOf(() => t.mapFile(mfd, 2 * PAGE, PAGE, IOVA + 0x100000n))).toBe('EINVAL');
    t.p.exit();
    checkAllReleased(t.host);
  });

  it('process exit with the file still mapped: the context release unpins and the bytes go back', () => {
    const t = rig();
    const owned = clientPages(2 * PAGE);
    const shared = clientPages(2 * PAGE);
    const released: string[] = [];
    const mfd = t.p.memfdAdopt(owned, { size: 2 * PAGE, release: () => released.push('file') });
    const m = t.p.adoptMemory(shared, () => released.push('memory'));
    t.mapFile(mfd, 0, 2 * PAGE);
    t.mapUser(m.addr, 2 * PAGE, IOVA + 0x100000n);
    t.p.memory.free(m.addr);
    expect(released).toEqual([]);
    t.p.exit();
    expect(released.sort()).toEqual(['file', 'memory']);
    expect(t.host.physical.adoptedRunCount).toBe(0);
    checkAllReleased(t.host);
  });
});

describe('a device behind an IOMMU model', () => {
  it('DMAs adopted memory through its translation: reads the owner bytes, writes into them', async () => {
    const host = createSimHost({ iommus: [simpleDriver({ name: 'iommu0' })], devices: [{ name: 'dev0', iommu: 'iommu0', rid: 1 }] });
    const p = host.spawn();
    const fd = p.open('/dev/iommu');
    const dev = host.device('dev0');
    const dfd = p.open(dev.path);
    p.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd.encode({ iommufd: fd }));
    const a = U.iommu_ioas_alloc.encode({});
    p.ioctl(fd, U.IOMMU_IOAS_ALLOC, a);
    const ioas = U.iommu_ioas_alloc.get(a, 'out_ioas_id');
    p.ioctl(dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt.encode({ pt_id: ioas }));
    const owned = clientPages(4 * PAGE);
    let released = 0;
    const m = p.adoptMemory(owned, () => released++);
    p.ioctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map.encode({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | RW, ioas_id: ioas, user_va: m.addr, length: BigInt(4 * PAGE), iova: 0x100000n }));
    owned.set([1, 2, 3, 4], 2 * PAGE + 10);
    expect([...(await dev.dma.read(0x100000n + BigInt(2 * PAGE + 10), 4))]).toEqual([1, 2, 3, 4]);
    await dev.dma.write(0x100000n + BigInt(PAGE - 2), Uint8Array.of(9, 8, 7, 6));
    expect([...owned.subarray(PAGE - 2, PAGE + 2)]).toEqual([9, 8, 7, 6]);
    p.memory.free(m.addr);
    expect(released).toBe(0); // the attached domain pins it
    p.exit();
    expect(released).toBe(1);
    checkAllReleased(host);
  });
});

describe('checkAllReleased', () => {
  it('fails on a pin left behind', () => {
    const host = createSimHost({ iommus: [] });
    const p = host.spawn();
    const m = p.adoptMemory(clientPages(PAGE));
    adjustPins(host.physical, p.memory.frameOf(m.addr)!, 1, 1);
    p.exit();
    expect(() => checkAllReleased(host)).toThrow(/still pinned/);
  });
});
