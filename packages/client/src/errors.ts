// Errors a VMM author can act on: the kernel's errno (unchanged, so code can branch on it), the
// operation and the object it was applied to, and a sentence saying what that errno usually means
// for that operation. The original SystemError stays reachable as `cause`.

import { isErrnoError } from '@viommu/uapi';

/** What an errno means for one operation (`op:CODE`), or for any operation (`CODE`). */
const HINTS: Readonly<Record<string, string>> = {
  'destroy:EBUSY': 'the object is still in use: detach its devices and destroy what depends on it first (vDEVICEs, HW queues, vEVENTQs, nested HWPTs, then the vIOMMU, the parent, the IOAS)',
  'destroy:ENOENT': 'no object has this ID (already destroyed, or its device was unbound)',
  'attach:EINVAL': 'the HWPT is incompatible with this device (another IOMMU instance, or a capability it lacks): allocate one for this device',
  'attach:ENOENT': 'the target does not exist, or (vIOMMU nesting) the device has no vDEVICE on that vIOMMU yet',
  'attach:EBUSY': 'the device is in use by another IOMMU group member or owner',
  'bind:EBUSY': 'the device is already bound to an iommufd',
  'allocHwpt:EOPNOTSUPP': 'the IOMMU driver does not support these flags or this vendor data type',
  'allocHwpt:EINVAL': 'the parent cannot carry this HWPT (not a nest parent, a nested parent, or bad vendor data)',
  'allocViommu:EINVAL': 'the parent HWPT is not a nest parent, or belongs to another IOMMU instance than the device',
  'allocViommu:EOPNOTSUPP': 'the IOMMU driver has no vIOMMU of this type',
  'allocVdevice:EEXIST': 'the device already has a vDEVICE, or this virtual ID is taken on the vIOMMU',
  'allocVdevice:EINVAL': 'the device sits behind another IOMMU instance than the vIOMMU, or the virtual ID is out of range',
  'allocVeventq:EEXIST': 'the vIOMMU already has a vEVENTQ of this type',
  'allocVeventq:EINVAL': 'the depth must be 1..524288 and the flags and reserved field zero',
  'allocHwQueue:EOPNOTSUPP': 'the vIOMMU has no HW queue of this type',
  'allocHwQueue:EFAULT': 'the queue memory is not mapped in the parent IOAS, or not physically contiguous',
  'invalidate:EIO': 'the driver rejected an entry (an unsupported command, or a virtual ID without a vDEVICE)',
  'invalidate:EOPNOTSUPP': 'this object has no invalidation of its own (invalidate through the vIOMMU or the nested HWPT instead)',
  'invalidate:EINVAL': 'wrong object type, data type or entry layout for this driver',
  'map:EADDRINUSE': 'the IOVA range overlaps an existing mapping or a reserved region',
  'map:ENOSPC': 'no free IOVA range of this size and alignment',
  'unmap:ENOENT': 'nothing is mapped at this IOVA range',
  'unmap:EBUSY': 'the range is pinned by an in-kernel user (a HW queue or an emulated device)',
  ENOENT: 'no object with this ID',
  EFAULT: 'a user pointer is not mapped',
  ENOMEM: 'the kernel could not allocate memory',
  EOPNOTSUPP: 'not supported by this IOMMU driver or kernel',
  ENOTTY: 'this kernel does not know the ioctl',
  EPERM: 'not permitted for this process',
};

export function hintFor(op: string, code: string): string | undefined {
  return HINTS[`${op}:${code}`] ?? HINTS[code];
}

/**
 * A failed client call: `code`/`errno` are the kernel's, `op` the client operation (e.g.
 * 'allocViommu'), `object` what it acted on (e.g. 'HWPT 4'), `hint` what the errno usually means.
 */
export class ClientError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly hint: string | undefined;

  constructor(
    readonly op: string,
    readonly object: string | undefined,
    override readonly cause: Error & { code: string; errno: number },
  ) {
    const hint = hintFor(op, cause.code);
    super(`${op}${object ? ` on ${object}` : ''} failed: ${cause.code}${hint ? ` (${hint})` : ''}`);
    this.name = 'ClientError';
    this.code = cause.code;
    this.errno = cause.errno;
    this.hint = hint;
  }
}

/** Runs `fn`; an errno error becomes a ClientError for `op` on `object`, anything else propagates. */
export function wrapErrno<T>(op: string, object: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asClientError(op, object, e);
  }
}

export function asClientError(op: string, object: string | undefined, e: unknown): unknown {
  if (e instanceof ClientError || !isErrnoError(e)) return e;
  return new ClientError(op, object, e);
}

/** An operation that either worked or failed in a way a VMM is expected to handle. */
export type Outcome<T, Reason extends string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: Reason; readonly error: ClientError };

/**
 * The result of HWPT_INVALIDATE: the kernel always reports how many entries it handled. On failure
 * the VMM reports an error for entry `handled` to its guest and resumes after it (spec 9.4 step 16).
 */
export type InvalidateOutcome = { readonly ok: true; readonly handled: number } | { readonly ok: false; readonly handled: number; readonly error: ClientError };
