// The driver's domains: a host stage-1 paging domain (the kernel's default for a plain HWPT), the
// stage-2 nest parent, and the nested domain built from a guest STE. Unmapping a paging domain
// invalidates the TLB through the SMMU's command queue, as the kernel does.
import type { DriverNestedDomain, DriverPagingDomain, DomainGeometry, PhysicalMemory } from '@viommu/core';
import { IOMMU_READ, IOMMU_WRITE, PhysicalTableMemory } from '@viommu/core';
import { SystemError } from '@viommu/uapi';
import { OverlapError, TableBuilder, s1LeafAttrs } from '../pgtable/builder.js';
import { GRANULE_4K, blockAllowed, levelShift, s1StartLevel } from '../pgtable/granule.js';
import { Stage2Domain } from '../pgtable/s2-domain.js';
import type { Vsmmu } from './vsmmu.js';

/** What a domain needs from its driver: TLB maintenance. */
export interface DomainOwner {
  invalidateAsidRange(asid: number, iova: number, length: number): void;
  invalidateS2Range(vmid: number, ipa: number, length: number, nestParent: boolean): void;
  releaseAsid(asid: number): void;
  releaseVmid(vmid: number): void;
}

function pgsizeBitmap(g: number): bigint {
  let bitmap = 1n << BigInt(g);
  for (let level = 1; level < 3; level++) if (blockAllowed(g, level)) bitmap |= 1n << BigInt(levelShift(g, level));
  return bitmap;
}

/** A host stage-1 domain (ARM_SMMU_DOMAIN_S1): its CD goes in the attached devices' CD tables. */
export class Stage1PagingDomain implements DriverPagingDomain {
  readonly kind = 'paging';
  readonly nestParent = false;
  readonly geometry: DomainGeometry;
  readonly tables: TableBuilder;
  private readonly memory: PhysicalTableMemory;

  constructor(
    mem: PhysicalMemory,
    readonly owner: DomainOwner,
    readonly asid: number,
    readonly inputBits = 48,
  ) {
    this.memory = new PhysicalTableMemory(mem);
    this.tables = new TableBuilder(this.memory, GRANULE_4K, inputBits, s1StartLevel(GRANULE_4K, inputBits));
    this.geometry = { apertureStart: 0n, apertureLast: (1n << BigInt(inputBits)) - 1n, pgsizeBitmap: pgsizeBitmap(GRANULE_4K) };
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    const ia = Number(iova);
    // AP[2:1]: EL0 access (bit 0), read-only (bit 1) unless writable; nG so entries carry the ASID.
    const attrs = s1LeafAttrs({ ap: (prot & IOMMU_WRITE) !== 0 ? 1 : 3, nG: true });
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) throw new SystemError('EINVAL', 'ioctl', 'map without access');
    try {
      this.tables.map(ia, Number(pa), Number(length), attrs);
    } catch (e) {
      if (e instanceof OverlapError) {
        if (e.mapped > 0) this.unmap(iova, BigInt(e.mapped));
        throw new SystemError('EEXIST', 'ioctl', e.message);
      }
      throw new SystemError('EINVAL', 'ioctl', (e as Error).message);
    }
  }

  unmap(iova: bigint, length: bigint): bigint {
    const n = this.tables.unmap(Number(iova), Number(length));
    if (n > 0) this.owner.invalidateAsidRange(this.asid, Number(iova), Number(length));
    return BigInt(n);
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const pa = this.tables.lookup(Number(iova));
    return pa === undefined ? undefined : BigInt(pa);
  }

  /** arm_smmu_enforce_cache_coherency: true while every attached master is CANWBS (all are, here). */
  enforceCacheCoherency(): boolean {
    return true;
  }

  free(): void {
    this.owner.releaseAsid(this.asid);
    this.memory.freeAll();
  }
}

/** The stage-2 nest parent (ARM_SMMU_DOMAIN_S2 with nest_parent): holds the VMID vIOMMUs inherit. */
export class NestParentDomain extends Stage2Domain implements DriverPagingDomain {
  readonly kind = 'paging';
  readonly nestParent = true;

  constructor(
    mem: PhysicalMemory,
    readonly owner: DomainOwner,
    vmid: number,
    ipaBits: number,
    outputBits: number,
    fwb: boolean,
  ) {
    super(mem, { vmid, ipaBits, outputBits, fwb });
  }

  override unmap(iova: bigint, length: bigint): bigint {
    const n = super.unmap(iova, length);
    if (n > 0n) this.owner.invalidateS2Range(this.config.vmid, Number(iova), Number(length), true);
    return n;
  }

  /** As for stage 1: every master of this model is fully coherent (CANWBS). */
  enforceCacheCoherency(): boolean {
    return true;
  }

  free(): void {
    this.owner.releaseVmid(this.config.vmid);
    this.destroy();
  }
}

/** A nested domain: the validated guest STE words 0 and 1, on a vIOMMU. */
export class NestedDomain implements DriverNestedDomain {
  readonly kind = 'nested';

  constructor(
    readonly vsmmu: Vsmmu,
    /** The guest STE, dword 0 and 1 as 32-bit halves (EATS already removed). */
    readonly ste: Uint32Array,
    readonly enableAts: boolean,
  ) {}

  /** vSTE Config (abort when V = 0). */
  get config(): number {
    return (this.ste[0]! & 1) === 0 ? 0 : (this.ste[0]! >>> 1) & 7;
  }

  free(): void {}
}
