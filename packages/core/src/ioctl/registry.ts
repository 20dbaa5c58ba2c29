// The iommufd ioctl table: one slot per command number (0x80 + index), filled by the module of the
// object family that owns the command.
//
// How a family registers its ioctls (src/viommu/, src/selftest/ do this in their index.ts, which
// src/families.ts imports so registration happens when the core loads):
//
//   import { registerIoctl } from '../ioctl/registry.js';
//   import { IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc } from '@viommu/uapi';
//   registerIoctl({ name: 'IOMMU_VIOMMU_ALLOC', request: IOMMU_VIOMMU_ALLOC, struct: iommu_viommu_alloc, handler: viommuAlloc });
//
//   function viommuAlloc(ucmd: Ucmd): void {
//     const cmd = iommu_viommu_alloc.decode(ucmd.cmd);          // the zero-extended kernel copy
//     const idev = ucmd.ctx.objects.get<IommufdDevice>(cmd.dev_id, OBJ.DEVICE);   // ENOENT
//     const v = new Viommu(...); ucmd.ctx.objects.reserve(v); ucmd.newObject(v);  // finalize/abort by the dispatcher
//     iommu_viommu_alloc.set(ucmd.cmd, 'out_viommu_id', v.id);
//     ucmd.respond();                                           // copy back min(user size, sizeof)
//   }
//
// A handler throws SystemError with the kernel's errno; its return value (default 0) is the ioctl's.
// `struct.minSize` is the minimum `size` unless `minSize` is given.

import type { StructCodec } from '@viommu/uapi';
import type { Ucmd } from './ucmd.js';

export type IoctlHandler = (ucmd: Ucmd) => number | void;

export interface IommufdIoctl {
  readonly name: string;
  readonly request: number;
  readonly struct: StructCodec;
  readonly minSize?: number;
  readonly handler: IoctlHandler;
}

/** The first command number of the table (IOMMUFD_CMD_BASE). */
export const IOMMUFD_CMD_BASE = 0x80;
/** Slots 0x80..0xa0: the table ends with IOMMU_TEST_CMD, as in a CONFIG_IOMMUFD_TEST kernel. */
export const IOMMUFD_TABLE_LEN = 0xa0 - IOMMUFD_CMD_BASE + 1;

const table: (IommufdIoctl | undefined)[] = new Array<IommufdIoctl | undefined>(IOMMUFD_TABLE_LEN).fill(undefined);

export function registerIoctl(def: IommufdIoctl): void {
  const i = (def.request & 0xff) - IOMMUFD_CMD_BASE;
  if (i < 0 || i >= IOMMUFD_TABLE_LEN) throw new RangeError(`${def.name}: command number 0x${(def.request & 0xff).toString(16)} is outside the iommufd table`);
  const old = table[i];
  if (old && old.handler !== def.handler) throw new Error(`${def.name}: slot already taken by ${old.name}`);
  table[i] = def;
}

/** The slot for command number `nr` (undefined for an empty slot); `nr` must be inside the table. */
export function ioctlSlot(nr: number): IommufdIoctl | undefined {
  return table[nr - IOMMUFD_CMD_BASE];
}

/** Registered commands, for tests and introspection. */
export function registeredIoctls(): IommufdIoctl[] {
  return table.filter((d): d is IommufdIoctl => d !== undefined);
}
