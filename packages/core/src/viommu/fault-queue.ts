// IOMMU_FAULT_QUEUE_ALLOC and the FAULT object (eventq.c): where I/O page faults of devices
// attached to fault-capable HWPTs (IOMMU_HWPT_FAULT_ID_VALID) are delivered, through its fd:
// read(2) returns whole fault groups as iommu_hwpt_pgfault records, write(2) takes page responses.
// The queue and its fd rules are @viommu/fault's FaultQueue; this file is the object around it.
// A FAULT holds nothing; each HWPT using it holds it, and so does its open fd.

import { SystemError } from '@viommu/uapi';
import { FaultQueue, type FaultQueueOptions } from '@viommu/fault';
import type { FaultLike } from '../hwpt/hwpt.js';
import { IommufdObject, OBJ, ref } from '../object/object.js';
import { EventFile } from './event-file.js';
import type { FamilyContext } from './family.js';

export class FaultFile extends EventFile {
  readonly kind = 'fault';
  declare readonly queue: FaultQueue;

  read(buf: Uint8Array): number {
    return this.queue.read(buf);
  }

  override write(buf: Uint8Array): number {
    return this.queue.write(buf);
  }
}

export class Fault extends IommufdObject {
  readonly type = OBJ.FAULT;
  readonly queue: FaultQueue;
  file: FaultFile | undefined;

  constructor(options?: FaultQueueOptions) {
    super();
    this.queue = new FaultQueue(options);
  }

  override abort(): void {
    this.file?.release();
    this.destroy();
  }

  destroy(): void {
    // iommufd_fault_destroy: every group still queued or awaiting a response is answered INVALID.
    this.queue.destroy();
  }
}

/**
 * IOMMU_FAULT_QUEUE_ALLOC (iommufd_fault_alloc) up to the fd: the reserved FAULT with its file
 * open; the caller installs the fd and writes back (the dispatcher finalizes or aborts it).
 */
export function faultAlloc(fc: FamilyContext, flags: number): Fault {
  if (flags !== 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'FAULT_QUEUE_ALLOC: flags must be 0');
  // The host's response-timeout policy (SimHostOptions.faultResponseTimeoutMs) applies to every queue.
  const f = new Fault(fc.ctx.host.faultQueueOptions);
  fc.ctx.objects.reserve(f);
  try {
    fc.ctx.host.failNth.point('fault:anon_inode_getfile');
  } catch (e) {
    fc.ctx.objects.abort(f);
    throw e;
  }
  f.file = new FaultFile(fc.ctx, f, f.queue, 0);
  return f;
}

/** Something that can be made fault-capable: a HWPT of either kind. */
export interface FaultCapableHwpt {
  fault: FaultLike | undefined;
  readonly domain: { setFaultCapable?(capable: boolean): void } | undefined;
}

/**
 * The FAULT_ID_VALID step of HWPT_ALLOC, after the domain exists: look up the FAULT (ENOENT, the
 * caller then aborts the new HWPT), let the HWPT hold it, and tell the domain its faults go to
 * userspace (the kernel sets domain->iopf_handler). The HWPT's destroy drops the reference.
 */
export function hwptSetFault(fc: FamilyContext, hwpt: FaultCapableHwpt, faultId: number): void {
  const fault = fc.ctx.objects.get<Fault>(faultId, OBJ.FAULT);
  hwpt.fault = ref(fault);
  hwpt.domain?.setFaultCapable?.(true);
}
