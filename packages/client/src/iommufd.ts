// The entry point: an open /dev/iommu of any Process target. It allocates the objects, encodes
// their uAPI structs, turns errno errors into ClientErrors, and keeps what it created so that
// teardown() can undo it all in an order the kernel accepts (spec 9.7).

import {
  IOMMU_FAULT_QUEUE_ALLOC, IOMMU_HWPT_ALLOC, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_INVALIDATE, IOMMU_IOAS_ALLOC,
  IOMMU_VIOMMU_ALLOC, VFIO_DEVICE_BIND_IOMMUFD, iommu_fault_alloc, iommu_hwpt_alloc, iommu_hwpt_invalidate,
  iommu_ioas_alloc, iommu_viommu_alloc, vfio_device_bind_iommufd, type Process, type StructCodec,
} from '@viommu/uapi';
import { Device } from './device.js';
import { ClientError, asClientError, type InvalidateOutcome, type Outcome } from './errors.js';
import { Hwpt, type HwptOptions, type InvalidationBatch, type VendorData } from './hwpt.js';
import { Ioas } from './ioas.js';
import type { ClientObject } from './object.js';
import { FaultQueue } from './queues.js';
import { Viommu } from './viommu.js';

type Fields<C extends StructCodec> = Partial<ReturnType<C['decode']>>;

export interface ViommuRequest {
  /** IOMMU_VIOMMU_TYPE_*. */
  readonly type: number;
  /** A device behind the IOMMU instance the vIOMMU models. */
  readonly device: Device;
  /** The nest-parent HWPT (stage-2). */
  readonly parent: Hwpt;
  /** Vendor data in/out (e.g. iommu_viommu_tegra241_cmdqv); read back into `Viommu.data`. */
  readonly data?: Uint8Array;
}

export class Iommufd {
  private readonly live: ClientObject[] = [];
  private readonly devices: Device[] = [];
  private closed = false;

  private constructor(
    readonly process: Process,
    readonly fd: number,
  ) {}

