// The vIOMMU family through the real ioctl dispatcher, on a context whose DEVICE and HWPT_PAGING
// objects are stand-ins (the core's own ones are tested with them elsewhere) and whose driver is a
// small selftest-like vIOMMU: the kernel's iommufd_viommu fixture scenarios that concern objects,
// references, errno order, vEVENTQ fds and invalidation write-back. The full selftest port runs
// in @viommu/backend-mock on the real mock driver.

import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import type { DriverDevice, DriverPagingDomain, DriverV1, DriverViommu, UserDataArray, ViommuCore, ViommuInitRequest } from '../driver/driver.js';
import type { PhysicalMemory } from '../host/physical-memory.js';
import { OBJ } from '../object/object.js';
import { FakeDevice, FakeHwpt, fakeContext } from '../testing/fake-context.js';
import { copyFullUserArray, copyUserData, copyUserDataOut } from './user-data.js';
import { vdeviceRemoveOnUnbind } from './vdevice.js';
import type { Viommu } from './viommu.js';
import './index.js';

/** A vIOMMU driver shaped like the kernel selftest's mock: type 0xdeadbeef, 24-byte data with an mmap region, device caches. */
function fakeDriver(name: string, physical: PhysicalMemory) {
  const caches = new Map<DriverDevice, number[]>();
  const cores: ViommuCore[] = [];
  let failInit = false;
  const driver = {
    apiVersion: 1 as const,
    name,
    probe() {},
    probeDevice: () => ({}) as DriverDevice,
    allocPagingDomain: () => ({}) as DriverPagingDomain,
    attach() {},
    translate: () => 0,
    viommuSupported: (_dev: DriverDevice, type: number) => type === U.IOMMU_VIOMMU_TYPE_SELFTEST,
    viommuInit(req: ViommuInitRequest): DriverViommu {
      if (req.type !== U.IOMMU_VIOMMU_TYPE_SELFTEST) throw new U.SystemError('EOPNOTSUPP', 'ioctl');
      if (failInit) throw new U.SystemError('ENOMEM', 'ioctl');
      let offset: bigint | undefined;
      if (req.data.len) {
        const d = U.iommu_viommu_selftest.decode(copyUserData(req.data, U.IOMMU_VIOMMU_TYPE_SELFTEST, 24, 8));
        const run = physical.allocRun(2);
        offset = req.core.registerMmap(run.firstFrame * 4096, 2 * 4096);
        physical.writeU32(run.firstFrame * 4096, d.in_data);
        copyUserDataOut(
          req.data,
          U.IOMMU_VIOMMU_TYPE_SELFTEST,
          U.iommu_viommu_selftest.encode({ in_data: d.in_data, out_data: d.in_data, out_mmap_offset: offset, out_mmap_length: 8192n }),
          8,
        );
      }
      cores.push(req.core);
      const core = req.core;
      return {
        destroy() {
          if (offset !== undefined) core.unregisterMmap(offset);
        },
        vdeviceInit({ dev }) {
          caches.set(dev, [U.IOMMU_TEST_DEV_CACHE_DEFAULT, U.IOMMU_TEST_DEV_CACHE_DEFAULT, U.IOMMU_TEST_DEV_CACHE_DEFAULT, U.IOMMU_TEST_DEV_CACHE_DEFAULT]);
        },
        cacheInvalidate(array: UserDataArray) {
          if (array.entryNum === 0 && array.type === U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) return;
          const total = array.entryNum;
          array.entryNum = 0; // nothing handled unless the copy succeeds
          const bytes = copyFullUserArray({ ...array, entryNum: total }, U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, 12);
          const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          for (let i = 0; i < total; i++) {
            const flags = dv.getUint32(i * 12, true);
            const vdevId = dv.getUint32(i * 12 + 4, true);
            const cacheId = dv.getUint32(i * 12 + 8, true);
            array.entryNum = i;
            if (flags & ~U.IOMMU_TEST_INVALIDATE_FLAG_ALL) throw new U.SystemError('EOPNOTSUPP', 'ioctl');
            if (cacheId > U.MOCK_DEV_CACHE_ID_MAX) throw new U.SystemError('EINVAL', 'ioctl');
            const dev = core.findDevice(BigInt(vdevId));
            if (!dev) throw new U.SystemError('EINVAL', 'ioctl');
            const c = caches.get(dev)!;
            if (flags & U.IOMMU_TEST_INVALIDATE_FLAG_ALL) c.fill(0);
            else c[cacheId] = 0;
          }
          array.entryNum = total;
        },
      };
    },
  };
  return { driver: driver as DriverV1, caches, cores, setFailInit: (v: boolean) => (failInit = v) };
}

