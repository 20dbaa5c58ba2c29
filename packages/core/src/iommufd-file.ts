// The open /dev/iommu file: ioctls go to the dispatcher, mmap to the regions vIOMMUs registered
// (spec 8), and closing the fd drops the file reference that keeps the context alive.

import { SystemError, PAGE_SIZE, type IoctlArg } from '@viommu/uapi';
import type { IommufdContext } from './context.js';
import { dispatchIommufdIoctl } from './ioctl/dispatch.js';
import type { UcmdProcess } from './ioctl/ucmd.js';
import type { AddressSpace } from './host/address-space.js';
import { ref, unref } from './object/object.js';
import type { FileMapping, OpenFile } from './process/file.js';

export class IommufdFile implements OpenFile {
  readonly kind = 'iommufd';

  constructor(
    readonly ctx: IommufdContext,
    private readonly proc: UcmdProcess,
    private readonly memory: AddressSpace,
  ) {}

  ioctl(request: number, arg: IoctlArg): number {
    return dispatchIommufdIoctl(this.ctx, this.proc, this.memory, request, arg);
  }

  mmap(length: number, offset: bigint): FileMapping {
    if (length <= 0 || length % PAGE_SIZE !== 0) throw new SystemError('EINVAL', 'mmap', 'length not page aligned');
    const region = this.ctx.mmaps.find(offset);
    if (!region || region.length !== length || region.owner.state !== 2) throw new SystemError('ENXIO', 'mmap', `no region at offset 0x${offset.toString(16)} of length ${length}`);
    const run = this.ctx.host.physical.runAt(region.pa);
    if (!run) throw new SystemError('ENXIO', 'mmap', 'region has no backing memory');
    const owner = ref(region.owner);
    const ctx = this.ctx;
    ctx.holdFile();
    let mapped = true;
    return {
      run,
      runOffset: region.pa - run.firstFrame * PAGE_SIZE,
      writable: true,
      unmap() {
        if (!mapped) return;
        mapped = false;
        unref(owner);
        ctx.putFile();
      },
    };
  }

  release(): void {
    this.ctx.putFile();
  }
}
