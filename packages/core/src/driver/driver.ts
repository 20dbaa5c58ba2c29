// The versioned driver interface (blueprint section 5): what an IOMMU backend implements so the
// core can run the iommufd object model on it. It is shaped like the kernel's iommu_ops,
// iommu_domain_ops and iommufd_viommu_ops, in our own words, and carries no vendor cases: the mock
// (src/selftest/), ARM SMMUv3 + Tegra241 CMDQV, AMD-Vi and VT-d all implement exactly this.
//
// Lifetime, top down:
//   factory(options)          -> DriverV1            (one IOMMU instance; `name` is what devices name)
//   driver.probe(host)        once, when a host registers it; `host` is the DriverHost below
//   driver.probeDevice(info)  -> DriverDevice        (each device behind this IOMMU: PCI or selftest mock)
//   driver.allocPagingDomain  -> DriverPagingDomain  (HWPT_PAGING, auto or HWPT_ALLOC)
//   driver.allocNestedDomain  -> DriverNestedDomain  (HWPT_ALLOC with pt_id = nest parent)
//   driver.viommuInit         -> DriverViommu        (VIOMMU_ALLOC); its allocNested / vdeviceInit /
//                                                     hwQueueInit / cacheInvalidate hang off it
//   driver.attach(dev, pasid, domain | null)         (attach, replace, detach: null = blocked)
//   driver.translate(...)                            (device DMA through the hardware model)
//
// Errors: every method that can fail throws a SystemError with the errno a Linux driver returns
// (EINVAL for "incompatible" on attach matters: the core's auto-domain search moves on to the next
// domain on EINVAL and stops on anything else, as device.c does).
//
// Versioning (ADR 0002): this interface is frozen as V1 once released. Adding an optional member is
// compatible; changing or removing one is a new `DriverV2`, never a silent change.

import type { ErrnoName } from '@viommu/uapi';
import type { AddressSpace } from '../host/address-space.js';
import type { PhysicalMemory } from '../host/physical-memory.js';
import type { PagingDomain } from './domain.js';

export const DRIVER_API_VERSION = 1;

/** No PASID: the device's RID (requests without PASID). The kernel's IOMMU_NO_PASID is 0 as well. */
export const NO_PASID = 0;

// Flags of allocPagingDomain / allocNestedDomain: the uAPI's IOMMU_HWPT_ALLOC_* bits, passed through.
export const DOMAIN_NEST_PARENT = 1 << 0;
export const DOMAIN_DIRTY_TRACKING = 1 << 1;
export const DOMAIN_PASID = 1 << 3;

// ---------------------------------------------------------------------------------------------
// Vendor data passed by pointer (the kernel's iommu_user_data / iommu_user_data_array). The driver
// copies it with the helpers of src/viommu/user-data.ts, which apply the kernel's rules (type
// mismatch EINVAL, length bounds EINVAL, non-zero tail E2BIG, unmapped EFAULT).

/** What the copies need of a process's address space (AddressSpace has it). */
export type UserAccess = Pick<AddressSpace, 'read' | 'write' | 'find'>;

export interface UserData {
  readonly type: number;
  readonly uptr: bigint;
  readonly len: number;
  readonly memory: UserAccess;
}

export interface UserDataArray {
  readonly type: number;
  readonly uptr: bigint;
  readonly entryLen: number;
  /** In: entries passed. The driver sets it to the number it handled before returning or throwing. */
  entryNum: number;
  readonly memory: UserAccess;
}

// ---------------------------------------------------------------------------------------------
// Devices

/** What the core tells a driver about a device that sits behind it. */
export interface DeviceInfo {
  /** Host-unique name ('nic0', or 'mock3' for a selftest device). */
  readonly name: string;
  /** Requester ID the IOMMU sees: stream ID (SMMUv3), device ID (AMD-Vi), source-id (VT-d). */
  readonly rid: number;
  /** PASID width the device supports (0 = no PASID capability). */
  readonly pasidBits: number;
  /** The device can issue page requests (PCI PRI). */
  readonly pri: boolean;
  /** The device has ATS. */
  readonly ats: boolean;
  /** PCI PASID control register: execute / privileged-mode requests enabled (GET_HW_INFO reports them). */
  readonly pasidExec?: boolean;
  readonly pasidPriv?: boolean;
  /** Vendor- or test-specific extra options (e.g. the selftest's MOCK_FLAGS_DEVICE_*), passed through untouched. */
  readonly flags?: number;
  readonly extra?: Readonly<Record<string, unknown>>;
}

export type ReservedRegionKind = 'direct' | 'direct-relaxable' | 'reserved' | 'msi' | 'sw-msi';

