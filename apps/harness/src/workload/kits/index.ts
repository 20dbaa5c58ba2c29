// The vendors the workload runs on. A vendor joins when its backend package exists and passes:
// write a kit (see ../kit.ts and the two here), add it below. AMD-Vi and VT-d join as
// @viommu/backend-amd-vi and @viommu/backend-vtd land.

import type { VendorKit } from '../kit.js';
import { mockKit } from './mock.js';
import { smmuv3Kit } from './smmuv3.js';

export const vendorKits: readonly VendorKit[] = [mockKit, smmuv3Kit];

export function kitById(id: string): VendorKit | undefined {
  return vendorKits.find((k) => k.id === id);
}
