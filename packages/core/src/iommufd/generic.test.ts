// The kernel selftest's generic ioctl checks (tools/testing/selftests/iommu/iommufd.c, fixture
// `iommufd`): cmd_fail, cmd_length, cmd_ex_fail, global_options, the VFIO compat checks without a
// device, vfio_ioas; plus the dispatcher rules of spec 3.1/3.2.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { call, errnoOf } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';
import { VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU } from '@viommu/uapi';

function open() {
  const host = createSimHost({ iommus: [simpleDriver()] });
  const proc = host.spawn();
  return { host, proc, fd: proc.open('/dev/iommu') };
}

const io = (nr: number) => (U.IOMMUFD_TYPE << 8) | nr;

describe('iommufd fixture: generic ioctl checks', () => {
  it('cmd_fail: ENOENT for ID 0, EFAULT for a NULL argument, ENOTTY below the table', () => {
    const { proc, fd } = open();
    expect(errnoOf(() => call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 0 }))).toBe('ENOENT');
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY, null))).toBe('EFAULT');
    expect(errnoOf(() => proc.ioctl(fd, io(U.IOMMUFD_CMD_BASE - 1), U.iommu_destroy.encode()))).toBe('ENOTTY');
  });

  const lengths: [string, number, U.StructCodec][] = [
    ['IOMMU_DESTROY', U.IOMMU_DESTROY, U.iommu_destroy],
    ['IOMMU_GET_HW_INFO', U.IOMMU_GET_HW_INFO, U.iommu_hw_info],
    ['IOMMU_HWPT_ALLOC', U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc],
    ['IOMMU_HWPT_INVALIDATE', U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate],
    ['IOMMU_IOAS_ALLOC', U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc],
    ['IOMMU_IOAS_IOVA_RANGES', U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges],
    ['IOMMU_IOAS_ALLOW_IOVAS', U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas],
    ['IOMMU_IOAS_MAP', U.IOMMU_IOAS_MAP, U.iommu_ioas_map],
    ['IOMMU_IOAS_COPY', U.IOMMU_IOAS_COPY, U.iommu_ioas_copy],
    ['IOMMU_IOAS_UNMAP', U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap],
    ['IOMMU_OPTION', U.IOMMU_OPTION, U.iommu_option],
    ['IOMMU_VFIO_IOAS', U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas],
    ['IOMMU_IOAS_MAP_FILE', U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file],
    ['IOMMU_VIOMMU_ALLOC', U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc],
    ['IOMMU_VDEVICE_ALLOC', U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc],
    ['IOMMU_IOAS_CHANGE_PROCESS', U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process],
  ];

  it.each(lengths)('cmd_length %s: EINVAL below the minimum, E2BIG for a non-zero tail, a zero tail changes nothing', (_name, request, codec) => {
    const { proc, fd } = open();
    const arg = new Uint8Array(codec.size + 1);
    const setSize = (n: number) => new DataView(arg.buffer).setUint32(0, n, true);
    arg[codec.size] = 0xff;
    setSize(codec.minSize - 1);
    expect(errnoOf(() => proc.ioctl(fd, request, arg))).toBe('EINVAL');
    setSize(codec.size + 1);
    expect(errnoOf(() => proc.ioctl(fd, request, arg))).toBe('E2BIG');
    setSize(codec.size);
    const plain = errnoOf(() => proc.ioctl(fd, request, arg));
    setSize(codec.size + 1);
    arg[codec.size] = 0;
    // The same command again with a zero byte past the struct: the same result.
    const { proc: p2, fd: fd2 } = open();
    arg.fill(0, 4, codec.size);
    expect(errnoOf(() => p2.ioctl(fd2, request, arg))).toBe(plain);
  });

  it('cmd_ex_fail: a longer zero-tailed struct works, a non-zero tail is E2BIG, a short one EINVAL', () => {
    const { proc, fd } = open();
    const arg = new Uint8Array(16);
    const dv = new DataView(arg.buffer);
    dv.setUint32(0, 16, true);
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY, arg))).toBe('ENOENT');
    arg[8] = 1;
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY, arg))).toBe('E2BIG');
    dv.setUint32(0, 8, true);
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY, arg))).toBe('ENOENT');
    dv.setUint32(0, 7, true);
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY, arg))).toBe('EINVAL');
  });

  it('global_options: RLIMIT_MODE get/set, EINVAL for 2, HUGE_PAGES needs an IOAS', () => {
    const { proc, fd } = open();
    const opt = (f: Partial<U.StructValue<typeof U.iommu_option.fields>>) => call(proc, fd, U.IOMMU_OPTION, U.iommu_option, f);
    expect(opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET, val64: 1n }).val64).toBe(0n);
    opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 1n });
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 2n }))).toBe('EINVAL');
    expect(opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET }).val64).toBe(1n);
    opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 0n });
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET }))).toBe('ENOENT');
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_SET }))).toBe('ENOENT');
    // Beyond the selftest: the other errnos of spec 5.9, in the kernel's order.
    expect(errnoOf(() => opt({ option_id: 7 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, __reserved: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, object_id: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: 2 }))).toBe('EOPNOTSUPP');
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 1n }))).toBe('EBUSY');
    expect(opt({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET, object_id: ioas }).val64).toBe(1n);
    opt({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_SET, object_id: ioas, val64: 0n });
    expect(opt({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_GET, object_id: ioas }).val64).toBe(0n);
    expect(errnoOf(() => opt({ option_id: U.IOMMU_OPTION_HUGE_PAGES, op: U.IOMMU_OPTION_OP_SET, object_id: ioas, val64: 2n }))).toBe('EINVAL');
  });

  it('RLIMIT_MODE SET needs CAP_SYS_RESOURCE', () => {
    const host = createSimHost({ iommus: [simpleDriver()] });
    const proc = host.spawn({ capSysResource: false });
    const fd = proc.open('/dev/iommu');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_OPTION, U.iommu_option, { option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 1n }))).toBe('EPERM');
  });

  it('OPTION writes back only val64', () => {
    const { proc, fd } = open();
    const arg = U.iommu_option.encode({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_GET, val64: 5n });
    const before = arg.slice(0, 16);
    proc.ioctl(fd, U.IOMMU_OPTION, arg);
    expect(arg.slice(0, 16)).toEqual(before);
    expect(U.iommu_option.get(arg, 'val64')).toBe(0n);
  });

  it('write-back covers min(size, sizeof): bytes past sizeof are untouched', () => {
    const { proc, fd } = open();
    const arg = new Uint8Array(U.iommu_ioas_alloc.size + 8);
    new DataView(arg.buffer).setUint32(0, arg.length, true);
    proc.ioctl(fd, U.IOMMU_IOAS_ALLOC, arg);
    expect(U.iommu_ioas_alloc.get(arg, 'out_ioas_id')).toBe(1);
    expect([...arg.subarray(12)]).toEqual(new Array(8).fill(0));
  });

  it('an empty table slot and an unknown command above the table are ENOTTY; a bad pointer is EFAULT first', () => {
    const { proc, fd } = open();
    expect(errnoOf(() => proc.ioctl(fd, io(0x95), U.iommu_destroy.encode()))).toBe('ENOTTY');
    expect(errnoOf(() => proc.ioctl(fd, io(0x95), null))).toBe('EFAULT');
    expect(errnoOf(() => proc.ioctl(fd, io(0xa1), null))).toBe('ENOTTY');
    // Right slot, wrong direction/size bits in the request number.
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY | (1 << 30), U.iommu_destroy.encode()))).toBe('ENOTTY');
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_DESTROY, new Uint8Array(2)))).toBe('EFAULT');
  });

  it('a failed allocating ioctl leaves no object behind (write-back EFAULT aborts the new IOAS)', () => {
    const { proc, fd, host } = open();
    // The struct lives in read-only user memory, passed by pointer: the copy-in works, the write-back faults.
    const run = host.physical.allocRun(1);
    U.iommu_ioas_alloc.encode({}, run.bytes);
    const ro = proc.memory.mapShared(run, 0, 4096, false);
    expect(errnoOf(() => proc.ioctl(fd, U.IOMMU_IOAS_ALLOC, Number(ro.addr)))).toBe('EFAULT');
    const ctx = [...host.contexts][0]!;
    expect(ctx.objects.occupied).toBe(0);
    // The ID was released: the next IOAS gets 1.
    expect(call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id).toBe(1);
  });

  it('simple_ioctls, unmap_cmd, map_cmd, info_cmd, set_iommu_cmd (VFIO compat without a compat IOAS)', () => {
    const { proc, fd } = open();
    expect(proc.ioctl(fd, VFIO_GET_API_VERSION, 0)).toBe(0);
    expect(proc.ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    const unmap = new Uint8Array(24);
    const udv = new DataView(unmap.buffer);
    udv.setBigUint64(8, BigInt(U.MOCK_APERTURE_START), true);
    udv.setBigUint64(16, 4096n, true);
    udv.setUint32(0, 1, true);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap))).toBe('EINVAL');
    udv.setUint32(0, 24, true);
    udv.setUint32(4, 1 << 31, true);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap))).toBe('EINVAL');
    udv.setUint32(4, 0, true);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap))).toBe('ENODEV');

    const buf = proc.memory.alloc(4096);
    const map = new Uint8Array(32);
    const mdv = new DataView(map.buffer);
    mdv.setBigUint64(8, buf.addr, true);
    mdv.setBigUint64(16, BigInt(U.MOCK_APERTURE_START), true);
    mdv.setBigUint64(24, 4096n, true);
    mdv.setUint32(0, 1, true);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map))).toBe('EINVAL');
    mdv.setUint32(0, 32, true);
    mdv.setUint32(4, 1 << 31, true);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map))).toBe('EINVAL');
    mdv.setUint32(4, 3, true);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map))).toBe('ENODEV');

    const info = new Uint8Array(24);
    info[0] = 1;
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_GET_INFO, info))).toBe('EINVAL');
    info[0] = 24;
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_GET_INFO, info))).toBe('ENODEV');

    expect(errnoOf(() => proc.ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))).toBe('ENODEV');
    expect(errnoOf(() => proc.ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU))).toBe('ENODEV');
  });

  it('VFIO_IOMMU_GET_INFO with a compat IOAS reports page sizes and the IOVA range capability chain', () => {
    const { proc, fd } = open();
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioas });
    // Too small for the capabilities: argsz comes back as what is needed, cap_offset 0.
    const small = new Uint8Array(24);
    small[0] = 24;
    proc.ioctl(fd, VFIO_IOMMU_GET_INFO, small);
    const sdv = new DataView(small.buffer);
    expect(sdv.getUint32(0, true)).toBe(24 + 16 + 32);
    expect(sdv.getUint32(4, true)).toBe(3);
    expect(sdv.getBigUint64(8, true)).toBe((1n << 64n) - 4096n);
    expect(sdv.getUint32(16, true)).toBe(0);
    const big = new Uint8Array(72);
    big[0] = 72;
    proc.ioctl(fd, VFIO_IOMMU_GET_INFO, big);
    const dv = new DataView(big.buffer);
    expect(dv.getUint32(16, true)).toBe(24);
    expect(dv.getUint16(24, true)).toBe(3); // DMA_AVAIL
    expect(dv.getUint32(28, true)).toBe(40); // next
    expect(dv.getUint32(32, true)).toBe(0xffffffff);
    expect(dv.getUint16(40, true)).toBe(1); // IOVA_RANGE
    expect(dv.getUint32(48, true)).toBe(1);
    expect(dv.getBigUint64(56, true)).toBe(0n);
    expect(dv.getBigUint64(64, true)).toBe((1n << 64n) - 1n);
  });

  it('vfio_ioas: GET ENODEV, SET ENOENT for a bad ID, then SET/GET/CLEAR', () => {
    const { proc, fd } = open();
    expect(errnoOf(() => call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_GET }))).toBe('ENODEV');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET }))).toBe('ENOENT');
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioas });
    expect(call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_GET }).ioas_id).toBe(ioas);
    call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_CLEAR });
    expect(errnoOf(() => call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_GET }))).toBe('ENODEV');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: 3 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: 0, __reserved: 1 }))).toBe('EOPNOTSUPP');
    // Destroying the selected IOAS clears the selection.
    call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioas });
    call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: ioas });
    expect(errnoOf(() => call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_GET }))).toBe('ENODEV');
  });
});