export interface ReservedRegion {
  readonly start: bigint;
  /** Inclusive. */
  readonly last: bigint;
  readonly kind: ReservedRegionKind;
}

/** The driver's per-device state (the kernel's dev->iommu / the driver's master struct). */
export interface DriverDevice {
  readonly info: DeviceInfo;
  /**
   * PASIDs the IOMMU will accept for this device, as log2 (min of the device's and the IOMMU's
   * width; 0 = none). GET_HW_INFO reports it as out_max_pasid_log2.
   */
  readonly maxPasidLog2: number;
  /** IOMMU_CAP_DIRTY_TRACKING: the IOMMU can track dirty bits for this device. */
  readonly dirtyTracking: boolean;
  /** The driver considers ATS usable for this device (else GET_HW_INFO sets PCI_ATS_NOT_SUPPORTED). */
  readonly atsUsable: boolean;
  /** The device is a PCI function (PASID_EXEC/PRIV capability bits apply); false for selftest mock devices. */
  readonly pci: boolean;
  /** IOMMU_CAP_ENFORCE_CACHE_COHERENCY for this device. */
  readonly enforceCacheCoherency: boolean;
  /** IOMMU_CAP_CACHE_COHERENCY: DMA is coherent. Binding a device without it fails with EINVAL. Absent = true. */
  readonly cacheCoherent?: boolean;
  /** The device's reserved regions (iommu_get_resv_regions). */
  reservedRegions(): readonly ReservedRegion[];
}

// ---------------------------------------------------------------------------------------------
// Domains

/** The common part of every domain the driver hands out. */
export interface DriverDomainBase {
  /** Frees the domain (no device is attached by then). */
  free(): void;
  /**
   * Called when a fault-capable HWPT (FAULT_ID_VALID) is created on this domain, before any
   * attach: the driver must route recoverable faults of attached devices to the core
   * (DriverHost.reportPageRequest) rather than fail them.
   */
  setFaultCapable?(capable: boolean): void;
}

export interface DriverPagingDomain extends PagingDomain, DriverDomainBase {
  readonly kind: 'paging';
  /** Allocated with DOMAIN_NEST_PARENT (may be the stage-2 of nested domains and vIOMMUs). */
  readonly nestParent: boolean;
  /**
   * enforce_cache_coherency: make every DMA through this domain snoop (IOMMU_CACHE). Returns false
   * when the domain cannot; once true it stays true. Optional: absent = cannot.
   */
  enforceCacheCoherency?(): boolean;
}

export interface DriverNestedDomain extends DriverDomainBase {
  readonly kind: 'nested';
  /**
   * User cache invalidation for this nested domain (HWPT_INVALIDATE on a HWPT_NESTED). Sets
   * `array.entryNum` to the number of entries handled; throws (after setting it) on failure.
   * Absent = EOPNOTSUPP.
   */
  cacheInvalidate?(array: UserDataArray): void;
}

export type DriverDomain = DriverPagingDomain | DriverNestedDomain;

// ---------------------------------------------------------------------------------------------
// vIOMMU and its sub-objects

/** What the core gives a driver's vIOMMU (the driver-facing part of the iommufd_viommu object). */
export interface ViommuCore {
  /** The vIOMMU's object ID. */
  readonly id: number;
  readonly type: number;
  /** The nest-parent domain the vIOMMU was created on. */
  readonly parent: DriverPagingDomain;
  /**
   * Reports a vEVENT of `type` (an IOMMU_VEVENTQ_TYPE_*) with its payload to the vEVENTQ of that
   * type, if userspace created one (else dropped, as the kernel does). Returns the errno name when
   * the event could not be queued (ENOMEM), else undefined.
   */
  reportEvent(type: number, payload: Uint8Array): ErrnoName | undefined;
  /**
   * Registers `length` bytes of physical memory at `pa` (an MMIO page the guest may map) and
   * returns the mmap offset userspace passes to mmap on the iommufd (spec section 8).
   */
  registerMmap(pa: number, length: number): bigint;
  unregisterMmap(offset: bigint): void;
  /** The device whose vDEVICE has `virtId` on this vIOMMU (iommufd_viommu_find_dev). */
  findDevice(virtId: bigint): DriverDevice | undefined;
  /** The virtual ID of `dev` on this vIOMMU, if it has a vDEVICE here (iommufd_viommu_get_vdev_id). */
  virtIdOf(dev: DriverDevice): bigint | undefined;
}

export interface ViommuInitRequest {
  /** IOMMU_VIOMMU_TYPE_*. The driver throws EOPNOTSUPP for a type it does not support. */
  readonly type: number;
  readonly dev: DriverDevice;
  readonly parent: DriverPagingDomain;
  /** Vendor data in/out (VIOMMU_ALLOC data_type/data_len/data_uptr); type 0 and len 0 when none was passed. */
  readonly data: UserData;
  readonly core: ViommuCore;
}

