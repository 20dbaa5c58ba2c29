// IOMMU_VEVENTQ_ALLOC and the VEVENTQ object (eventq.c, driver.c): one queue per (vIOMMU, type)
// through which a driver forwards events of the guest's devices (with their virt_id) to the VMM.
// The queue itself — depth, sequence numbers, the lost-events record, the read(2) rules — is
// @viommu/fault's VeventQueue; this file is the object around it: it holds its vIOMMU, sits in the
// vIOMMU's list, and owns its fd.

import { SystemError, type ErrnoName } from '@viommu/uapi';
import { VEVENTQ_MAX_DEPTH, VeventQueue } from '@viommu/fault';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import { EventFile } from './event-file.js';
import type { FamilyContext } from './family.js';
import type { Viommu } from './viommu.js';

export class VeventqFile extends EventFile {
  readonly kind = 'veventq';
  declare readonly queue: VeventQueue;

  read(buf: Uint8Array): number {
    return this.queue.read(buf);
  }
}

export class Veventq extends IommufdObject {
  readonly type = OBJ.VEVENTQ;
  readonly queue: VeventQueue;
  file: VeventqFile | undefined;
  private linked = false;

  constructor(
    readonly viommu: Viommu,
    /** IOMMU_VEVENTQ_TYPE_* */
    readonly veventqType: number,
    depth: number,
  ) {
    super();
    this.queue = new VeventQueue({ depth, type: veventqType });
  }

  /** Links the queue to its vIOMMU (it holds it, and the driver's reports find it). */
  link(): void {
    ref(this.viommu);
    this.viommu.veventqs.push(this);
    this.linked = true;
  }

  /**
   * A driver event for this queue (iommufd_viommu_report_event): queued, or recorded as lost when
   * the queue is full. The kernel returns 0 either way; ENOMEM only when the event could not be
   * allocated, which fault injection models.
   */
  report(payload: Uint8Array): ErrnoName | undefined {
    if (payload.length === 0) return 'EINVAL';
    try {
      // The event is allocated without sleeping; when that fails the lost-events record stands in.
      this.viommu.ctx.host.failNth.point('vevent:kzalloc');
    } catch {
      this.queue.reportAllocFailure();
      return 'ENOMEM';
    }
    this.queue.report(payload);
    return undefined;
  }

  override abort(): void {
    // iommufd_object_abort_and_destroy: the file goes first (its release drops its reference).
    this.file?.release();
    this.destroy();
  }

  destroy(): void {
    // iommufd_veventq_abort: queued events freed, unlinked from the vIOMMU (later events of this type are dropped).
    this.queue.destroy();
    if (this.linked) {
      const list = this.viommu.veventqs;
      const i = list.indexOf(this);
      if (i >= 0) list.splice(i, 1);
      unref(this.viommu);
      this.linked = false;
    }
  }
}

/** The checks VEVENTQ_ALLOC makes before any lookup (kernel order). */
export function veventqAllocPrecheck(flags: number, reserved: number, type: number, depth: number): void {
  if (flags !== 0 || reserved !== 0 || type === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'VEVENTQ_ALLOC: flags and __reserved must be 0, type non-zero');
  if (depth === 0 || depth > VEVENTQ_MAX_DEPTH) throw new SystemError('EINVAL', 'ioctl', `veventq_depth ${depth} not in 1..${VEVENTQ_MAX_DEPTH}`);
}

export interface VeventqAllocArgs {
  readonly flags: number;
  readonly reserved: number;
  readonly viommuId: number;
  readonly type: number;
  readonly depth: number;
}

/**
 * IOMMU_VEVENTQ_ALLOC (iommufd_veventq_alloc) up to the fd: returns the reserved queue, linked to
 * its vIOMMU and with its file open; the caller installs the fd, writes back, then finalizes it
 * (or uninstalls the fd and aborts it).
 */
export function veventqAlloc(fc: FamilyContext, a: VeventqAllocArgs): Veventq {
  veventqAllocPrecheck(a.flags, a.reserved, a.type, a.depth);
  const viommu = fc.ctx.objects.get<Viommu>(a.viommuId, OBJ.VIOMMU);
  if (viommu.findVeventq(a.type)) throw new SystemError('EEXIST', 'ioctl', `vIOMMU ${a.viommuId} already has a vEVENTQ of type 0x${a.type.toString(16)}`);
  const q = new Veventq(viommu, a.type, a.depth);
  fc.ctx.objects.reserve(q);
  q.link();
  try {
    fc.ctx.host.failNth.point('veventq:anon_inode_getfile');
  } catch (e) {
    fc.ctx.objects.abort(q);
    throw e;
  }
  q.file = new VeventqFile(fc.ctx, q, q.queue, 0);
  return q;
}
