// The driver's per-device state (the kernel's arm_smmu_master): one StreamID, a host CD table
// for stage-1 domains (CD 0 for the RID, CD n for PASID n), what is attached, and the "vmaster"
// link to the vIOMMU whose nested domain it uses (for event forwarding).
import type { DeviceInfo, DriverDevice, DriverDomain, ReservedRegion } from '@viommu/core';
import type { Stage1PagingDomain } from './domains.js';
import type { Vsmmu } from './vsmmu.js';

/** The software MSI window the kernel reserves on ARM (MSI_IOVA_BASE, MSI_IOVA_LENGTH). */
export const MSI_IOVA_BASE = 0x800_0000n;
export const MSI_IOVA_LENGTH = 0x10_0000n;

const RESERVED: readonly ReservedRegion[] = [{ start: MSI_IOVA_BASE, last: MSI_IOVA_BASE + MSI_IOVA_LENGTH - 1n, kind: 'sw-msi' }];

export class SmmuMaster implements DriverDevice {
  readonly sid: number;
  readonly maxPasidLog2: number;
  readonly dirtyTracking = false;
  readonly atsUsable: boolean;
  readonly pci = true;
  readonly enforceCacheCoherency = true;
  /** The RID's domain (undefined = blocked). */
  rid: DriverDomain | undefined;
  /** Stage-1 domains attached at PASIDs. */
  readonly pasids = new Map<number, Stage1PagingDomain>();
  /** Host CD table (linear, 2^cdLog2 entries), allocated on first stage-1 attach. */
  cdTable = 0;
  cdLog2 = 0;
  vmaster: { vsmmu: Vsmmu; vsid: number } | undefined;

  constructor(
    readonly info: DeviceInfo,
    ssidBits: number,
    smmuAts: boolean,
  ) {
    this.sid = info.rid;
    this.maxPasidLog2 = Math.min(info.pasidBits, ssidBits);
    this.atsUsable = info.ats && smmuAts;
  }

  reservedRegions(): readonly ReservedRegion[] {
    return RESERVED;
  }
}
