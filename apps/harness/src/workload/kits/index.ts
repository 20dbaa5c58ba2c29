// The vendors the workload runs on. A vendor joins when its backend package exists and passes:
// write a kit (see ../kit.ts and the ones here), add it below.

import type { VendorKit } from '../kit.js';
import { amdKit } from './amd.js';
import { mockKit } from './mock.js';
import { smmuv3Kit } from './smmuv3.js';
import { vtdKit } from './vtd.js';

export const vendorKits: readonly VendorKit[] = [mockKit, smmuv3Kit, vtdKit, amdKit];

export function kitById(id: string): VendorKit | undefined {
  return vendorKits.find((k) => k.id === id);
}