describe('VFIO type1 compat with a compat IOAS', () => {
  it('SET_IOMMU, MAP_DMA at a fixed IOVA, UNMAP_DMA writes back the size, UNMAP_ALL, CHECK_EXTENSION', () => {
    const host = createSimHost({ iommus: [simpleDriver()] });
    const proc = host.spawn();
    const fd = proc.open('/dev/iommu');
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioas });
    expect(errnoOf(() => proc.ioctl(fd, VFIO_SET_IOMMU, 2))).toBe('EINVAL');
    expect(proc.ioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(proc.ioctl(fd, VFIO_CHECK_EXTENSION, 4 /* VFIO_DMA_CC_IOMMU: no domains, so trivially coherent */)).toBe(1);
    expect(proc.ioctl(fd, VFIO_CHECK_EXTENSION, 8 /* VFIO_NOIOMMU_IOMMU */)).toBe(0);
    const buf = proc.memory.alloc(0x4000);
    const map = new Uint8Array(32);
    const mdv = new DataView(map.buffer);
    mdv.setUint32(0, 32, true);
    mdv.setUint32(4, 3, true);
    mdv.setBigUint64(8, buf.addr, true);
    mdv.setBigUint64(16, 0x100000n, true);
    mdv.setBigUint64(24, 0x4000n, true);
    expect(proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map)).toBe(0);
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map))).toBe('EEXIST');
    const unmap = new Uint8Array(24);
    const udv = new DataView(unmap.buffer);
    udv.setUint32(0, 24, true);
    udv.setBigUint64(8, 0x100000n, true);
    udv.setBigUint64(16, 0x4000n, true);
    expect(proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
    expect(udv.getBigUint64(16, true)).toBe(0x4000n);
    proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map);
    udv.setUint32(4, 2, true); // UNMAP_ALL
    expect(errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap))).toBe('EINVAL');
    udv.setBigUint64(8, 0n, true);
    udv.setBigUint64(16, 0n, true);
    expect(proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
    expect(udv.getBigUint64(16, true)).toBe(0x4000n);
  });
});