function setup() {
  const base = fakeContext();
  const { physical, mm, ctx, call, add } = base;
  /** The struct in read-only user memory, passed by pointer: every write-back faults. */
  const readOnlyArg = (bytes: Uint8Array): number => {
    const run = physical.allocRun(1);
    run.bytes.set(bytes);
    return Number(mm.mapShared(run, 0, 4096, false).addr);
  };
  const fake = fakeDriver('mock0', physical);
  const devInfo = {} as DriverDevice;
  const idev = add(new FakeDevice(fake.driver, devInfo));
  const s2 = add(new FakeHwpt(fake.driver, {} as DriverPagingDomain, true));
  const viommuAlloc = (f: Partial<ReturnType<typeof U.iommu_viommu_alloc.decode>> = {}) =>
    call(U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: U.IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: idev.id, hwpt_id: s2.id, ...f }).out_viommu_id;
  // IOMMU_DESTROY's handler is the core's; its semantics are the table's destroyById.
  const destroy = (id: number) => ctx.objects.destroyById(id);
  return { ...base, readOnlyArg, fake, idev, s2, viommuAlloc, destroy };
}

describe('IOMMU_VIOMMU_ALLOC', () => {
  it('holds its nest parent; DESTROY of the parent is EBUSY until the vIOMMU goes', () => {
    const t = setup();
    const id = t.viommuAlloc();
    expect(t.s2.users).toBe(2);
    expect(t.errno(() => t.destroy(t.s2.id))).toBe('EBUSY');
    t.destroy(id);
    expect(t.s2.users).toBe(1);
    t.destroy(t.s2.id);
  });

  it('checks in the kernel order: flags/type, device, driver type, parent, nest-parent', () => {
    const t = setup();
    const notParent = t.add(new FakeHwpt(t.fake.driver, {} as DriverPagingDomain, false));
    expect(t.errno(() => t.viommuAlloc({ flags: 1 }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => t.viommuAlloc({ type: 0 }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => t.viommuAlloc({ dev_id: 0 }))).toBe('ENOENT');
    // An unsupported type is refused before the parent lookup (get_viommu_size).
    expect(t.errno(() => t.viommuAlloc({ type: 0xdead, hwpt_id: 0 }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => t.viommuAlloc({ hwpt_id: 0 }))).toBe('ENOENT');
    expect(t.errno(() => t.viommuAlloc({ hwpt_id: t.idev.id }))).toBe('ENOENT');
    expect(t.errno(() => t.viommuAlloc({ hwpt_id: notParent.id }))).toBe('EINVAL');
    expect(t.ctx.objects.size).toBe(3);
  });

  it('a failing driver init leaves no object and no reference behind; the ID is reused', () => {
    const t = setup();
    t.fake.setFailInit(true);
    expect(t.errno(() => t.viommuAlloc())).toBe('ENOMEM');
    expect(t.s2.users).toBe(1);
    expect(t.ctx.objects.reservedCount()).toBe(0);
    t.fake.setFailInit(false);
    expect(t.viommuAlloc()).toBe(3);
  });

  it('passes vendor data in and out and registers the driver mmap region at PAGE_SIZE', () => {
    const t = setup();
    const data = t.mm.alloc(4096);
    U.iommu_viommu_selftest.encode({ in_data: 0xbeef }, data.bytes);
    const id = t.viommuAlloc({ data_uptr: data.addr, data_len: 24 });
    const out = U.iommu_viommu_selftest.decode(data.bytes);
    expect(out.out_data).toBe(0xbeef);
    expect(out.out_mmap_offset).toBe(4096n);
    expect(out.out_mmap_length).toBe(8192n);
    expect(t.ctx.mmaps.find(4096n)?.owner.id).toBe(id);
    t.destroy(id);
    expect(t.ctx.mmaps.count).toBe(0);
  });
});

describe('write-back faults', () => {
  it('an allocating ioctl whose write-back faults leaves nothing behind (vIOMMU, its data and mmap region, vDEVICE, vEVENTQ fd)', () => {
    const t = setup();
    const data = t.mm.alloc(4096);
    const arg = t.readOnlyArg(U.iommu_viommu_alloc.encode({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: t.idev.id, hwpt_id: t.s2.id, data_uptr: data.addr, data_len: 24 }));
    expect(t.errno(() => t.ioctl(U.IOMMU_VIOMMU_ALLOC, arg))).toBe('EFAULT');
    expect(t.s2.users).toBe(1);
    expect(t.ctx.mmaps.count).toBe(0);
    const vid = t.viommuAlloc();
    expect(t.errno(() => t.ioctl(U.IOMMU_VDEVICE_ALLOC, t.readOnlyArg(U.iommu_vdevice_alloc.encode({ viommu_id: vid, dev_id: t.idev.id, virt_id: 1n }))))).toBe('EFAULT');
    expect(t.idev.vdev).toBeUndefined();
    expect(t.idev.users).toBe(1);
    const refs = t.ctx.fileRefCount;
    expect(t.errno(() => t.ioctl(U.IOMMU_VEVENTQ_ALLOC, t.readOnlyArg(U.iommu_veventq_alloc.encode({ viommu_id: vid, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 1 }))))).toBe('EFAULT');
    expect(t.ctx.fileRefCount).toBe(refs);
    expect(t.errno(() => t.ioctl(U.IOMMU_FAULT_QUEUE_ALLOC, t.readOnlyArg(U.iommu_fault_alloc.encode({}))))).toBe('EFAULT');
    expect(t.ctx.fileRefCount).toBe(refs);
    // Nothing but the stand-ins and the vIOMMU; its IDs were all given back.
    expect(t.ctx.objects.size).toBe(3);
    t.destroy(vid);
    expect(t.viommuAlloc()).toBe(vid);
  });

  it('HWPT_INVALIDATE whose write-back faults returns EFAULT instead of its own result', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    // A request that would fail with EOPNOTSUPP (reserved field) reports EFAULT when entry_num cannot be written.
    expect(t.errno(() => t.ioctl(U.IOMMU_HWPT_INVALIDATE, t.readOnlyArg(U.iommu_hwpt_invalidate.encode({ hwpt_id: vid, __reserved: 1 }))))).toBe('EFAULT');
    expect(t.errno(() => t.ioctl(U.IOMMU_HWPT_INVALIDATE, t.readOnlyArg(U.iommu_hwpt_invalidate.encode({ hwpt_id: vid, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST }))))).toBe('EFAULT');
  });
});

describe('IOMMU_VDEVICE_ALLOC', () => {
  it('holds the vIOMMU and the device; refuses a second vDEVICE and a taken virt_id with EEXIST', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    const alloc = (virt: bigint, dev = t.idev.id) => t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: vid, dev_id: dev, virt_id: virt }).out_vdevice_id;
    const vdev = alloc(0x99n);
    expect(t.idev.users).toBe(2);
    expect(t.errno(() => t.destroy(vid))).toBe('EBUSY');
    expect(t.errno(() => alloc(0x88n))).toBe('EEXIST');
    const other = t.add(new FakeDevice(t.fake.driver, {} as DriverDevice));
    expect(t.errno(() => alloc(0x99n, other.id))).toBe('EEXIST');
    expect(alloc(0x88n, other.id)).toBeGreaterThan(vdev);
    t.destroy(vdev);
    expect(t.idev.vdev).toBeUndefined();
    expect(t.idev.users).toBe(1);
    expect(alloc(0x99n)).toBe(vdev); // the lowest free ID again
  });

  it('refuses a device behind another IOMMU instance, and unknown IDs with ENOENT', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    const foreign = t.add(new FakeDevice(fakeDriver('other', t.physical).driver, {} as DriverDevice));
    const alloc = (viommu: number, dev: number) => t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: viommu, dev_id: dev, virt_id: 1n });
    expect(t.errno(() => alloc(0, t.idev.id))).toBe('ENOENT');
    expect(t.errno(() => alloc(vid, 0))).toBe('ENOENT');
    expect(t.errno(() => alloc(vid, foreign.id))).toBe('EINVAL');
  });

  it('leaves a tombstone when the device is unbound under it (vdevice_tombstone)', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    const vdev = t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: vid, dev_id: t.idev.id, virt_id: 0x99n }).out_vdevice_id;
    vdeviceRemoveOnUnbind({ ctx: t.ctx, memory: t.mm }, t.idev);
    expect(t.errno(() => t.destroy(vdev))).toBe('ENOENT');
    expect(t.ctx.objects.tombstoneCount).toBe(1);
    // The tombstoned ID is not reused; the vIOMMU is free again.
    expect(t.viommuAlloc()).not.toBe(vdev);
    t.destroy(vid);
    // A device being unbound takes no new vDEVICE.
    const v2 = t.viommuAlloc();
    expect(t.errno(() => t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: v2, dev_id: t.idev.id, virt_id: 1n }))).toBe('ENOENT');
  });
});

