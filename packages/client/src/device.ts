// A device bound to the iommufd through its VFIO cdev (spec 9.1): the DEVICE object's ID is what
// HWPT_ALLOC, VIOMMU_ALLOC and VDEVICE_ALLOC name; attach and detach go through the cdev.

import {
  IOMMU_GET_HW_INFO, IOMMU_HW_INFO_FLAG_INPUT_TYPE, VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_DETACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_PASID, iommu_hw_info, vfio_device_attach_iommufd_pt,
  vfio_device_detach_iommufd_pt,
} from '@viommu/uapi';
import { ClientError, asClientError, type Outcome } from './errors.js';
import type { Hwpt } from './hwpt.js';
import type { Ioas } from './ioas.js';
import type { Iommufd } from './iommufd.js';
import type { ClientObject } from './object.js';

export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_* of `data`. */
  readonly type: number;
  /** The vendor struct as the kernel filled it (zero-extended to the length asked for). */
  readonly data: Uint8Array;
  readonly maxPasidLog2: number;
  /** IOMMU_HW_CAP_* bits. */
  readonly capabilities: bigint;
}

/** The PASID of an attachment; -1 stands for the RID (no PASID). */
type PasidKey = number;

export class Device {
  /** What each PASID (-1: the RID) is attached to. */
  readonly attached = new Map<PasidKey, Ioas | Hwpt>();
  private closed = false;

  constructor(
    readonly iommufd: Iommufd,
    /** The DEVICE object ID (VFIO_DEVICE_BIND_IOMMUFD's out_devid). */
    readonly id: number,
    /** The VFIO cdev path and fd. */
    readonly path: string,
    readonly fd: number,
  ) {}

  get label(): string {
    return `DEVICE ${this.id} (${this.path})`;
  }

  /**
   * Attaches (or replaces) the RID or `pasid` to an IOAS (the kernel picks or makes an automatic
   * HWPT) or to a HWPT. Returns the ID of the HWPT now attached.
   */
  attach(target: Ioas | Hwpt, opts: { pasid?: number } = {}): number {
    const r = this.tryAttach(target, opts);
    if (!r.ok) throw r.error;
    return r.value;
  }

  /** Like attach, but an incompatible HWPT (EINVAL: another IOMMU instance, a missing capability) is an outcome to branch on. */
  tryAttach(target: Ioas | Hwpt, opts: { pasid?: number } = {}): Outcome<number, 'incompatible'> {
    const bytes = vfio_device_attach_iommufd_pt.encode({
      flags: opts.pasid === undefined ? 0 : VFIO_DEVICE_ATTACH_PASID,
      pasid: opts.pasid ?? 0,
      pt_id: target.id,
    });
    try {
      this.iommufd.process.ioctl(this.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, bytes);
    } catch (e) {
      const err = asClientError('attach', `${this.label} -> ${target.label}`, e);
      if (err instanceof ClientError && err.code === 'EINVAL') return { ok: false, reason: 'incompatible', error: err };
      throw err;
    }
    this.attached.set(opts.pasid ?? -1, target);
    return { ok: true, value: vfio_device_attach_iommufd_pt.get(bytes, 'pt_id') };
  }

  /** Detaches the RID or `pasid` (DMA is blocked afterwards). */
  detach(opts: { pasid?: number } = {}): void {
    const bytes = vfio_device_detach_iommufd_pt.encode({ flags: opts.pasid === undefined ? 0 : VFIO_DEVICE_DETACH_PASID, pasid: opts.pasid ?? 0 });
    this.iommufd.ioctlOn(this.fd, 'detach', this.label, VFIO_DEVICE_DETACH_IOMMUFD_PT, bytes);
    this.attached.delete(opts.pasid ?? -1);
  }

  /** Detaches every PASID (ascending) and then the RID, as an unbind would. */
  detachAll(): void {
    const pasids = [...this.attached.keys()].filter((p) => p >= 0).sort((a, b) => a - b);
    for (const pasid of pasids) this.detach({ pasid });
    if (this.attached.has(-1)) this.detach();
  }

  /** IOMMU_GET_HW_INFO: the vendor's hardware description (spec 6.2). `type` asks for a specific one. */
  hwInfo(opts: { type?: number; dataLen?: number } = {}): HwInfo {
    const len = opts.dataLen ?? 256;
    const mem = this.iommufd.process.memory.alloc(Math.max(len, 1));
    try {
      const r = this.iommufd.call('hwInfo', this.label, IOMMU_GET_HW_INFO, iommu_hw_info, {
        flags: opts.type === undefined ? 0 : IOMMU_HW_INFO_FLAG_INPUT_TYPE,
        dev_id: this.id,
        data_len: len,
        data_uptr: mem.addr,
        in_data_type: opts.type ?? 0,
      });
      return { type: r.out_data_type, data: mem.bytes.slice(0, r.data_len), maxPasidLog2: r.out_max_pasid_log2, capabilities: r.out_capabilities };
    } finally {
      this.iommufd.process.memory.free(mem.addr);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Closes the cdev: the kernel detaches everything and unbinds. A vDEVICE of this device is
   * destroyed with it (its ID tombstoned, spec 4.3), so the client forgets it too.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.attached.clear();
    this.iommufd.forgetDevice(this);
    this.iommufd.process.close(this.fd);
    for (const o of [...this.iommufd.objects]) {
      if (o.kind === 'VDEVICE' && (o as ClientObject & { device?: unknown }).device === this) o.forget();
    }
  }
}
