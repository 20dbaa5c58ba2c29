// Per-device driver state (the kernel's iommu_dev_data).
import type { DeviceInfo, DriverDevice, ReservedRegion } from '@viommu/core';
import type { AmdViDomain } from './domains.js';

/** The x86 interrupt window every AMD-Vi device reserves (MSI, 0xfee00000-0xfeefffff). */
const MSI_RANGE: ReservedRegion = { start: 0xfee0_0000n, last: 0xfeef_ffffn, kind: 'msi' };
/** HyperTransport reserved range above 1 TiB - 12 GiB (iommu.c amd_iommu_get_resv_regions). */
const HT_RANGE: ReservedRegion = { start: 0xfd_0000_0000n, last: 0xff_ffff_ffffn, kind: 'reserved' };

export class AmdViDevice implements DriverDevice {
  readonly pci = true;
  readonly enforceCacheCoherency = true;
  readonly dirtyTracking: boolean;
  /** The domain the RID DTE points at (undefined = blocked). */
  domain: AmdViDomain | undefined;
  /**
   * dev_data->domain: the last paging domain attached through amd_iommu_attach_device. A nested
   * attach (nested_attach_device) leaves it alone, so it is what a later attach or block flushes.
   */
  pagingDomain: AmdViDomain | undefined;

  constructor(
    readonly info: DeviceInfo,
    readonly maxPasidLog2: number,
    readonly atsUsable: boolean,
    dirty: boolean,
  ) {
    this.dirtyTracking = dirty;
  }

  get devId(): number {
    return this.info.rid;
  }

  reservedRegions(): readonly ReservedRegion[] {
    return [MSI_RANGE, HT_RANGE];
  }
}
