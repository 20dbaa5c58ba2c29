// The driver's domains: first-stage paging (the kernel's default when the unit has FLTS),
// second-stage paging (NEST_PARENT, or when there is no first stage), and the nested domain built
// from iommu_hwpt_vtd_s1. Each holds a host domain ID (DID) and knows where it is attached, so
// unmaps and user invalidations can name the DID/PASID pairs to flush, as the kernel's cache tags do.
import {
  IOMMU_READ, IOMMU_WRITE, PhysicalTableMemory, mapRange, type DirtyTracking, type DomainGeometry, type DriverNestedDomain, type DriverPagingDomain, type PhysicalMemory,
  type UserDataArray,
} from '@viommu/core';
import { SystemError } from '@viommu/uapi';
import { FS_A, FS_P, FS_RW, FS_US, SS_D, SS_R, SS_SNP, SS_W } from '../pgtable/pte.js';
import { FS_FORMAT, PageTable, SS_FORMAT } from '../pgtable/table.js';
import type { VtdDevice } from './device.js';

/** One place a domain is attached: a device and the VT-d PASID (0 = RID_PASID for requests without PASID). */
export interface Attachment {
  readonly dev: VtdDevice;
  readonly pasid: number;
}

/** What domains need from their driver: flushing, and giving their DID back. */
export interface DomainOwner {
  /** Flush [start, last] of `domain` (last inclusive, 64-bit), as cache_tag_flush_range does. */
  flushRange(domain: VtdDomain, start: bigint, last: bigint, leaf: boolean): void;
  releaseDid(did: number): void;
  /** ECAP.SC: the unit can force snooping. */
  readonly snoopControl: boolean;
  /** Sets PGSNP in the RID PASID entries using a first-stage `domain` (intel_pasid_setup_page_snoop_control). */
  setPageSnoop(domain: FsPagingDomain): void;
  /** Sets or clears SSADE in every PASID entry using `domain` (and its nested children), with the flushes. */
  setDirtyTracking(domain: SsPagingDomain, enabled: boolean): void;
}

export type VtdDomain = FsPagingDomain | SsPagingDomain | NestedDomain;

const PGSIZE_4K = 1n << 12n;

abstract class PagingBase {
  readonly kind = 'paging' as const;
  readonly attachments = new Set<Attachment>();
  abstract readonly geometry: DomainGeometry;
  abstract readonly table: PageTable;
  protected abstract readonly memory: PhysicalTableMemory;
  protected abstract leafBits(prot: number): number;

  constructor(
    readonly owner: DomainOwner,
    readonly did: number,
  ) {}

  get root(): number {
    return this.table.root;
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) throw new SystemError('EINVAL', 'ioctl', 'map without access');
    mapRange(this.table, Number(iova), Number(pa), Number(length), this.leafBits(prot));
  }

  unmap(iova: bigint, length: bigint): bigint {
    const n = this.table.unmap(Number(iova), Number(length));
    if (n > 0) this.owner.flushRange(this as unknown as VtdDomain, iova, iova + length - 1n, false);
    return BigInt(n);
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const pa = this.table.lookup(Number(iova));
    return pa === undefined ? undefined : BigInt(pa);
  }

  /** Set once enforceCacheCoherency succeeded: DMA through this domain snoops. */
  forceSnooping = false;

  /** intel_iommu_enforce_cache_coherency_{fs,ss}: needs ECAP.SC; stays on once set. */
  enforceCacheCoherency(): boolean {
    if (this.forceSnooping) return true;
    if (!this.owner.snoopControl) return false;
    this.forceSnooping = true;
    this.snoopEnabled();
    return true;
  }

  protected abstract snoopEnabled(): void;

  free(): void {
    this.owner.releaseDid(this.did);
    this.memory.freeAll();
  }
}

/** First-stage (x86-64 4-level) paging domain: PASID entry PGTT = 1. */
export class FsPagingDomain extends PagingBase implements DriverPagingDomain {
  readonly nestParent = false;
  readonly geometry: DomainGeometry;
  protected readonly memory: PhysicalTableMemory;
  readonly table: PageTable;

  constructor(mem: PhysicalMemory, owner: DomainOwner, did: number) {
    super(owner, did);
    this.memory = new PhysicalTableMemory(mem);
    this.table = new PageTable(this.memory, FS_FORMAT, 4);
    // The lower canonical half of a 48-bit address space.
    this.geometry = { apertureStart: 0n, apertureLast: (1n << 47n) - 1n, pgsizeBitmap: PGSIZE_4K };
  }

