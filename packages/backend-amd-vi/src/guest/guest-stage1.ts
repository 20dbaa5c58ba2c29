// What a guest kernel builds for one device behind an AMD-Vi vIOMMU, in its own RAM: an x86-64 (v2)
// page table, a one-level GCR3 table pointing at it for the PASIDs it uses, and the guest DTE a VMM
// hands to HWPT_ALLOC as IOMMU_HWPT_DATA_AMD_GUEST. Shared by the compliance kit and the demo kit.
import { qwordsToBytes } from '@viommu/core';
import * as U from '@viommu/uapi';
import { encodeDteQwords, encodeGcr3Entry } from '../formats/dte.js';
import { PERM_R, PERM_W, PageTable } from '../pgtable/table.js';

/** Guest RAM addressed by guest physical address (the harness's and the suite's GuestMemory fit). */
export interface GuestRam {
  alloc(bytes: number): number;
  readU32(gpa: number): number;
  writeU32(gpa: number, value: number): void;
  write(gpa: number, data: Uint8Array): void;
}

export interface AmdGuestOptions {
  /** The guest DomainID in the DTE (the vIOMMU maps it to a host DomainID). */
  readonly domainId: number;
  /** PASIDs the GCR3 table points at the table (PASID 0 serves requests without one). Default [0]. */
  readonly pasids?: readonly number[];
  /** The DTE's PPR bit (page requests from the device are logged). Default false. */
  readonly ppr?: boolean;
}

/** Offset of DomainID (DTE bits 79:64) in the 32-byte guest DTE. */
const DOMAIN_ID_OFFSET = 8;

export class AmdGuestStage1 {
  readonly table: PageTable;
  readonly gcr3: number;
  /** IOMMU_HWPT_DATA_AMD_GUEST data for the guest DTE. */
  readonly data: { readonly type: number; readonly bytes: Uint8Array };

  constructor(ram: GuestRam, opts: AmdGuestOptions) {
    this.table = new PageTable({ readU32: (a) => ram.readU32(a), writeU32: (a, v) => ram.writeU32(a, v), allocTable: () => ram.alloc(4096) }, 'v2', 4);
    this.gcr3 = ram.alloc(4096);
    for (const pasid of opts.pasids ?? [0]) ram.write(this.gcr3 + pasid * 8, qwordsToBytes([encodeGcr3Entry(true, this.table.root)]));
    const dte = encodeDteQwords({ v: true, gv: true, giov: true, glx: 0, ppr: opts.ppr ?? false, gcr3: this.gcr3, domainId: opts.domainId });
    this.data = { type: U.IOMMU_HWPT_DATA_AMD_GUEST, bytes: qwordsToBytes(dte) };
  }

  /** Maps one 4 KiB page IOVA → GPA read/write (replacing any mapping), invalidating nothing. */
  map(iova: number, gpa: number): void {
    this.table.unmap(iova, 4096);
    this.table.map(iova, gpa, 4096, PERM_R | PERM_W);
  }

  /**
   * The same guest DTE under another guest DomainID: what a VMM allocates a fresh nested HWPT from
   * so the IOMMU walks the guest's current tables (a new gDomID gets a new hDomID, with nothing
   * cached; the same one shares the old hDomID and its stale IOTLB entries).
   */
  withDomainId(domainId: number): { readonly type: number; readonly bytes: Uint8Array } {
    const bytes = this.data.bytes.slice();
    new DataView(bytes.buffer).setUint16(DOMAIN_ID_OFFSET, domainId, true);
    return { type: this.data.type, bytes };
  }
}