describe('IOMMU_VEVENTQ_ALLOC and the vEVENTQ fd', () => {
  const alloc = (t: ReturnType<typeof setup>, viommu: number, depth: number, f: Partial<ReturnType<typeof U.iommu_veventq_alloc.decode>> = {}) =>
    t.call(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: viommu, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: depth, ...f });

  it('bounds the depth, allows one queue per type, and keeps the vIOMMU busy until fd close + destroy', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    expect(t.errno(() => alloc(t, vid, 0))).toBe('EINVAL');
    expect(t.errno(() => alloc(t, vid, (1 << 19) + 1))).toBe('EINVAL');
    expect(t.errno(() => alloc(t, vid, 2, { flags: 1 }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => alloc(t, vid, 2, { __reserved: 1 }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => alloc(t, vid, 2, { type: 0 }))).toBe('EOPNOTSUPP');
    const q = alloc(t, vid, 1 << 19);
    expect(t.errno(() => alloc(t, vid, 2))).toBe('EEXIST');
    expect(t.errno(() => t.destroy(vid))).toBe('EBUSY');
    expect(t.errno(() => t.destroy(q.out_veventq_id))).toBe('EBUSY'); // its fd is open
    const refs = t.ctx.fileRefCount;
    t.file(q.out_veventq_fd).release();
    expect(t.ctx.fileRefCount).toBe(refs - 1);
    t.destroy(q.out_veventq_id);
    t.destroy(vid);
  });

  it('reads header + payload records in sequence, EINVAL for short buffers, and a LOST_EVENTS record on overflow', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    const q = alloc(t, vid, 2);
    const f = t.file(q.out_veventq_fd);
    const core = t.fake.cores[0]!;
    const ev = (virt: number) => U.iommu_viommu_event_selftest.encode({ virt_id: virt });
    expect(t.errno(() => f.read!(new Uint8Array(0)))).toBe('EINVAL');
    expect(t.errno(() => f.read!(new Uint8Array(7)))).toBe('EINVAL');
    expect(f.read!(new Uint8Array(64))).toBe(0);
    expect(core.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, ev(0x99))).toBeUndefined();
    expect(t.errno(() => f.read!(new Uint8Array(8)))).toBe('EINVAL'); // header fits, payload does not
    const buf = new Uint8Array(64);
    expect(f.read!(buf)).toBe(12);
    expect(U.iommufd_vevent_header.decode(buf)).toEqual({ flags: 0, sequence: 0 });
    expect(U.iommu_viommu_event_selftest.decode(buf, 8).virt_id).toBe(0x99);
    for (let i = 0; i < 3; i++) core.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, ev(0x88));
    expect(f.read!(buf)).toBe(12 + 12 + 8);
    expect(U.iommufd_vevent_header.decode(buf, 0).sequence).toBe(1);
    expect(U.iommufd_vevent_header.decode(buf, 12).sequence).toBe(2);
    expect(U.iommufd_vevent_header.decode(buf, 24)).toEqual({ flags: U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 3 });
    // An event of a type without a queue is dropped.
    expect(core.reportEvent(U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, new Uint8Array(32))).toBe('EOPNOTSUPP');
  });

  it('allows one queue per type: another type on the same vIOMMU is independent', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    const a = alloc(t, vid, 2);
    const b = alloc(t, vid, 2, { type: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 });
    const core = t.fake.cores[0]!;
    expect(core.reportEvent(U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, new Uint8Array(32).fill(7))).toBeUndefined();
    expect(t.file(a.out_veventq_fd).read!(new Uint8Array(64))).toBe(0);
    const buf = new Uint8Array(64);
    expect(t.file(b.out_veventq_fd).read!(buf)).toBe(40);
    expect(buf[8]).toBe(7);
    // Destroying one unlinks it: later events of its type are dropped, the other queue is untouched.
    t.file(b.out_veventq_fd).release();
    t.destroy(b.out_veventq_id);
    expect(core.reportEvent(U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, new Uint8Array(32))).toBe('EOPNOTSUPP');
    expect(alloc(t, vid, 2, { type: U.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 }).out_veventq_id).toBe(b.out_veventq_id);
  });

  it('poll reports POLLIN once an event arrives', async () => {
    const t = setup();
    const vid = t.viommuAlloc();
    const f = t.file(alloc(t, vid, 4).out_veventq_fd);
    expect(await f.poll!(U.POLLIN, 0)).toBe(0);
    const pending = f.poll!(U.POLLIN, -1);
    t.fake.cores[0]!.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, new Uint8Array(4));
    expect(await pending).toBe(U.POLLIN);
  });
});

