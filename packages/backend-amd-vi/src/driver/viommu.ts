// The vIOMMU of Linux 7.2.13 (amd_iommufd_viommu_init): linked to its nest parent so the parent's
// flushes reach the host DomainIDs of its nested domains; its only operation is destroy, unless the
// driver's `nested` option installs the dormant allocator (allocNested).
import type { DriverViommu } from '@viommu/core';
import type { V1Domain } from './domains.js';

/** What a vIOMMU needs of its driver. */
export interface ViommuOwner {
  readonly hwViommus: Set<AmdViommu>;
}

/** The vIOMMU: destroy only, unless `nested` installs the dormant allocator. */
export class AmdViommu implements DriverViommu {
  /** gDomID → { hDomID, users } (nested.c gdomid_array). */
  readonly gdom = new Map<number, { hDomId: number; users: number }>();
  allocNested?: DriverViommu['allocNested'];

  constructor(
    readonly driver: ViommuOwner,
    readonly parent: V1Domain,
  ) {
    parent.viommus.add(this);
  }

  hostDomainIds(): Iterable<number> {
    return [...this.gdom.values()].map((g) => g.hDomId);
  }

  destroy(): void {
    this.parent.viommus.delete(this);
    this.driver.hwViommus.delete(this);
  }
}

