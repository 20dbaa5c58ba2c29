// The driver's domains: v1 (host table: the kernel default, nest parents, dirty tracking), v2
// (x86-64 table reached through a host-owned one-entry GCR3 table: IOMMU_HWPT_ALLOC_PASID), and the
// nested domain built from a guest DTE (iommu_hwpt_amd_guest, only with `nested: true`).
import {
  IOMMU_READ, IOMMU_WRITE, PhysicalTableMemory, mapRange, type DomainGeometry, type DriverNestedDomain, type DriverPagingDomain, type PhysicalMemory,
} from '@viommu/core';
import { SystemError } from '@viommu/uapi';
import { PERM_R, PERM_W, PageTable } from '../pgtable/table.js';
import type { AmdViDevice } from './device.js';

export interface DomainOwner {
  /** Flushes [start, last] of `domain` wherever it is cached (IOTLB, linked vIOMMUs' hDomIDs, device IOTLBs). */
  flushRange(domain: PagingDomainBase, start: bigint, last: bigint): void;
  releaseDomainId(id: number): void;
}

const PGSIZE_4K = 1n << 12n;

export abstract class PagingDomainBase implements DriverPagingDomain {
  readonly kind = 'paging' as const;
  abstract readonly nestParent: boolean;
  abstract readonly geometry: DomainGeometry;
  /** Devices whose RID DTE points at this domain. */
  readonly attached = new Set<AmdViDevice>();
  protected readonly memory: PhysicalTableMemory;
  readonly table: PageTable;

  constructor(
    mem: PhysicalMemory,
    readonly owner: DomainOwner,
    readonly domainId: number,
    format: 'v1' | 'v2',
    levels: number,
  ) {
    this.memory = new PhysicalTableMemory(mem);
    this.table = new PageTable(this.memory, format, levels);
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) throw new SystemError('EINVAL', 'ioctl', 'map without access');
    const perm = ((prot & IOMMU_READ) !== 0 ? PERM_R : 0) | ((prot & IOMMU_WRITE) !== 0 ? PERM_W : 0);
    mapRange(this.table, Number(iova), Number(pa), Number(length), perm);
  }

  unmap(iova: bigint, length: bigint): bigint {
    const n = this.table.unmap(Number(iova), Number(length));
    if (n > 0) this.owner.flushRange(this, iova, iova + BigInt(n) - 1n);
    return BigInt(n);
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const pa = this.table.lookup(Number(iova));
    return pa === undefined ? undefined : BigInt(pa);
  }

  enforceCacheCoherency(): boolean {
    return true;
  }

  free(): void {
    this.owner.releaseDomainId(this.domainId);
    this.memory.freeAll();
  }
}

/** v1 host table, Mode 4 (48-bit input). */
export class V1Domain extends PagingDomainBase {
  readonly geometry: DomainGeometry = { apertureStart: 0n, apertureLast: (1n << 48n) - 1n, pgsizeBitmap: PGSIZE_4K };
  /** vIOMMUs created on this nest parent: their hDomIDs cache our translations too (the kernel's viommu_list). */
  readonly viommus = new Set<{ hostDomainIds(): Iterable<number> }>();

  constructor(mem: PhysicalMemory, owner: DomainOwner, domainId: number, readonly nestParent: boolean, readonly dirtyTracking: boolean) {
    super(mem, owner, domainId, 'v1', 4);
  }
}

/**
 * v2 (x86-64 4-level) table; the DTE reaches it through `gcr3Table` (PASID 0, GIoV). The kernel
 * keeps one GCR3 table per device (dev_data->gcr3_info); the model keeps one per domain, which
 * gives the same DTE for RID attach (the only attach modelled).
 */
export class V2Domain extends PagingDomainBase {
  readonly nestParent = false;
  readonly geometry: DomainGeometry = { apertureStart: 0n, apertureLast: (1n << 47n) - 1n, pgsizeBitmap: PGSIZE_4K };
  readonly gcr3Table: number;

  constructor(mem: PhysicalMemory, owner: DomainOwner, domainId: number) {
    super(mem, owner, domainId, 'v2', 4);
    this.gcr3Table = this.memory.allocTable();
    mem.writeU32(this.gcr3Table, (this.table.root % 2 ** 32) | 1);
    mem.writeU32(this.gcr3Table + 4, Math.floor(this.table.root / 2 ** 32));
  }
}

/** A guest DTE accepted by the dormant nested.c checks; its host DomainID comes from the vIOMMU's gDomID map. */
export class NestedDomain implements DriverNestedDomain {
  readonly kind = 'nested' as const;
  readonly attached = new Set<AmdViDevice>();
  faultCapable = false;

  constructor(
    readonly gdte: readonly bigint[],
    readonly parent: V1Domain,
    readonly gDomId: number,
    readonly hDomId: number,
    private readonly release: () => void,
  ) {}

  setFaultCapable(capable: boolean): void {
    this.faultCapable = capable;
  }

  free(): void {
    this.release();
  }
}

export type AmdViDomain = V1Domain | V2Domain | NestedDomain;