describe('IOMMU_HWPT_INVALIDATE on a vIOMMU (vdevice_cache)', () => {
  function inv(t: ReturnType<typeof setup>, id: number, entries: [number, number, number][] | null, fields: { type?: number; len?: number; num?: number; reserved?: number } = {}) {
    let uptr = 0n;
    if (entries) {
      const m = t.mm.alloc(4096);
      entries.forEach(([flags, vdev, cache], i) => U.iommu_viommu_invalidate_selftest.encode({ flags, vdev_id: vdev, cache_id: cache }, m.bytes, i * (fields.len ?? 12)));
      uptr = m.addr;
    }
    const bytes = U.iommu_hwpt_invalidate.encode({
      hwpt_id: id,
      data_uptr: uptr,
      data_type: fields.type ?? U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
      entry_len: fields.len ?? 12,
      entry_num: fields.num ?? entries?.length ?? 0,
      __reserved: fields.reserved ?? 0,
    });
    let error = 'ok';
    try {
      t.ioctl(U.IOMMU_HWPT_INVALIDATE, bytes);
    } catch (e) {
      error = (e as { code: string }).code;
    }
    return { error, done: U.iommu_hwpt_invalidate.get(bytes, 'entry_num') };
  }

  it('writes entry_num back on success and failure, with the kernel bounds', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: vid, dev_id: t.idev.id, virt_id: 0x99n });
    const cache = t.fake.caches.get(t.idev.dev)!;
    expect(inv(t, vid, [], { num: 0 })).toEqual({ error: 'ok', done: 0 });
    expect(inv(t, vid, [[0, 0x99, 0]], { type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID })).toEqual({ error: 'EINVAL', done: 0 });
    // Structure size sanity, as the selftest runs it: a zero entry at a larger or smaller stride
    // copies fine (zero tail / zero extension) but names no vDEVICE.
    expect(inv(t, vid, [[0, 0, 0]], { len: 13 })).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, [[0, 0, 0]], { len: 1 })).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, [[0, 0x99, 0]], { len: 0 })).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, [[0, 0x99, 0]], { len: 4097 })).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, [[0, 0x99, 0]], { num: (1 << 19) + 1 })).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, null, { num: 1 })).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, [[0, 0x99, 0]], { reserved: 1 })).toEqual({ error: 'EOPNOTSUPP', done: 0 });
    expect(inv(t, 0, [[0, 0x99, 0]])).toEqual({ error: 'ENOENT', done: 0 });
    expect(inv(t, t.s2.id, [[0, 0x99, 0]])).toEqual({ error: 'EINVAL', done: 0 });
    expect(inv(t, vid, [[0xffffffff, 0x99, 0]])).toEqual({ error: 'EOPNOTSUPP', done: 0 });
    expect(inv(t, vid, [[0, 0x9, 0]])).toEqual({ error: 'EINVAL', done: 0 });
    // The first entry is handled, the second fails: entry_num = 1 and the first took effect.
    expect(inv(t, vid, [[0, 0x99, 0], [0xffffffff, 0x99, 1]])).toEqual({ error: 'EOPNOTSUPP', done: 1 });
    expect(cache).toEqual([0, U.IOMMU_TEST_DEV_CACHE_DEFAULT, U.IOMMU_TEST_DEV_CACHE_DEFAULT, U.IOMMU_TEST_DEV_CACHE_DEFAULT]);
    expect(inv(t, vid, [[0, 0x99, 0], [0, 0x99, U.MOCK_DEV_CACHE_ID_MAX + 1]])).toEqual({ error: 'EINVAL', done: 1 });
    expect(inv(t, vid, [[0, 0x99, 2], [0, 0x99, 3]])).toEqual({ error: 'ok', done: 2 });
    expect(inv(t, vid, [[U.IOMMU_TEST_INVALIDATE_FLAG_ALL, 0x99, 0]])).toEqual({ error: 'ok', done: 1 });
    expect(cache).toEqual([0, 0, 0, 0]);
  });
});

