// Charging pinned pages against RLIMIT_MEMLOCK (pages.c's iopt_pages_update_pinned, in our words).
// Per-user mode adds to the user's locked page count and compares with the task's limit; per-mm mode
// (RLIMIT_MODE 1, VFIO's way) adds to the mm's locked_vm; CAP_IPC_LOCK callers are not charged.
// Every mode also counts the pages in the mm's pinned_vm.

import { SystemError } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import { FRAME_SHIFT } from '../host/physical-memory.js';
import { AccountMode, type PinOwner } from './types.js';

export interface MmCounters {
  /** mm->locked_vm: pages charged in per-mm mode. */
  lockedVm: number;
  /** mm->pinned_vm: every page pinned on behalf of this mm, whatever the mode. */
  pinnedVm: number;
}

const countersByMm = new WeakMap<AddressSpace, MmCounters>();

/** The mm's locked_vm / pinned_vm counters (created at zero). */
export function mmCounters(mm: AddressSpace): MmCounters {
  let c = countersByMm.get(mm);
  if (!c) {
    c = { lockedVm: 0, pinnedVm: 0 };
    countersByMm.set(mm, c);
  }
  return c;
}

function limitPages(owner: PinOwner): number {
  return owner.memlockLimit === Infinity ? Infinity : Math.floor(owner.memlockLimit / 2 ** FRAME_SHIFT);
}

/** The mode new pages of `owner` get in a context with RLIMIT_MODE `rlimitMode`. */
export function accountModeFor(owner: PinOwner, rlimitMode: 0 | 1): AccountMode {
  if (owner.capIpcLock) return AccountMode.NONE;
  return rlimitMode === 1 ? AccountMode.MM : AccountMode.USER;
}

/** Charges `npages` to `owner` in `mode`; ENOMEM over the limit, having charged nothing. */
export function charge(owner: PinOwner, mode: AccountMode, npages: number): void {
  if (npages === 0) return;
  const mm = mmCounters(owner.mm);
  if (mode === AccountMode.USER) {
    if (owner.user.lockedPages + npages > limitPages(owner)) throw new SystemError('ENOMEM', 'ioctl', 'RLIMIT_MEMLOCK (per user) exceeded');
    owner.user.lockedPages += npages;
  } else if (mode === AccountMode.MM) {
    if (!owner.capIpcLock && mm.lockedVm + npages > limitPages(owner)) throw new SystemError('ENOMEM', 'ioctl', 'RLIMIT_MEMLOCK (per process) exceeded');
    mm.lockedVm += npages;
  }
  mm.pinnedVm += npages;
}

/** Undoes charge(). */
export function uncharge(owner: PinOwner, mode: AccountMode, npages: number): void {
  if (npages === 0) return;
  const mm = mmCounters(owner.mm);
  if (mode === AccountMode.USER) owner.user.lockedPages -= npages;
  else if (mode === AccountMode.MM) mm.lockedVm -= npages;
  mm.pinnedVm -= npages;
}
