// The common part of every iommufd object the client hands out: its ID, its owner (the Iommufd it
// lives in) and destroy(). The owner keeps live objects in creation order, which is also a valid
// dependency order (an object only ever depends on objects created before it), so teardown
// destroys them newest first.

import { IOMMU_DESTROY, iommu_destroy } from '@viommu/uapi';
import type { Iommufd } from './iommufd.js';

export abstract class ClientObject {
  private gone = false;

  constructor(
    readonly iommufd: Iommufd,
    readonly id: number,
    /** The kernel's name for the object type, used in messages ('IOAS', 'HWPT_NESTED', ...). */
    readonly kind: string,
  ) {
    iommufd.track(this);
  }

  /** 'IOAS 3': how errors name the object. */
  get label(): string {
    return `${this.kind} ${this.id}`;
  }

  get destroyed(): boolean {
    return this.gone;
  }

  /**
   * IOMMU_DESTROY. Closes the object's own fds and mappings first (an open vEVENTQ or FAULT fd, a
   * vIOMMU's mmap) since the kernel refuses to destroy an object they hold. EBUSY means something
   * else still depends on it.
   */
  destroy(): void {
    if (this.gone) return;
    this.release();
    this.iommufd.call('destroy', this.label, IOMMU_DESTROY, iommu_destroy, { id: this.id });
    this.forget();
  }

  /** Marks the object gone without an ioctl (its context was released with it). */
  forget(): void {
    this.gone = true;
    this.iommufd.untrack(this);
  }

  /** What must go before IOMMU_DESTROY: fds and mappings the object owns. */
  protected release(): void {}

  [Symbol.dispose](): void {
    this.destroy();
  }
}