describe('context release', () => {
  it('destroys the whole vIOMMU family in reference order when the last file reference goes', () => {
    const t = setup();
    const vid = t.viommuAlloc();
    t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: vid, dev_id: t.idev.id, virt_id: 1n });
    const q = t.call(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: vid, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 4 });
    const fq = t.call(U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, {});
    expect(t.errno(() => t.call(U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, { flags: 1 }))).toBe('EOPNOTSUPP');
    const viommu = t.ctx.objects.get<Viommu>(vid, OBJ.VIOMMU);
    expect(viommu.users).toBe(3);
    t.file(q.out_veventq_fd).release();
    t.file(fq.out_fault_fd).release();
    t.ctx.putFile();
    expect(t.ctx.isReleased).toBe(true);
    expect(t.ctx.leaked).toEqual([]);
  });
});

describe('fail_nth over the vIOMMU scenarios', () => {
  /** The family end to end on one context: every allocating ioctl, vendor data, events, invalidation. */
  function scenario(t: ReturnType<typeof setup>) {
    const data = t.mm.alloc(4096);
    U.iommu_viommu_selftest.encode({ in_data: 0xbeef }, data.bytes);
    const vid = t.viommuAlloc({ data_uptr: data.addr, data_len: 24 });
    t.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: vid, dev_id: t.idev.id, virt_id: 0x99n });
    const q = t.call(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: vid, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 2 });
    const f = t.call(U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, {});
    t.fake.cores[t.fake.cores.length - 1]!.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, U.iommu_viommu_event_selftest.encode({ virt_id: 0x99 }));
    t.file(q.out_veventq_fd).read!(new Uint8Array(64));
    const inv = t.mm.alloc(4096);
    U.iommu_viommu_invalidate_selftest.encode({ flags: U.IOMMU_TEST_INVALIDATE_FLAG_ALL, vdev_id: 0x99 }, inv.bytes);
    t.ioctl(U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate.encode({ hwpt_id: vid, data_uptr: inv.addr, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entry_len: 12, entry_num: 1 }));
    return { q, f };
  }

  it('every injected failure unwinds completely: no reserved ID, no dangling reference, a clean release', () => {
    let fired = 0;
    for (let n = 1; n < 100; n++) {
      const t = setup();
      const failNth = t.ctx.host.failNth;
      failNth.arm(n);
      let out: ReturnType<typeof scenario> | undefined;
      try {
        out = scenario(t);
      } catch (e) {
        expect((e as { code: string }).code).toBe('ENOMEM');
      }
      const didFire = failNth.fired;
      failNth.disarm();
      expect(t.ctx.objects.reservedCount()).toBe(0);
      // Every reference on the stand-ins comes from a live object of the family.
      const viommus = t.ctx.objects.objects().filter((o) => o.type === OBJ.VIOMMU);
      expect(t.s2.users).toBe(1 + viommus.length);
      // Close what the process holds; the context then releases everything it owns.
      for (let fd = 3; fd < 8; fd++) {
        try {
          t.file(fd).release();
        } catch {
          // no such fd in this run
        }
      }
      t.ctx.putFile();
      expect(t.ctx.isReleased).toBe(true);
      expect(t.ctx.leaked).toEqual([]);
      expect(t.ctx.mmaps.count).toBe(0);
      expect(t.ctx.objects.size).toBe(0);
      if (!didFire) {
        expect(out).toBeDefined();
        break;
      }
      fired++;
    }
    expect(fired).toBeGreaterThanOrEqual(6);
  });
});

