// The host's stage-2 paging domain for nesting (a NEST_PARENT HWPT): VMSAv8-64 stage-2 tables built
// in physical memory, implementing core's PagingDomain. The SMMU walks these very bytes, and the
// STE it is installed in takes its VTCR fields from here.
import { type DomainGeometry, IOMMU_READ, IOMMU_WRITE, type PagingDomain, type PhysicalMemory, PhysicalTableMemory, mapRange } from '@viommu/core';
import { SystemError } from '@viommu/uapi';
import { TableBuilder, s2LeafAttrs } from './builder.js';
import { GRANULE_4K, blockAllowed, levelShift, psFromAddressBits, s1StartLevel, s2Sl0, tg0FromGranuleShift } from './granule.js';

export interface Stage2DomainOptions {
  granuleShift?: number;
  /** IPA bits (64 − VTCR.T0SZ). */
  ipaBits?: number;
  /** Output address bits (VTCR.PS). */
  outputBits?: number;
  vmid: number;
  /** Whether the SMMU has S2FWB (the STE carries it). */
  fwb?: boolean;
}

/** The VTCR/VTTBR view the STE needs. */
export interface Stage2Config {
  vmid: number;
  ttb: number;
  t0sz: number;
  sl0: number;
  tg: number;
  ps: number;
  fwb: boolean;
}

export class Stage2Domain implements PagingDomain {
  readonly geometry: DomainGeometry;
  readonly config: Stage2Config;
  private readonly tables: TableBuilder;
  private readonly memory: PhysicalTableMemory;

  constructor(mem: PhysicalMemory, options: Stage2DomainOptions) {
    const g = options.granuleShift ?? GRANULE_4K;
    const ipaBits = options.ipaBits ?? 48;
    const outputBits = options.outputBits ?? 48;
    const start = s1StartLevel(g, ipaBits); // no concatenation needed: the tables it picks are plain
    this.memory = new PhysicalTableMemory(mem);
    this.tables = new TableBuilder(this.memory, g, ipaBits, start);
    let bitmap = 1n << BigInt(g);
    for (let level = 1; level < 3; level++) if (blockAllowed(g, level)) bitmap |= 1n << BigInt(levelShift(g, level));
    this.geometry = { apertureStart: 0n, apertureLast: (1n << BigInt(ipaBits)) - 1n, pgsizeBitmap: bitmap };
    this.config = {
      vmid: options.vmid,
      ttb: this.tables.root,
      t0sz: 64 - ipaBits,
      sl0: s2Sl0(g, start),
      tg: tg0FromGranuleShift(g),
      ps: psFromAddressBits(outputBits),
      fwb: options.fwb ?? false,
    };
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    const ia = Number(iova);
    const attrs = s2LeafAttrs({ read: (prot & IOMMU_READ) !== 0, write: (prot & IOMMU_WRITE) !== 0 });
    try {
      mapRange(this.tables, ia, Number(pa), Number(length), attrs); // all or nothing; EEXIST on an overlap
    } catch (e) {
      if (e instanceof SystemError) throw e;
      throw new SystemError('EINVAL', 'ioctl', (e as Error).message); // the builder's range checks
    }
  }

  unmap(iova: bigint, length: bigint): bigint {
    return BigInt(this.tables.unmap(Number(iova), Number(length)));
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const pa = this.tables.lookup(Number(iova));
    return pa === undefined ? undefined : BigInt(pa);
  }

  /** Releases the table memory (domain free). */
  destroy(): void {
    this.memory.freeAll();
  }
}
