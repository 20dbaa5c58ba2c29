// Per-device driver state (the kernel's device_domain_info): source-id, the device's PASID
// directory and tables in physical memory, and what is attached at each PASID.
import type { DeviceInfo, DriverDevice, ReservedRegion } from '@viommu/core';
import type { VtdDomain } from './domains.js';

/** The IOAPIC/MSI window every VT-d device has as an MSI reserved region. */
const MSI_REGION: ReservedRegion = { start: 0xfee0_0000n, last: 0xfeef_ffffn, kind: 'msi' };

export class VtdDevice implements DriverDevice {
  readonly pci = true;
  readonly dirtyTracking: boolean;
  /** IOMMU_CAP_ENFORCE_CACHE_COHERENCY: ECAP.SC. */
  readonly enforceCacheCoherency: boolean;
  /** PASID directory (physical address) and its entry count. */
  pasidDir = 0;
  pasidDirEntries = 0;
  /** PASID table frames by directory index. */
  readonly pasidTables = new Map<number, number>();
  /** Domain attached at each VT-d PASID (0 = RID_PASID). */
  readonly domains = new Map<number, VtdDomain>();

  constructor(
    readonly info: DeviceInfo,
    readonly maxPasidLog2: number,
    readonly atsUsable: boolean,
    dirty: boolean,
    snoopControl: boolean,
  ) {
    this.dirtyTracking = dirty;
    this.enforceCacheCoherency = snoopControl;
  }

  get sid(): number {
    return this.info.rid;
  }

  reservedRegions(): readonly ReservedRegion[] {
    return [MSI_REGION];
  }
}
