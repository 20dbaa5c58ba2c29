// The IOAS ioctl handlers: the checks they make before the io page table, their write-back rules
// (spec 3.2, 5.2-5.8, 5.19), and dirty tracking end to end through device DMA (5.13, 5.14).
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { checkInvariants } from '../invariants.js';
import { call, errnoOf } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';

const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
const FIXED = U.IOMMU_IOAS_MAP_FIXED_IOVA;
const ULONG_MAX = (1n << 64n) - 1n;

function setup() {
  const drv = simpleDriver({ name: 'iommu0', dirtyTracking: true });
  const host = createSimHost({ iommus: [drv], devices: [{ name: 'd0', iommu: 'iommu0', rid: 1 }] });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
  const buf = proc.memory.alloc(1 << 20);
  return { drv, host, proc, fd, ioas, buf };
}

describe('IOAS ioctls', () => {
  it('IOAS_ALLOC: flags EOPNOTSUPP', () => {
    const { proc, fd } = setup();
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, { flags: 1 }))).toBe('EOPNOTSUPP');
  });

  it('MAP: handler checks in order (flags, __reserved, EOVERFLOW, no permission, lookup)', () => {
    const { proc, fd, ioas, buf, host } = setup();
    const map = (f: Partial<U.StructValue<typeof U.iommu_ioas_map.fields>>) => call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 4096n, flags: RW, ...f });
    expect(errnoOf(() => map({ flags: 1 << 3, iova: ULONG_MAX, ioas_id: 99 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => map({ __reserved: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => map({ iova: ULONG_MAX, flags: 0, ioas_id: 99 }))).toBe('EOVERFLOW');
    expect(errnoOf(() => map({ length: ULONG_MAX }))).toBe('EOVERFLOW');
    expect(errnoOf(() => map({ flags: FIXED, ioas_id: 99 }))).toBe('EINVAL');
    expect(errnoOf(() => map({ ioas_id: 99 }))).toBe('ENOENT');
    const got = map({});
    expect(got.iova).not.toBe(0n);
    expect(map({ flags: RW | FIXED, iova: 0x40000000n }).iova).toBe(0x40000000n);
    expect(errnoOf(() => map({ flags: RW | FIXED, iova: 0x40000000n }))).toBe('EEXIST');
    checkInvariants(host);
  });

  it('IOVA_RANGES: EMSGSIZE still writes the struct back with the total; __reserved EOPNOTSUPP', () => {
    const { proc, fd, ioas } = setup();
    call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc);
    const out = proc.memory.alloc(4096);
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, __reserved: 1 }))).toBe('EOPNOTSUPP');
    const arg = U.iommu_ioas_iova_ranges.encode({ ioas_id: ioas, num_iovas: 0, allowed_iovas: out.addr });
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_IOAS_IOVA_RANGES, arg))).toBe('EMSGSIZE');
    expect(U.iommu_ioas_iova_ranges.get(arg, 'num_iovas')).toBe(1);
    expect(U.iommu_ioas_iova_ranges.get(arg, 'out_iova_alignment')).toBe(1n);
    const ok = call(proc, fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: 1, allowed_iovas: out.addr });
    expect(ok.num_iovas).toBe(1);
    expect(U.iommu_iova_range.decode(out.bytes)).toEqual({ start: 0n, last: ULONG_MAX });
    // A range array in unmapped memory faults.
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: 1, allowed_iovas: 0x1000n }))).toBe('EFAULT');
  });

  it('ALLOW_IOVAS: EFAULT, start >= last, overlap (all EINVAL before any change); the list steers automatic IOVAs', () => {
    const { proc, fd, ioas, buf } = setup();
    const list = proc.memory.alloc(4096);
    const put = (i: number, start: bigint, last: bigint) => U.iommu_iova_range.encode({ start, last }, list.bytes, i * 16);
    const allow = (n: number) => call(proc, fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: n, allowed_iovas: list.addr });
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 1, allowed_iovas: 0x10n }))).toBe('EFAULT');
    put(0, 0x100000n, 0x100000n);
    expect(errnoOf(() => allow(1))).toBe('EINVAL');
    put(0, 0x100000n, 0x1fffffn);
    put(1, 0x180000n, 0x2fffffn);
    expect(errnoOf(() => allow(2))).toBe('EINVAL');
    put(1, 0x800000n, 0x8fffffn);
    allow(2);
    const m = call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x100000n, flags: RW });
    expect(m.iova).toBe(0x100000n);
    const m2 = call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x100000n, flags: RW });
    expect(m2.iova).toBe(0x800000n);
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x100000n, flags: RW }))).toBe('ENOSPC');
  });

  it('UNMAP: ENOENT when nothing is there, the all-form succeeds with 0, length written back', () => {
    const { proc, fd, ioas, buf } = setup();
    expect(call(proc, fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: 0n, length: ULONG_MAX }).length).toBe(0n);
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: 0x1000n, length: 0x1000n }))).toBe('ENOENT');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: 77, iova: ULONG_MAX, length: 1n }))).toBe('ENOENT');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: ULONG_MAX, length: 1n }))).toBe('EOVERFLOW');
    call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x4000n, flags: RW | FIXED, iova: 0x10000n });
    expect(call(proc, fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioas, iova: 0x10000n, length: 0x4000n }).length).toBe(0x4000n);
  });

  it('COPY: source checked before the destination lookup; pages shared, not re-pinned', async () => {
    const { proc, fd, ioas, buf, host } = setup();
    const dst = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    const copy = (f: Partial<U.StructValue<typeof U.iommu_ioas_copy.fields>>) =>
      call(proc, fd, U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, { flags: RW | FIXED, src_ioas_id: ioas, dst_ioas_id: dst, length: 0x2000n, src_iova: 0x10000n, dst_iova: 0x50000n, ...f });
    expect(errnoOf(() => copy({ dst_ioas_id: 99 }))).toBe('ENOENT'); // source range not covered comes first
    call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x4000n, flags: RW | FIXED, iova: 0x10000n });
    expect(errnoOf(() => copy({ flags: 0 }))).toBe('EINVAL');
    expect(errnoOf(() => copy({ flags: 1 << 4 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => copy({ length: ULONG_MAX }))).toBe('EOVERFLOW');
    expect(errnoOf(() => copy({ dst_ioas_id: 99 }))).toBe('ENOENT');
    expect(copy({}).dst_iova).toBe(0x50000n);
    // A device on the destination sees the source's memory.
    buf.bytes[0x1000] = 0x5a;
    const dfd = proc.open(host.device('d0').path);
    call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd });
    call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: dst });
    expect((await host.device('d0').dma.read(0x51000n, 1))[0]).toBe(0x5a);
  });

  it('MAP_FILE: length and overflow before the fd (EBADF), no __reserved field', () => {
    const { proc, fd, ioas } = setup();
    const mf = (f: Partial<U.StructValue<typeof U.iommu_ioas_map_file.fields>>) => call(proc, fd, U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file, { ioas_id: ioas, flags: RW, fd: 99, length: 4096n, ...f });
    expect(errnoOf(() => mf({ length: 0n }))).toBe('EINVAL');
    expect(errnoOf(() => mf({ start: ULONG_MAX - 1n }))).toBe('EOVERFLOW');
    expect(errnoOf(() => mf({}))).toBe('EBADF');
    const memfd = proc.memfdCreate('guest');
    proc.ftruncate(memfd, 1 << 16);
    expect(mf({ fd: memfd, flags: RW | FIXED, iova: 0x200000n, length: 1n << 16n }).iova).toBe(0x200000n);
  });

  it('CHANGE_PROCESS: __reserved EOPNOTSUPP; user-VA areas refuse it (EINVAL)', () => {
    const { proc, fd, ioas, buf } = setup();
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process, { __reserved: 1 }))).toBe('EOPNOTSUPP');
    call(proc, fd, U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process);
    call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x1000n, flags: RW });
    expect(errnoOf(() => call(proc, fd, U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process))).toBe('EINVAL');
  });
});