describe('vEVENT accounting at the fd', () => {
  it('events produced = events read + events reported lost, under random loads', () => {
    // A small deterministic generator, so a failure reproduces.
    let seed = 0x12345678;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const t = setup();
      const vid = t.viommuAlloc();
      const depth = 1 + rnd(8);
      const q = t.call(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { viommu_id: vid, type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: depth });
      const f = t.file(q.out_veventq_fd);
      const core = t.fake.cores[0]!;
      let produced = 0;
      let read = 0;
      let lost = 0;
      let expectSeq = 0;
      const drain = (size: number) => {
        const buf = new Uint8Array(size);
        let n: number;
        try {
          n = f.read!(buf);
        } catch (e) {
          expect((e as { code: string }).code).toBe('EINVAL');
          return;
        }
        for (let at = 0; at < n; ) {
          const h = U.iommufd_vevent_header.decode(buf, at);
          // Every sequence number skipped was an event lost; a LOST_EVENTS record closes a run of them.
          lost += (h.sequence - expectSeq) & 0x7fffffff;
          expectSeq = (h.sequence + 1) & 0x7fffffff;
          if (h.flags & U.IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
            lost++;
            at += 8;
          } else {
            read++;
            expect(U.iommu_viommu_event_selftest.decode(buf, at + 8).virt_id).toBe(h.sequence);
            at += 12;
          }
        }
      };
      for (let step = 0; step < 200; step++) {
        if (rnd(3) !== 0) {
          core.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, U.iommu_viommu_event_selftest.encode({ virt_id: produced }));
          produced++;
        } else {
          drain(rnd(64));
        }
      }
      drain(1 << 16);
      expect(f.read!(new Uint8Array(64))).toBe(0);
      expect(read + lost).toBe(produced);
    }
  });
});
