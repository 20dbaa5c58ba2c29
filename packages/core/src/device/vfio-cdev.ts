// A VFIO device cdev (/dev/vfio/devices/vfioN) open in a process: VFIO_DEVICE_BIND_IOMMUFD,
// ATTACH_IOMMUFD_PT, DETACH_IOMMUFD_PT (spec 9.1, 10, 4.7). Closing the fd unbinds.

import { SystemError, type IoctlArg } from '@viommu/uapi';
import type { OpenFile } from '../process/file.js';
import type { SimProcess } from '../process/sim-process.js';
import type { SimDevice } from './sim-device.js';

export class VfioDeviceFile implements OpenFile {
  readonly kind = 'vfio-device';

  constructor(
    readonly dev: SimDevice,
    readonly proc: SimProcess,
  ) {}

  ioctl(_request: number, _arg: IoctlArg): number {
    throw new SystemError('ENOTTY', 'ioctl');
  }

  release(): void {}
}