  /** Opens /dev/iommu (or `path`) in `process`. */
  static open(process: Process, path = '/dev/iommu'): Iommufd {
    const fd = wrapOpen(() => process.open(path), path);
    return new Iommufd(process, fd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Live objects in creation order. */
  get objects(): readonly ClientObject[] {
    return this.live;
  }

  // ---------------------------------------------------------------------------------------------
  // ioctl plumbing (used by the object classes)

  /** Encodes `fields`, runs the ioctl on the iommufd, decodes what the kernel wrote back. */
  call<C extends StructCodec>(op: string, object: string | undefined, request: number, codec: C, fields: Fields<C>): ReturnType<C['decode']> {
    const bytes = codec.encode(fields as never);
    this.ioctlOn(this.fd, op, object, request, bytes);
    return codec.decode(bytes) as ReturnType<C['decode']>;
  }

  ioctlBytes(op: string, object: string | undefined, request: number, bytes: Uint8Array): void {
    this.ioctlOn(this.fd, op, object, request, bytes);
  }

  ioctlOn(fd: number, op: string, object: string | undefined, request: number, bytes: Uint8Array): void {
    try {
      this.process.ioctl(fd, request, bytes);
    } catch (e) {
      throw asClientError(op, object, e);
    }
  }

  /** Copies `bytes` into fresh user memory for the duration of `fn` (a data_uptr). */
  withUserBytes<T>(bytes: Uint8Array | undefined, fn: (addr: bigint, len: number) => T, copyBack?: (b: Uint8Array) => void): T {
    if (!bytes || bytes.length === 0) return fn(0n, 0);
    const m = this.process.memory.alloc(bytes.length);
    try {
      m.bytes.set(bytes);
      const r = fn(m.addr, bytes.length);
      copyBack?.(m.bytes.slice(0, bytes.length));
      return r;
    } finally {
      this.process.memory.free(m.addr);
    }
  }

  track(o: ClientObject): void {
    this.live.push(o);
  }

  untrack(o: ClientObject): void {
    const i = this.live.indexOf(o);
    if (i >= 0) this.live.splice(i, 1);
  }

  forgetDevice(d: Device): void {
    const i = this.devices.indexOf(d);
    if (i >= 0) this.devices.splice(i, 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Objects

  /** Opens a VFIO cdev and binds it to this iommufd (VFIO_DEVICE_BIND_IOMMUFD). */
  bindDevice(path: string): Device {
    const dfd = wrapOpen(() => this.process.open(path), path);
    const bytes = vfio_device_bind_iommufd.encode({ iommufd: this.fd });
    try {
      this.ioctlOn(dfd, 'bind', path, VFIO_DEVICE_BIND_IOMMUFD, bytes);
    } catch (e) {
      this.process.close(dfd);
      throw e;
    }
    const d = new Device(this, vfio_device_bind_iommufd.get(bytes, 'out_devid'), path, dfd);
    this.devices.push(d);
    return d;
  }

  allocIoas(): Ioas {
    return new Ioas(this, this.call('allocIoas', undefined, IOMMU_IOAS_ALLOC, iommu_ioas_alloc, {}).out_ioas_id, 'IOAS');
  }

  /** FAULT_QUEUE_ALLOC: a queue for page requests of fault-capable HWPTs (spec 9.5). */
  allocFaultQueue(): FaultQueue {
    const r = this.call('allocFaultQueue', undefined, IOMMU_FAULT_QUEUE_ALLOC, iommu_fault_alloc, {});
    return new FaultQueue(this, r.out_fault_id, r.out_fault_fd);
  }

  /**
   * HWPT_ALLOC for `device` on `parent`: an IOAS gives a paging HWPT; a nest parent or a vIOMMU,
   * with vendor data, a nested one. Usually called through Ioas/Hwpt/Viommu.
   */
  allocHwpt(device: Device, parent: Ioas | Hwpt | Viommu, opts: HwptOptions = {}): Hwpt {
    let flags = 0;
    if (opts.nestParent) flags |= IOMMU_HWPT_ALLOC_NEST_PARENT;
    if (opts.dirtyTracking) flags |= IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    if (opts.pasid) flags |= IOMMU_HWPT_ALLOC_PASID;
    if (opts.fault) flags |= IOMMU_HWPT_FAULT_ID_VALID;
    const data: VendorData | undefined = opts.data;
    const id = this.withUserBytes(data?.bytes, (uptr, len) =>
      this.call('allocHwpt', `${device.label} on ${parent.label}`, IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, {
        flags, dev_id: device.id, pt_id: parent.id, data_type: data?.type ?? IOMMU_HWPT_DATA_NONE, data_len: len, data_uptr: uptr,
        fault_id: opts.fault?.id ?? 0,
      }).out_hwpt_id,
    );
    return new Hwpt(this, id, !(parent instanceof Ioas), parent, opts.fault);
  }

  /** VIOMMU_ALLOC (spec 9.4 step 10). */
  allocViommu(req: ViommuRequest): Viommu {
    const r = this.tryAllocViommu(req);
    if (!r.ok) throw r.error;
    return r.value;
  }

  /**
   * Like allocViommu, but a parent the device cannot nest on (EINVAL: not a nest parent, or it
   * belongs to another IOMMU instance) is an outcome: the VMM then allocates a stage-2 for this
   * device's IOMMU and a vIOMMU on that.
   */
  tryAllocViommu(req: ViommuRequest): Outcome<Viommu, 'incompatible-parent'> {
    let back: Uint8Array | undefined;
    try {
      const id = this.withUserBytes(
        req.data,
        (uptr, len) =>
          this.call('allocViommu', `${req.device.label} on ${req.parent.label}`, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {
            type: req.type, dev_id: req.device.id, hwpt_id: req.parent.id, data_len: len, data_uptr: uptr,
          }).out_viommu_id,
        (b) => (back = b),
      );
      return { ok: true, value: new Viommu(this, id, req.type, req.parent, back) };
    } catch (e) {
      if (e instanceof ClientError && e.code === 'EINVAL') return { ok: false, reason: 'incompatible-parent', error: e };
      throw e;
    }
  }

  /** HWPT_INVALIDATE on a nested HWPT or a vIOMMU; the handled count comes back on failure too. */
  invalidate(target: Hwpt | Viommu, batch: InvalidationBatch): InvalidateOutcome {
    const packed = packEntries(batch);
    // The list form passes its count as is (entry_len 0 reaches the kernel, which answers EINVAL).
    const n = batch.entries instanceof Uint8Array ? packed.length / batch.entryLen : batch.entries.length;
    const bytes = iommu_hwpt_invalidate.encode({ hwpt_id: target.id, data_type: batch.type, entry_len: batch.entryLen, entry_num: n });
    return this.withUserBytes(packed, (uptr) => {
      iommu_hwpt_invalidate.set(bytes, 'data_uptr', uptr);
      try {
        this.ioctlBytes('invalidate', target.label, IOMMU_HWPT_INVALIDATE, bytes);
        return { ok: true, handled: iommu_hwpt_invalidate.get(bytes, 'entry_num') };
      } catch (e) {
        if (!(e instanceof ClientError)) throw e;
        return { ok: false, handled: iommu_hwpt_invalidate.get(bytes, 'entry_num'), error: e };
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Teardown

  /**
   * Undoes everything, in the order of spec 9.7: detach every device, destroy objects newest first
   * (closing event fds and unmapping vIOMMU pages on the way), unbind the devices, close the
   * iommufd. Keeps going after a failure and throws them all at the end (AggregateError).
   */
  teardown(): void {
    if (this.closed) return;
    const errors: unknown[] = [];
    const attempt = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const d of this.devices) attempt(() => d.detachAll());
    for (const o of [...this.live].reverse()) attempt(() => o.destroy());
    for (const d of [...this.devices]) attempt(() => d.close());
    this.closed = true;
    attempt(() => this.process.close(this.fd));
    // Whatever could not be destroyed went with the context.
    for (const o of [...this.live]) o.forget();
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `teardown: ${errors.length} steps failed`);
  }

  [Symbol.dispose](): void {
    this.teardown();
  }
}

function wrapOpen(fn: () => number, path: string): number {
  try {
    return fn();
  } catch (e) {
    throw asClientError('open', path, e);
  }
}

function packEntries(batch: InvalidationBatch): Uint8Array {
  if (batch.entries instanceof Uint8Array) {
    if (batch.entryLen <= 0 || batch.entries.length % batch.entryLen !== 0) throw new RangeError(`${batch.entries.length} bytes are not whole entries of ${batch.entryLen}`);
    return batch.entries;
  }
  const out = new Uint8Array(batch.entries.length * batch.entryLen);
  batch.entries.forEach((e, i) => out.set(e.subarray(0, batch.entryLen), i * batch.entryLen));
  return out;
}
