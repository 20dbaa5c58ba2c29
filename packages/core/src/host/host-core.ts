// What the object model needs from the host it runs on: physical memory, the registered IOMMU
// drivers, the devices, and fault injection. SimHost (sim-host.ts) is the implementation.

import type { FaultQueueOptions } from '@viommu/fault';
import type { DriverV1 } from '../driver/driver.js';
import type { SimDevice } from '../device/sim-device.js';
import type { FailNth } from './fail-nth.js';
import type { PhysicalMemory } from './physical-memory.js';

export interface HostCore {
  readonly physical: PhysicalMemory;
  readonly failNth: FailNth;
  /** Registered drivers by name. */
  readonly drivers: ReadonlyMap<string, DriverV1>;
  /** Devices by name. */
  readonly devices: ReadonlyMap<string, SimDevice>;
  /** How every FAULT queue on this host is made (the response-timeout policy). Absent = Linux: no timeout. */
  readonly faultQueueOptions?: FaultQueueOptions;
}
