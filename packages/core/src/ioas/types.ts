// Types shared by the io page table (the kernel's io_pagetable.c / pages.c, in our words) and its
// callers: the ioctl handlers, accesses (emulated devices, HW queues) and the selftest commands.

import type { AddressSpace } from '../host/address-space.js';

/** An inclusive IOVA range, as `struct iommu_iova_range` carries it. */
export interface IovaRange {
  readonly start: bigint;
  readonly last: bigint;
}

/** The largest unsigned long (the IOVA space is [0, ULONG_MAX] on a 64-bit kernel). */
export const ULONG_MAX = (1n << 64n) - 1n;

/**
 * How pinned pages are charged (the kernel's IOPT_PAGES_ACCOUNT_*): NONE for a caller with
 * CAP_IPC_LOCK, USER (per uid, RLIMIT_MODE 0, the default) or MM (per process, RLIMIT_MODE 1).
 */
export enum AccountMode {
  NONE = 0,
  USER = 1,
  MM = 2,
}

/**
 * The user a process runs as (the kernel's user_struct): pinned pages charged per user add up here
 * across every process and context of that user.
 */
export class MemlockUser {
  /** Pages charged in per-user mode (user->locked_vm). */
  lockedPages = 0;
  constructor(readonly uid = 0) {}
}

/**
 * The calling task, as the io page table sees it when it creates pages or re-parents them
 * (CHANGE_PROCESS): whose memory, whose limit, which user is charged.
 */
export interface PinOwner {
  readonly mm: AddressSpace;
  readonly user: MemlockUser;
  /** RLIMIT_MEMLOCK of the task in bytes; Infinity when unlimited. */
  readonly memlockLimit: number;
  /** CAP_IPC_LOCK: pins are not charged at all. */
  readonly capIpcLock: boolean;
}

/** Options of the map family (MAP, MAP_FILE, COPY), from the ioctl's flags. */
export interface MapOptions {
  /** FIXED_IOVA: map exactly here. Absent: the IOVA is chosen (spec §5.5.1). */
  readonly iova?: bigint;
  /** IOMMU_READ | IOMMU_WRITE (src/driver/domain.ts); at least one of them. */
  readonly prot: number;
}

/** Options of the pages-creating maps: MAP and MAP_FILE. */
export interface MapSourceOptions extends MapOptions {
  /** The task making the mapping (current). */
  readonly owner: PinOwner;
  /** The context's RLIMIT_MODE: 1 upgrades per-user charging to per-mm (iommufd_ctx.account_mode). */
  readonly rlimitMode: 0 | 1;
}

/**
 * An in-kernel user of the IOAS (the kernel's iommufd_access): an emulated device (mdev, selftest
 * access) or the hidden access of a HW queue. The object that implements it (its ID, its IOAS
 * pointer and lock, replace) is core's; the io page table only needs these.
 */
export interface IoasAccess {
  /** Alignment the access needs (PAGE_SIZE for users that pin pages); raises the IOAS alignment. */
  readonly iovaAlignment: number;
  /**
   * Internal accesses (HW queues) lock the areas they pin: UNMAP then fails with EBUSY instead of
   * asking them to let go, and they get no unmap callback.
   */
  readonly internal: boolean;
  /**
   * Userspace is unmapping [iova, iova + length): the access must unpin everything it pinned in
   * there before returning (an access that does not makes UNMAP fail with EDEADLK after 100 tries).
   */
  unmap?(iova: bigint, length: bigint): void;
}

/** Flags for access pin/rw (the kernel's IOMMUFD_ACCESS_RW_*). */
export const ACCESS_RW_READ = 0;
export const ACCESS_RW_WRITE = 1 << 0;
export const ACCESS_RW_KTHREAD = 1 << 1;

/** One area, as the invariant checker and tests see it. */
export interface AreaInfo {
  readonly iova: bigint;
  readonly last: bigint;
  readonly prot: number;
  /** Accesses that pinned pages of the area, and how many of them lock it (HW queues). */
  readonly numAccesses: number;
  readonly numLocks: number;
}