export interface DriverViommu {
  /** Driver teardown (iommufd_viommu_ops.destroy). */
  destroy(): void;
  /** A nested domain whose parent is this vIOMMU (HWPT_ALLOC with pt_id = vIOMMU). Absent = EOPNOTSUPP. */
  allocNested?(dev: DriverDevice, flags: number, data: UserData): DriverNestedDomain;
  /** vIOMMU-wide cache invalidation (HWPT_INVALIDATE on a vIOMMU ID); same contract as DriverNestedDomain.cacheInvalidate. */
  cacheInvalidate?(array: UserDataArray): void;
  /** vDEVICE init; returns its teardown, if any. */
  vdeviceInit?(req: { readonly dev: DriverDevice; readonly virtId: bigint; readonly id: number }): DriverVdevice | void;
  /**
   * HW queue support: 0 when `type` (IOMMU_HW_QUEUE_TYPE_*) is not supported (the core then
   * returns EOPNOTSUPP), else non-zero (the kernel's get_hw_queue_size).
   */
  hwQueueSupported?(type: number): boolean;
  /**
   * HW queue init on guest queue memory the core has pinned: `basePa` is its physical address
   * (physically contiguous), `length` its size; `index` the queue's logical index.
   */
  hwQueueInit?(req: HwQueueInitRequest): DriverHwQueue;
}

export interface HwQueueInitRequest {
  readonly type: number;
  readonly index: number;
  readonly id: number;
  readonly baseIova: bigint;
  readonly basePa: number;
  readonly length: number;
  /**
   * Makes the new queue hold `other` (a queue of the same vIOMMU) until the new one is destroyed
   * (iommufd_hw_queue_depend), so queues go away in dependency order. Throws EINVAL for the new
   * queue itself or a queue of another vIOMMU.
   */
  dependOn(other: DriverHwQueue): void;
}

export interface DriverVdevice {
  destroy(): void;
}

export interface DriverHwQueue {
  destroy(): void;
}

// ---------------------------------------------------------------------------------------------
// Hardware info, translation, faults

export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_* of `data` (NONE with empty data for a driver without hw info). */
  readonly type: number;
  /** The vendor struct (section 6.2 of the spec); the core copies and zero-fills as the kernel does. */
  readonly data: Uint8Array;
}

/** Access bits of a DMA. */
export const DMA_READ = 1;
export const DMA_WRITE = 2;

export const TRANSLATE_OK = 0;
/** Not translatable, the DMA fails with EFAULT carrying `out.reason`. */
export const TRANSLATE_FAULT = 1;
/**
 * Not translatable, but recoverable: the device has PRI and the domain is fault-capable. The core
 * sends a page request to the domain's fault queue and retries the DMA when userspace answers
 * SUCCESS.
 */
export const TRANSLATE_PAGE_REQUEST = 2;

/**
 * Filled by translate; reused across calls by the caller so a DMA allocates nothing per page.
 * On TRANSLATE_OK: `pa` and `length` (bytes from `pa` that stay translated contiguously, >= 1,
 * typically to the end of the page). On a fault: `reason` (the vendor's fault name, e.g.
 * 'F_TRANSLATION', 'IO_PAGE_FAULT', 'DMAR_FAULT_PTE_NOT_PRESENT').
 */
export interface Translation {
  pa: number;
  length: number;
  reason: string;
}

export interface PageRequest {
  readonly pasid: number;
  readonly addr: bigint;
  /** DMA_READ / DMA_WRITE bits (IOMMU_PGFAULT_PERM_* in the fault record). */
  readonly perm: number;
  /** PRG index the device used. */
  readonly grpid: number;
  /** The last page request of its group. */
  readonly last: boolean;
}

/** Page response codes (IOMMUFD_PAGE_RESP_*). */
export const PAGE_RESP_SUCCESS = 0;
export const PAGE_RESP_INVALID = 1;

/** The callback surface the core gives a driver. */
export interface DriverHost {
  /** The host's one physical memory: guest page tables, queues and DMA targets are read here. */
  readonly physical: PhysicalMemory;
  /**
   * A device raised a page request (PRI) on (dev, pasid). The core routes it to the fault queue of
   * the HWPT attached there; the promise settles with the response code userspace wrote, or
   * PAGE_RESP_INVALID if there is no fault-capable HWPT or the request was auto-answered (detach,
   * close). The driver's pageResponse hook is called too, before the promise settles.
   */
  reportPageRequest(dev: DriverDevice, req: PageRequest): Promise<number>;
  /**
   * Fault injection (fail_nth): a driver allocating something that can fail in the kernel
   * (memory, a hardware slot) calls this first; it throws ENOMEM when the injected failure is due.
   */
  failPoint(what: string): void;
}

