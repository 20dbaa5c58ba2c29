// IOMMU_HW_QUEUE_ALLOC on a real IOAS and io page table (the kernel selftest's iommufd_viommu.hw_queue
// scenario): the checks in order, the hidden internal ACCESS and its ID, pinning (UNMAP → EBUSY),
// physical contiguity, the physical base handed to the driver, and destroy order through the
// driver's queue-to-queue dependency.

import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import type { DriverDevice, DriverHwQueue, DriverPagingDomain, DriverV1, HwQueueInitRequest, ViommuInitRequest } from '../driver/driver.js';
import { MemlockUser } from '../ioas/index.js';
import { Ioas } from '../iommufd/ioas.js';
import { OBJ } from '../object/object.js';
import { FakeDevice, FakeHwpt, fakeContext } from '../testing/fake-context.js';
import { queueSpan } from './hw-queue.js';
import './index.js';

const PAGE = 4096;

/** Queues like the selftest's: index < 2, no duplicate, predecessor required (EIO) and held. */
function queueDriver() {
  const seen: HwQueueInitRequest[] = [];
  const queues: (DriverHwQueue | undefined)[] = [undefined, undefined];
  const driver = {
    apiVersion: 1 as const,
    name: 'mockq',
    probe() {},
    probeDevice: () => ({}) as DriverDevice,
    allocPagingDomain: () => ({}) as DriverPagingDomain,
    attach() {},
    translate: () => 0,
    viommuInit(_req: ViommuInitRequest) {
      return {
        destroy() {},
        hwQueueSupported: (type: number) => type === U.IOMMU_HW_QUEUE_TYPE_SELFTEST,
        hwQueueInit(req: HwQueueInitRequest): DriverHwQueue {
          if (req.index >= 2) throw new U.SystemError('EINVAL', 'ioctl');
          if (queues[req.index]) throw new U.SystemError('EEXIST', 'ioctl');
          const prev = req.index ? queues[req.index - 1] : undefined;
          if (req.index && !prev) throw new U.SystemError('EIO', 'ioctl');
          const q: DriverHwQueue = { destroy: () => (queues[req.index] = undefined) };
          if (prev) req.dependOn(prev);
          queues[req.index] = q;
          seen.push(req);
          return q;
        },
      };
    },
  };
  return { driver: driver as DriverV1, seen };
}

function setup() {
  const { mm, ctx, call, errno, add } = fakeContext();
  const q = queueDriver();
  const ioas = add(new Ioas(ctx));
  const idev = add(new FakeDevice(q.driver, {} as DriverDevice));
  const s2 = add(new FakeHwpt(q.driver, {} as DriverPagingDomain, true, ioas));
  const viommu = call(U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: U.IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: idev.id, hwpt_id: s2.id }).out_viommu_id;
  const owner = { mm, user: new MemlockUser(), memlockLimit: Infinity, capIpcLock: true };
  const map = (userVa: bigint, length: number, iova: bigint) =>
    ioas.iopt.mapUser(mm, userVa, BigInt(length), { iova, prot: 3, owner, rlimitMode: 0 });
  const alloc = (index: number, iova: bigint, length: bigint | number, f: Partial<ReturnType<typeof U.iommu_hw_queue_alloc.decode>> = {}) =>
    call(U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, {
      viommu_id: viommu,
      type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST,
      index,
      nesting_parent_iova: iova,
      length: BigInt(length),
      ...f,
    }).out_hw_queue_id;
  return { ctx, mm, ioas, viommu, map, alloc, errno, seen: q.seen };
}

