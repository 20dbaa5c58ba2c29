// An iommufd context (the kernel's struct iommufd_ctx): what one open of /dev/iommu owns. It lives
// while anything holds its file: the fd itself, every bound VFIO device, every FAULT/VEVENTQ fd,
// every mmap of it (spec 4.6). When the last goes, every object is destroyed in ascending-ID passes.
//
// Other families reach the context through `ucmd.ctx`: `objects` (the table), `host` (drivers,
// physical memory, fault injection), `mm` (the opener's address space), `holdFile()`/`putFile()`
// for anything that keeps the file alive, and `mmaps` for regions a vIOMMU registers.

import type { AddressSpace } from './host/address-space.js';
import type { HostCore } from './host/host-core.js';
import { MmapRegistry } from './mmap.js';
import type { IommufdObject } from './object/object.js';
import { ObjectTable } from './object/object-table.js';

let nextContextId = 1;

export class IommufdContext {
  readonly id = nextContextId++;
  readonly objects = new ObjectTable();
  readonly mmaps = new MmapRegistry();
  /** The IOAS the VFIO type1 compatibility ioctls use (IOMMU_VFIO_IOAS); undefined until set or created. */
  vfioIoas: IommufdObject | undefined;
  /** VFIO_SET_IOMMU chose the no-IOMMU mode. */
  noIommuMode = false;
  /** IOMMU_OPTION_RLIMIT_MODE: 0 = account pins to the user, 1 = to the process (mm). */
  accountMode = 0;
  /** References to the iommufd file; the context is released when it drops to zero. */
  private fileRefs = 1;
  private released = false;
  /** Objects a release could not destroy (a refcount bug); the invariant checker reports them. */
  leaked: IommufdObject[] = [];
  /** Called once the context is released (the host forgets it). */
  onRelease: ((ctx: IommufdContext) => void) | undefined;

  constructor(
    readonly host: HostCore,
    /** The address space of the process that opened /dev/iommu (its mm, for pinning and accounting). */
    public mm: AddressSpace,
  ) {
    this.objects.failPoint = (what) => host.failNth.point(what);
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Takes a reference on the iommufd file (a bound device, an event fd, an mmap). */
  holdFile(): void {
    if (this.released) throw new Error('iommufd context already released');
    this.fileRefs++;
  }

  /** Drops a reference on the iommufd file; the last one releases the context. */
  putFile(): void {
    if (this.fileRefs <= 0) throw new Error('iommufd file reference underflow');
    if (--this.fileRefs === 0) this.release();
  }

  get fileRefCount(): number {
    return this.fileRefs;
  }

  private release(): void {
    this.released = true;
    this.leaked = this.objects.releaseAll();
    this.onRelease?.(this);
  }
}