export interface DriverV1 {
  readonly apiVersion: 1;
  /** Instance name; devices name their IOMMU by it (`{ iommu: 'smmu0' }`). */
  readonly name: string;

  /** Called once when a host registers the driver. */
  probe(host: DriverHost): void;
  /** A device behind this IOMMU appears. Throws if the driver cannot serve it. */
  probeDevice(info: DeviceInfo): DriverDevice;
  /** The device goes away (host teardown; a selftest mock device destroyed). */
  releaseDevice?(dev: DriverDevice): void;

  /**
   * Hardware info for GET_HW_INFO. `requestedType` is IOMMU_HW_INFO_TYPE_DEFAULT (0) unless
   * userspace asked for one; a type the driver does not have → throw EOPNOTSUPP. Absent = type
   * NONE and no data whatever was asked (as in the kernel).
   */
  hwInfo?(dev: DriverDevice, requestedType: number): HwInfo;

  /**
   * A paging domain for `dev` (domain_alloc_paging_flags). `flags` are DOMAIN_* bits; unsupported
   * ones → EOPNOTSUPP. `data` is the vendor data when HWPT_ALLOC passed a paging data type (e.g.
   * IOMMU_HWPT_DATA_NONE has none: undefined).
   */
  allocPagingDomain(dev: DriverDevice, flags: number, data?: UserData): DriverPagingDomain;

  /** A nested domain on a nest-parent paging domain (domain_alloc_nested). Absent = EOPNOTSUPP. */
  allocNestedDomain?(dev: DriverDevice, parent: DriverPagingDomain, flags: number, data: UserData): DriverNestedDomain;

  /**
   * Attaches (or replaces to) `domain` on `dev` at `pasid` (NO_PASID = the RID), or blocks DMA
   * when `domain` is null (detach). Replace must be atomic: on failure the old domain stays.
   * Incompatible domain → EINVAL.
   */
  attach(dev: DriverDevice, pasid: number, domain: DriverDomain | null): void;

  /**
   * Translates one access of a device DMA, walking the hardware model's own tables (through the
   * domain attached at (dev, pasid), its nested stage-1 in guest memory, its IOTLB). Returns a
   * TRANSLATE_* code and fills `out`. Must not allocate on the success path.
   */
  translate(dev: DriverDevice, pasid: number, iova: number, access: number, out: Translation): number;

  /**
   * The guest owns the PASID table (the kernel's iommu_ops.user_pasid_table, e.g. SMMUv3 CD
   * tables, the mock): a page request for a PASID with nothing attached goes to the nested HWPT
   * attached to the RID.
   */
  readonly userPasidTable?: boolean;

  /** Userspace answered a page request (the kernel's ops->page_response). */
  pageResponse?(dev: DriverDevice, req: PageRequest, code: number): void;

  /**
   * Whether `dev` supports a vIOMMU of `type` (IOMMU_VIOMMU_TYPE_*): the kernel's get_viommu_size
   * returning non-zero. VIOMMU_ALLOC asks it before looking up the parent HWPT, so an unsupported
   * type is EOPNOTSUPP even when the parent is also wrong. Absent = only viommuInit decides (after
   * the parent lookup).
   */
  viommuSupported?(dev: DriverDevice, type: number): boolean;

  /**
   * vIOMMU init (viommu_init): EOPNOTSUPP for an unsupported type; vendor data is
   * read from and written back through `req.data`. Absent = no vIOMMU support (EOPNOTSUPP).
   */
  viommuInit?(req: ViommuInitRequest): DriverViommu;
}

/** A backend: a factory of driver instances (`smmuv3Cmdqv(options) => DriverV1`). */
export type DriverFactory<O = Record<string, unknown>> = (options: O) => DriverV1;

/** Checks a value is a DriverV1 this core understands (the host calls it on registration). */
export function assertDriverV1(d: unknown): asserts d is DriverV1 {
  const v = d as Partial<DriverV1> | null;
  if (!v || typeof v !== 'object') throw new TypeError('not a driver object');
  if (v.apiVersion !== DRIVER_API_VERSION) throw new TypeError(`driver apiVersion ${String(v.apiVersion)} is not ${DRIVER_API_VERSION}`);
  if (typeof v.name !== 'string' || !v.name) throw new TypeError('driver has no name');
  for (const m of ['probe', 'probeDevice', 'allocPagingDomain', 'attach', 'translate'] as const) {
    if (typeof v[m] !== 'function') throw new TypeError(`driver ${v.name} lacks ${m}()`);
  }
}