describe('the page span of a queue', () => {
  it('rounds the queue out to whole pages and refuses size_t overflow with ERANGE', () => {
    expect(queueSpan(0x1000800n, 0x800n)).toEqual({ alignedIova: 0x1000000n, offset: 0x800n, length: 4096n, pages: 1 });
    expect(queueSpan(0x1000800n, 0x801n)).toEqual({ alignedIova: 0x1000000n, offset: 0x800n, length: 8192n, pages: 2 });
    expect(() => queueSpan(0x800n, (1n << 64n) - 0x800n)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => queueSpan(0n, (1n << 64n) - 1n)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
  });
});

describe('IOMMU_HW_QUEUE_ALLOC (iommufd_viommu.hw_queue)', () => {
  it('runs the selftest scenario: checks, pinning, index order and descending destroy', () => {
    const t = setup();
    const iova = BigInt(U.MOCK_APERTURE_START);
    // Fail IOMMU_HW_QUEUE_TYPE_DEFAULT, a zero length, an overflowing end, and an unmapped base.
    expect(t.errno(() => t.alloc(0, iova, PAGE, { type: U.IOMMU_HW_QUEUE_TYPE_DEFAULT }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => t.alloc(0, iova, PAGE, { flags: 1 }))).toBe('EOPNOTSUPP');
    expect(t.errno(() => t.alloc(0, iova, 0))).toBe('EINVAL');
    expect(t.errno(() => t.alloc(0, (1n << 64n) - 1n, PAGE))).toBe('EOVERFLOW');
    expect(t.errno(() => t.alloc(0, iova, PAGE, { viommu_id: 0 }))).toBe('ENOENT');
    expect(t.errno(() => t.alloc(0, iova, PAGE, { type: 1 }))).toBe('EOPNOTSUPP');
    const before = t.ctx.objects.size;
    expect(t.errno(() => t.alloc(0, iova, PAGE))).toBe('ENOENT');
    // Nothing left behind by the failures: no queue, no hidden access, no reserved ID.
    expect(t.ctx.objects.size).toBe(before);
    expect(t.ctx.objects.reservedCount()).toBe(0);

    const buf = t.mm.alloc(2 * PAGE);
    t.map(buf.addr, PAGE, iova);
    const iova2 = iova + BigInt(PAGE);
    t.map(buf.addr + BigInt(PAGE), PAGE, iova2);
    // Index 1 first (no predecessor: EIO) and index MAX (EINVAL).
    expect(t.errno(() => t.alloc(1, iova, PAGE))).toBe('EIO');
    expect(t.errno(() => t.alloc(U.IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE))).toBe('EINVAL');

    const q0 = t.alloc(0, iova, PAGE);
    // The hidden access took the next ID and is visible, but DESTROY on it is EBUSY.
    const accessId = q0 + 1;
    expect(t.ctx.objects.get(accessId, OBJ.ACCESS).type).toBe(OBJ.ACCESS);
    expect(t.errno(() => t.ctx.objects.destroyById(accessId))).toBe('EBUSY');
    // The driver got the physical address of the queue's first byte.
    const frame = t.mm.frameOf(buf.addr)!;
    expect(t.seen[0]!.basePa).toBe(frame * PAGE);
    expect(t.errno(() => t.alloc(0, iova, PAGE))).toBe('EEXIST');
    // The queue's page is pinned by an internal access: UNMAP is EBUSY; the next page is free.
    expect(t.errno(() => t.ioas.iopt.unmap(iova, BigInt(PAGE)))).toBe('EBUSY');
    t.ioas.iopt.unmap(iova2, BigInt(PAGE));

    // Index 1, unaligned inside the same page.
    const q1 = t.alloc(1, iova + BigInt(PAGE / 2), PAGE / 2);
    expect(t.seen[1]!.basePa).toBe(frame * PAGE + PAGE / 2);
    expect(t.errno(() => t.ctx.objects.destroyById(q0))).toBe('EBUSY');
    expect(t.errno(() => t.ctx.objects.destroyById(t.viommu))).toBe('EBUSY');
    t.ctx.objects.destroyById(q1);
    t.ctx.objects.destroyById(q0);
    // The hidden access went with its queue, and the page can be unmapped now.
    expect(t.ctx.objects.find(accessId)).toBeUndefined();
    t.ioas.iopt.unmap(iova, BigInt(PAGE));
    t.ctx.objects.destroyById(t.viommu);
  });

  it('refuses queue memory that is not physically contiguous with EFAULT', () => {
    const t = setup();
    const iova = BigInt(U.MOCK_APERTURE_START);
    const a = t.mm.alloc(PAGE);
    t.mm.alloc(PAGE); // keeps the two runs apart
    const b = t.mm.alloc(PAGE);
    t.map(a.addr, PAGE, iova);
    t.map(b.addr, PAGE, iova + BigInt(PAGE));
    expect(t.errno(() => t.alloc(0, iova, 2 * PAGE))).toBe('EFAULT');
    // Everything was undone: the pages can be unmapped and no ID is held.
    t.ioas.iopt.unmap(iova, BigInt(2 * PAGE));
    expect(t.ctx.objects.reservedCount()).toBe(0);
  });
});
