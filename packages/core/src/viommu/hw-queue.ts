// IOMMU_HW_QUEUE_ALLOC and the HW_QUEUE object (viommu.c): a guest queue (e.g. a Tegra241 VCMDQ)
// the hardware reads by physical address. The core pins the guest pages through a hidden internal
// ACCESS on the IOAS behind the vIOMMU's stage-2 (so IOAS_UNMAP of them fails with EBUSY while the
// queue lives), checks they are physically contiguous and hands the physical base to the driver.
// The queue holds its vIOMMU, owns its access, and — where the driver asks (Tegra241, the selftest
// mock) — holds the queue of the previous index, which forces destruction in descending order.

import { PAGE_SIZE, SystemError } from '@viommu/uapi';
import type { DriverHwQueue, HwQueueInitRequest } from '../driver/driver.js';
import type { IoasAccess } from '../ioas/index.js';
import type { Ioas } from '../iommufd/ioas.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { FamilyContext } from './family.js';
import type { Viommu } from './viommu.js';

const U64_MAX = (1n << 64n) - 1n;
const PAGE = BigInt(PAGE_SIZE);

/**
 * The hidden internal ACCESS a HW queue pins its pages through (the kernel's
 * iommufd_access_create_internal): a real object with an ID, visible at once, whose creator holds
 * a reference (so IOMMU_DESTROY on it is EBUSY); internal, so UNMAP of what it pinned is EBUSY.
 */
export class InternalAccess extends IommufdObject implements IoasAccess {
  readonly type = OBJ.ACCESS;
  readonly iovaAlignment = PAGE_SIZE;
  readonly internal = true;
  ioas: Ioas | undefined;

  static create(fc: FamilyContext): InternalAccess {
    const a = new InternalAccess();
    fc.ctx.objects.reserve(a);
    ref(a); // the creator's reference, until destroyInternal
    fc.ctx.objects.finalize(a);
    return a;
  }

  attach(ioas: Ioas): void {
    ioas.iopt.addAccess(this);
    this.ioas = ref(ioas);
  }

  detach(): void {
    if (!this.ioas) return;
    this.ioas.iopt.removeAccess(this);
    unref(this.ioas);
    this.ioas = undefined;
  }

  /** iommufd_access_destroy_internal: drop the creator's reference and remove the object. */
  destroyInternal(fc: FamilyContext): void {
    unref(this);
    fc.ctx.objects.remove(this);
  }

  destroy(): void {
    this.detach();
  }
}

/** The page-aligned span a queue of `length` bytes at `iova` occupies (iommufd_hw_queue_alloc_phys). */
export function queueSpan(iova: bigint, length: bigint): { alignedIova: bigint; offset: bigint; length: bigint; pages: number } {
  const alignedIova = iova - (iova % PAGE);
  const offset = iova - alignedIova;
  // size_t arithmetic: overflow of offset + length, or of the page round-up, is ERANGE.
  let span = offset + length;
  if (span > U64_MAX) throw new SystemError('ERANGE', 'ioctl', 'HW queue span overflows');
  span += PAGE - 1n;
  if (span > U64_MAX) throw new SystemError('ERANGE', 'ioctl', 'HW queue span overflows');
  const pages = span / PAGE;
  return { alignedIova, offset, length: pages * PAGE, pages: Number(pages) };
}

/** The checks HW_QUEUE_ALLOC makes before any lookup (kernel order). */
export function hwQueueAllocPrecheck(flags: number, type: number, iova: bigint, length: bigint): void {
  if (flags !== 0 || type === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'HW_QUEUE_ALLOC: flags must be 0 and type non-zero');
  if (length === 0n) throw new SystemError('EINVAL', 'ioctl', 'HW queue length is 0');
  if (iova + length - 1n > U64_MAX) throw new SystemError('EOVERFLOW', 'ioctl', 'HW queue end overflows');
}

export class HwQueue extends IommufdObject {
  readonly type = OBJ.HW_QUEUE;
  viommu: Viommu | undefined;
  access: InternalAccess | undefined;
  impl: DriverHwQueue | undefined;
  /** Queues this one holds because the driver said so (iommufd_hw_queue_depend). */
  readonly depends: HwQueue[] = [];