  protected leafBits(prot: number): number {
    return FS_P | FS_US | FS_A | ((prot & IOMMU_WRITE) !== 0 ? FS_RW : 0);
  }

  protected snoopEnabled(): void {
    this.owner.setPageSnoop(this);
  }
}

/** Second-stage (4-level, 48-bit) paging domain: PASID entry PGTT = 2, or the parent of nested domains. */
export class SsPagingDomain extends PagingBase implements DriverPagingDomain {
  readonly geometry: DomainGeometry;
  protected readonly memory: PhysicalTableMemory;
  readonly table: PageTable;
  /** Nested domains built on this parent (the kernel's s1_domains list): their DIDs cache our translations too. */
  readonly children = new Set<NestedDomain>();
  /** Dirty tracking through second-stage D bits (allocated with DIRTY_TRACKING on a unit with SLADS). */
  readonly dirty?: DirtyTracking;

  constructor(
    mem: PhysicalMemory,
    owner: DomainOwner,
    did: number,
    readonly nestParent: boolean,
    dirty = false,
    readonly levels = 4,
  ) {
    super(owner, did);
    this.memory = new PhysicalTableMemory(mem);
    this.table = new PageTable(this.memory, SS_FORMAT, levels);
    this.geometry = { apertureStart: 0n, apertureLast: (1n << BigInt(12 + 9 * levels)) - 1n, pgsizeBitmap: PGSIZE_4K };
    if (dirty) this.dirty = this.dirtyTracking();
  }

  private dirtyTracking(): DirtyTracking {
    const state = { enabled: false };
    const table = this.table;
    const memory = this.memory;
    return {
      get enabled() {
        return state.enabled;
      },
      setEnabled: (enabled: boolean) => {
        if (state.enabled === enabled) return;
        state.enabled = enabled;
        this.owner.setDirtyTracking(this, enabled);
      },
      // The hardware sets D in the leaf; clearing it needs an IOTLB flush so the next write walks
      // (and sets it) again, as the kernel's read_and_clear_dirty + iotlb sync does.
      readAndClear: (iova, length, noClear, mark) => {
        let cleared = false;
        for (let va = Number(iova); va < Number(iova + length); va += 4096) {
          const e = table.leafEntry(va);
          if (e === undefined) continue;
          const lo = memory.readU32(e);
          if ((lo & (SS_R | SS_W)) === 0 || (lo & SS_D) === 0) continue;
          mark(BigInt(va), 4096n);
          if (!noClear) {
            memory.writeU32(e, (lo & ~SS_D) >>> 0);
            cleared = true;
          }
        }
        if (cleared) this.owner.flushRange(this, iova, iova + length - 1n, true);
      },
    };
  }

  override map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    // ERRATA_772415_SPR17 workaround (PT_FEAT_VTDSS_FORCE_WRITEABLE): no read-only entries in a nest parent.
    if (this.nestParent && (prot & IOMMU_WRITE) === 0) {
      throw new SystemError('EINVAL', 'ioctl', 'read-only mapping is disallowed on a nest parent (ERRATA_772415_SPR17)');
    }
    super.map(iova, pa, length, prot);
  }

  protected leafBits(prot: number): number {
    return ((prot & IOMMU_READ) !== 0 ? SS_R : 0) | ((prot & IOMMU_WRITE) !== 0 ? SS_W : 0) | (this.forceSnooping ? SS_SNP : 0);
  }

  /** Second-stage snoop is per entry: maps from now on carry SNP (PT_FEAT_VTDSS_FORCE_COHERENCE). */
  protected snoopEnabled(): void {}
}

/** The guest's first-stage configuration (iommu_hwpt_vtd_s1), kept as given: checked at attach. */
export interface S1Config {
  flags: bigint;
  pgtblAddr: bigint;
  addrWidth: number;
}

export class NestedDomain implements DriverNestedDomain {
  readonly kind = 'nested' as const;
  readonly attachments = new Set<Attachment>();
  faultCapable = false;

  constructor(
    readonly owner: DomainOwner & { invalidateUser(domain: NestedDomain, array: UserDataArray): void },
    readonly parent: SsPagingDomain,
    readonly did: number,
    readonly s1: S1Config,
  ) {
    parent.children.add(this);
  }

  cacheInvalidate(array: UserDataArray): void {
    this.owner.invalidateUser(this, array);
  }

  setFaultCapable(capable: boolean): void {
    this.faultCapable = capable;
  }

  free(): void {
    this.parent.children.delete(this);
    this.owner.releaseDid(this.did);
  }
}
