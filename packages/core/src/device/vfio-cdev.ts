// A VFIO device cdev (/dev/vfio/devices/vfioN) open in a process: VFIO_DEVICE_BIND_IOMMUFD,
// ATTACH_IOMMUFD_PT, DETACH_IOMMUFD_PT (spec 9.1, 10, 4.7; the kernel's drivers/vfio/device_cdev.c
// and vfio/iommufd.c). These follow VFIO's argsz convention, not iommufd's. Closing the fd unbinds.

import * as U from '@viommu/uapi';
import { SystemError, vfio_device_attach_iommufd_pt, vfio_device_bind_iommufd, type IoctlArg } from '@viommu/uapi';
import { NO_PASID } from '../driver/driver.js';
import { IommufdFile } from '../iommufd-file.js';
import { UserArg } from '../ioctl/ucmd.js';
import type { OpenFile } from '../process/file.js';
import type { SimProcess } from '../process/sim-process.js';
import { deviceAttach, deviceBind, deviceDetach, deviceReplace, deviceUnbind, type IommufdDevice } from './device.js';
import type { SimDevice } from './sim-device.js';

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

export class VfioDeviceFile implements OpenFile {
  readonly kind = 'vfio-device';
  /** The DEVICE object while this fd is bound. */
  idev: IommufdDevice | undefined;
  /** The RID is attached (vdev->iommufd_attached). */
  private ridAttached = false;
  /** PASIDs attached through this fd (vdev->pasids). */
  private readonly pasids = new Set<number>();

  constructor(
    readonly dev: SimDevice,
    readonly proc: SimProcess,
  ) {}

  ioctl(request: number, arg: IoctlArg): number {
    const user = new UserArg(arg, this.proc.memory);
    if (request >>> 0 === U.VFIO_DEVICE_BIND_IOMMUFD) return this.bind(user);
    // Every other device ioctl needs a bound fd (access granted).
    this.bound();
    switch (request >>> 0) {
      case U.VFIO_DEVICE_ATTACH_IOMMUFD_PT:
        return this.attach(user);
      case U.VFIO_DEVICE_DETACH_IOMMUFD_PT:
        return this.detach(user);
      default:
        throw new SystemError('ENOTTY', 'ioctl');
    }
  }

  private bind(user: UserArg): number {
    const minsz = 16; // offsetofend(out_devid)
    const argsz = u32(user.read(0, 4), 0);
    if (argsz < minsz) throw new SystemError('EINVAL', 'ioctl', 'argsz');
    const ksize = vfio_device_bind_iommufd.size;
    if (argsz > ksize) {
      const tail = user.read(ksize, argsz - ksize);
      if (tail.some((b) => b !== 0)) throw new SystemError('E2BIG', 'ioctl', 'non-zero bytes past the struct');
    }
    const bytes = new Uint8Array(ksize);
    bytes.set(user.read(0, Math.min(ksize, argsz)));
    const bind = vfio_device_bind_iommufd.decode(bytes);
    const iommufd = bind.iommufd | 0;
    if (iommufd < 0 || bind.flags & ~U.VFIO_DEVICE_BIND_FLAG_TOKEN) throw new SystemError('EINVAL', 'ioctl', 'iommufd or flags');
    if (this.idev) throw new SystemError('EINVAL', 'ioctl', 'this device fd is already bound');
    if (bind.flags & U.VFIO_DEVICE_BIND_FLAG_TOKEN) {
      this.proc.memory.read(bind.token_uuid_ptr, 16);
      // Simulated devices are neither SR-IOV PFs nor VFs: a VF token is never expected.
      throw new SystemError('EINVAL', 'ioctl', 'VF token provided for a device that is not a PF or VF');
    }
    const file = this.proc.fileOf(iommufd);
    if (!file) throw new SystemError('EBADF', 'ioctl');
    if (!(file instanceof IommufdFile)) throw new SystemError('EBADFD', 'ioctl', 'not an iommufd');
    // The cdev path opens a device once at a time (vfio_df_open).
    if (this.dev.bound) throw new SystemError('EINVAL', 'ioctl', 'device is already open through another fd');
    const idev = deviceBind(file.ctx, this.dev);
    try {
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, idev.id, true);
      user.write(12, out);
    } catch (e) {
      deviceUnbind(idev);
      throw e;
    }
    this.idev = idev;
    return 0;
  }

  private attach(user: UserArg): number {
    const minsz = 12; // offsetofend(pt_id)
    const head = user.read(0, minsz);
    const argsz = u32(head, 0);
    const flags = u32(head, 4);
    let ptId = u32(head, 8);
    if (argsz < minsz) throw new SystemError('EINVAL', 'ioctl', 'argsz');
    if (flags & ~U.VFIO_DEVICE_ATTACH_PASID) throw new SystemError('EINVAL', 'ioctl', 'flags');
    let pasid = NO_PASID;
    if (flags & U.VFIO_DEVICE_ATTACH_PASID) {
      if (this.dev.info.pasidBits === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'device has no PASID support');
      if (argsz < vfio_device_attach_iommufd_pt.size) throw new SystemError('EINVAL', 'ioctl', 'argsz');
      pasid = u32(user.read(12, 4), 0);
    }
    const idev = this.bound();
    if (flags & U.VFIO_DEVICE_ATTACH_PASID) {
      if (this.pasids.has(pasid)) {
        ptId = deviceReplace(idev, pasid, ptId);
      } else {
        ptId = deviceAttach(idev, pasid, ptId);
        this.pasids.add(pasid);
      }
    } else {
      ptId = this.ridAttached ? deviceReplace(idev, NO_PASID, ptId) : deviceAttach(idev, NO_PASID, ptId);
      this.ridAttached = true;
    }
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, ptId, true);
    user.write(8, out);
    return 0;
  }

  private detach(user: UserArg): number {
    const minsz = 8; // offsetofend(flags)
    const head = user.read(0, minsz);
    const argsz = u32(head, 0);
    const flags = u32(head, 4);
    if (argsz < minsz) throw new SystemError('EINVAL', 'ioctl', 'argsz');
    if (flags & ~U.VFIO_DEVICE_DETACH_PASID) throw new SystemError('EINVAL', 'ioctl', 'flags');
    let pasid = NO_PASID;
    if (flags & U.VFIO_DEVICE_DETACH_PASID) {
      if (this.dev.info.pasidBits === 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'device has no PASID support');
      if (argsz < 12) throw new SystemError('EINVAL', 'ioctl', 'argsz');
      pasid = u32(user.read(8, 4), 0);
    }
    const idev = this.bound();
    if (flags & U.VFIO_DEVICE_DETACH_PASID) {
      if (!this.pasids.has(pasid)) return 0;
      deviceDetach(idev, pasid);
      this.pasids.delete(pasid);
    } else if (this.ridAttached) {
      deviceDetach(idev, NO_PASID);
      this.ridAttached = false;
    }
    return 0;
  }

  /** The DEVICE of a bound fd; an unbound cdev fd refuses device ioctls with EINVAL (no access granted). */
  private bound(): IommufdDevice {
    if (!this.idev) throw new SystemError('EINVAL', 'ioctl', 'device fd not bound to an iommufd');
    return this.idev;
  }

  release(): void {
    const idev = this.idev;
    if (!idev) return;
    this.idev = undefined;
    this.pasids.clear();
    this.ridAttached = false;
    deviceUnbind(idev);
  }
}