describe('dirty tracking end to end', () => {
  it('device DMA writes show up in GET_DIRTY_BITMAP; NO_CLEAR keeps them, a plain read clears them', async () => {
    const { proc, fd, ioas, buf, host } = setup();
    call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { ioas_id: ioas, user_va: buf.addr, length: 0x10000n, flags: RW | FIXED, iova: 0x100000n });
    const dfd = proc.open(host.device('d0').path);
    const dev = call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }).out_devid;
    const hwpt = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }).out_hwpt_id;
    const plain = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev, pt_id: ioas }).out_hwpt_id;
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: plain, flags: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags: 2 }))).toBe('EOPNOTSUPP');
    call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: hwpt });
    call(proc, fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await host.device('d0').dma.write(0x101000n, new Uint8Array([1]));
    await host.device('d0').dma.write(0x10f000n, new Uint8Array([1]));
    const bitmap = proc.memory.alloc(4096);
    const get = (flags = 0) => {
      bitmap.bytes.fill(0);
      call(proc, fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwpt, flags, iova: 0x100000n, length: 0x10000n, page_size: 4096n, data: bitmap.addr });
      return new DataView(bitmap.bytes.buffer, bitmap.bytes.byteOffset).getUint16(0, true);
    };
    expect(get(U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)).toBe((1 << 1) | (1 << 15));
    expect(get()).toBe((1 << 1) | (1 << 15));
    expect(get()).toBe(0);
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwpt, flags: 2 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwpt, __reserved: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, { hwpt_id: ioas }))).toBe('ENOENT');
  });
});