  constructor(
    readonly fc: FamilyContext,
    readonly queueType: number,
    readonly index: number,
    readonly baseIova: bigint,
    readonly length: bigint,
  ) {
    super();
  }

  destroy(): void {
    // iommufd_hw_queue_destroy: driver teardown, then the pinned pages and the hidden access, then the vIOMMU.
    this.impl?.destroy();
    this.impl = undefined;
    for (const d of this.depends.splice(0)) unref(d);
    const access = this.access;
    if (access) {
      const span = queueSpan(this.baseIova, this.length);
      access.ioas?.iopt.unpinPages(access, span.alignedIova, span.length);
      access.detach();
      access.destroyInternal(this.fc);
      this.access = undefined;
    }
    if (this.viommu) unref(this.viommu);
    this.viommu = undefined;
  }
}

/** HW queue objects by their driver half, for iommufd_hw_queue_depend (dependOn). */
const byImpl = new WeakMap<DriverHwQueue, HwQueue>();

export interface HwQueueAllocArgs {
  readonly flags: number;
  readonly viommuId: number;
  readonly type: number;
  readonly index: number;
  readonly iova: bigint;
  readonly length: bigint;
}

/**
 * IOMMU_HW_QUEUE_ALLOC (iommufd_hw_queue_alloc_ioctl), in the kernel's order. Returns the reserved
 * queue; on failure everything taken so far is released (the queue's destroy does it).
 */
export function hwQueueAlloc(fc: FamilyContext, a: HwQueueAllocArgs): HwQueue {
  hwQueueAllocPrecheck(a.flags, a.type, a.iova, a.length);
  const viommu = fc.ctx.objects.get<Viommu>(a.viommuId, OBJ.VIOMMU);
  const impl = viommu.impl;
  if (!impl?.hwQueueInit || !impl.hwQueueSupported || !impl.hwQueueSupported(a.type)) {
    throw new SystemError('EOPNOTSUPP', 'ioctl', `vIOMMU ${a.viommuId} has no HW queue type 0x${a.type.toString(16)}`);
  }
  const q = new HwQueue(fc, a.type, a.index, a.iova, a.length);
  fc.ctx.objects.reserve(q);
  try {
    const basePa = pinQueue(fc, q, viommu);
    q.viommu = ref(viommu);
    const req: HwQueueInitRequest = {
      type: a.type,
      index: a.index,
      id: q.id,
      baseIova: a.iova,
      basePa,
      length: Number(a.length),
      dependOn(other: DriverHwQueue) {
        const dep = byImpl.get(other);
        if (!dep || dep === q || dep.viommu !== viommu) throw new SystemError('EINVAL', 'ioctl', 'HW queue dependency on an unrelated queue');
        q.depends.push(ref(dep));
      },
    };
    q.impl = impl.hwQueueInit.call(impl, req);
    byImpl.set(q.impl, q);
  } catch (e) {
    fc.ctx.objects.abort(q);
    throw e;
  }
  return q;
}

/** iommufd_hw_queue_alloc_phys: creates, attaches and pins the hidden access; returns the physical base. */
function pinQueue(fc: FamilyContext, q: HwQueue, viommu: Viommu): number {
  const span = queueSpan(q.baseIova, q.length);
  fc.ctx.host.failNth.point('hw_queue:kvzalloc pages');
  const access = InternalAccess.create(fc);
  let frames: number[];
  try {
    access.attach(viommu.hwpt.ioas);
    frames = access.ioas!.iopt.pinPages(access, span.alignedIova, span.length, 0);
  } catch (e) {
    access.detach();
    access.destroyInternal(fc);
    throw e;
  }
  for (let i = 1; i < frames.length; i++) {
    if (frames[i] !== frames[i - 1]! + 1) {
      access.ioas!.iopt.unpinPages(access, span.alignedIova, span.length);
      access.detach();
      access.destroyInternal(fc);
      throw new SystemError('EFAULT', 'ioctl', 'HW queue memory is not physically contiguous');
    }
  }
  q.access = access;
  return frames[0]! * PAGE_SIZE + Number(span.offset);
}
