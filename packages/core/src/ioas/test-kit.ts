// Shared setup for the io page table's tests and benchmarks: one host memory, one process, one
// IOAS, and the selftest fixture's numbers (a 16-page buffer, the mock aperture and page size).

import { IOMMU_READ, IOMMU_WRITE } from '../driver/domain.js';
import { AddressSpace } from '../host/address-space.js';
import { PhysicalMemory } from '../host/physical-memory.js';
import { IoPagetable } from './io-pagetable.js';
import { TestDomain } from './test-domain.js';
import { MemlockUser, type PinOwner } from './types.js';

export const PAGE_SIZE = 4096n;
export const BUFFER_SIZE = 16n * PAGE_SIZE;
export const MOCK_PAGE_SIZE = 2048n;
export const MOCK_APERTURE_START = 1n << 24n;
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
export const RW = IOMMU_READ | IOMMU_WRITE;

/** A domain shaped like the selftest's default mock domain: 2 KiB pages, the mock aperture. */
export function mockDomain(opts: { dirty?: boolean } = {}): TestDomain {
  return new TestDomain({
    pgsizeBitmap: MOCK_PAGE_SIZE | PAGE_SIZE | (1n << 21n),
    apertureStart: MOCK_APERTURE_START,
    apertureLast: MOCK_APERTURE_LAST,
    ...opts,
  });
}

export interface Fixture {
  phys: PhysicalMemory;
  mm: AddressSpace;
  owner: PinOwner;
  iopt: IoPagetable;
  domains: TestDomain[];
  /** The selftest's `buffer`: BUFFER_SIZE bytes, hugely aligned (the first user mapping). */
  buffer: bigint;
  bufferBytes: Uint8Array;
  baseIova: bigint;
  rlimitMode: 0 | 1;
  map(va: bigint, length: bigint, prot?: number): bigint;
  mapFixed(va: bigint, length: bigint, iova: bigint, prot?: number): bigint;
}

export function fixture(mockDomains = 0, owner?: Partial<PinOwner>): Fixture {
  const phys = new PhysicalMemory();
  const mm = new AddressSpace(phys);
  const { addr, bytes } = mm.alloc(Number(BUFFER_SIZE));
  const o: PinOwner = { mm, user: new MemlockUser(1000), memlockLimit: Infinity, capIpcLock: false, ...owner };
  const iopt = new IoPagetable();
  const domains: TestDomain[] = [];
  for (let i = 0; i < mockDomains; i++) {
    const d = mockDomain();
    iopt.attachDomain(d);
    domains.push(d);
  }
  const f: Fixture = {
    phys,
    mm,
    owner: o,
    iopt,
    domains,
    buffer: addr,
    bufferBytes: bytes,
    baseIova: mockDomains ? MOCK_APERTURE_START : 0n,
    rlimitMode: 0,
    map: (va, length, prot = RW) => iopt.mapUser(mm, va, length, { prot, owner: f.owner, rlimitMode: f.rlimitMode }),
    mapFixed: (va, length, iova, prot = RW) => iopt.mapUser(mm, va, length, { iova, prot, owner: f.owner, rlimitMode: f.rlimitMode }),
  };
  return f;
}
