// Property tests: random MAP / UNMAP / COPY / attach / detach / access sequences keep every
// attached domain equal to the areas, fail only with errno-coded errors, and leave no pin or
// charge behind once everything is torn down.

import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isErrnoError } from '@viommu/uapi';
import { IOMMU_READ } from '../driver/domain.js';
import { mmCounters } from './accounting.js';
import { IoPagetable } from './io-pagetable.js';
import { framePinCount } from './pin-counts.js';
import { TestDomain } from './test-domain.js';
import { fixture, PAGE_SIZE, RW } from './test-kit.js';
import type { IoasAccess } from './types.js';

type Op =
  | { op: 'map'; table: number; page: number; pages: number; fixed: number | null; ro: boolean; sub: boolean }
  | { op: 'unmap'; table: number; at: number; pages: number }
  | { op: 'unmapAll'; table: number }
  | { op: 'copy'; from: number; to: number; at: number; pages: number; fixed: number | null }
  | { op: 'attach'; table: number; small: boolean }
  | { op: 'detach'; table: number }
  | { op: 'pin'; table: number; at: number; pages: number; internal: boolean }
  | { op: 'unpinOne' }
  | { op: 'hugePages'; table: number; on: boolean }
  | { op: 'cut'; table: number; at: number; page: number };

const table = fc.integer({ min: 0, max: 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('map' as const), table, page: fc.integer({ min: 0, max: 60 }), pages: fc.integer({ min: 1, max: 8 }), fixed: fc.option(fc.integer({ min: 0, max: 63 })), ro: fc.boolean(), sub: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('unmap' as const), table, at: fc.integer({ min: 0, max: 70 }), pages: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unmapAll' as const), table }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('copy' as const), from: table, to: table, at: fc.integer({ min: 0, max: 70 }), pages: fc.integer({ min: 1, max: 3 }), fixed: fc.option(fc.integer({ min: 0, max: 63 })) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('attach' as const), table, small: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('detach' as const), table }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('pin' as const), table, at: fc.integer({ min: 0, max: 70 }), pages: fc.integer({ min: 1, max: 2 }), internal: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('unpinOne' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('hugePages' as const), table, on: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cut' as const), table, at: fc.integer({ min: 0, max: 70 }), page: fc.integer({ min: 1, max: 7 }) }) },
);

/** IOVAs live in a small window so operations collide often. */
const BASE = 0x100000n;
const iovaOf = (page: number) => BASE + BigInt(page) * PAGE_SIZE;

describe('IoPagetable properties', () => {
  it('random sequences keep domains equal to areas and balance every pin and charge', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const f = fixture(0, { memlockLimit: Number(200n * PAGE_SIZE) });
        const big = f.mm.alloc(Number(64n * PAGE_SIZE));
        const tables = [f.iopt, new IoPagetable()];
        const domains: TestDomain[][] = [[], []];
        const pins: { t: number; access: IoasAccess; iova: bigint; length: bigint }[] = [];
        // Each table's accesses: one that gives its pins back when asked, one internal (a HW queue).
        const accesses = tables.map((t, ti) => {
          // Table 0's accesses pin pages (PAGE_SIZE alignment); table 1's only rw (alignment 1), so
          // table 1 takes sub-page maps and its pins fail with EINVAL.
          const polite: IoasAccess = {
            iovaAlignment: ti === 0 ? Number(PAGE_SIZE) : 1,
            internal: false,
            unmap(iova, length) {
              for (const p of [...pins]) {
                if (p.t === ti && p.access === polite && p.iova <= iova + length - 1n && p.iova + p.length - 1n >= iova) {
                  t.unpinPages(polite, p.iova, p.length);
                  pins.splice(pins.indexOf(p), 1);
                }
              }
            },
          };
          const hwq: IoasAccess = { iovaAlignment: ti === 0 ? Number(PAGE_SIZE) : 1, internal: true };
          t.addAccess(polite);
          t.addAccess(hwq);
          return { polite, hwq };
        });
        const opts = (fixed: number | null, prot: number) => ({ prot, owner: f.owner, rlimitMode: 0 as const, ...(fixed === null ? {} : { iova: iovaOf(fixed) }) });

        const run = (o: Op): void => {
          switch (o.op) {
            case 'map': {
              const va = big.addr + BigInt(o.page) * PAGE_SIZE + (o.sub ? 0x800n : 0n);
              tables[o.table]!.mapUser(f.mm, va, BigInt(o.pages) * PAGE_SIZE, opts(o.fixed, o.ro ? IOMMU_READ : RW));
              return;
            }
            case 'unmap': {
              // Half the time from an area's start, so superset unmaps succeed often.
              const areas = tables[o.table]!.areas();
              const area = o.at % 2 ? areas[o.at % Math.max(1, areas.length)] : undefined;
              tables[o.table]!.unmap(area ? area.iova : iovaOf(o.at), BigInt(o.pages) * PAGE_SIZE);
              return;
            }
            case 'unmapAll':
              tables[o.table]!.unmapAll();
              return;
            case 'copy': {
              const src = tables[o.from]!.areas()[o.at % Math.max(1, tables[o.from]!.areas().length)];
              const at = src ? src.iova : iovaOf(o.at);
              tables[o.to]!.copy(tables[o.from]!, at, BigInt(o.pages) * PAGE_SIZE, opts(o.fixed, IOMMU_READ));
              return;
            }
            case 'attach': {
              const d = o.small ? new TestDomain({ pgsizeBitmap: 2048n | PAGE_SIZE }) : new TestDomain();
              tables[o.table]!.attachDomain(d);
              domains[o.table]!.push(d);
              return;
            }
            case 'detach': {
              const d = domains[o.table]!.shift();
              if (d) tables[o.table]!.detachDomain(d);
              return;
            }
            case 'pin': {
              const a = o.internal ? accesses[o.table]!.hwq : accesses[o.table]!.polite;
              const areas = tables[o.table]!.areas();
              const area = areas[o.at % Math.max(1, areas.length)];
              const iova = area ? area.iova : iovaOf(o.at);
              const length = BigInt(o.pages) * PAGE_SIZE;
              tables[o.table]!.pinPages(a, iova, length, 0);
              pins.push({ t: o.table, access: a, iova, length });
              return;
            }
            case 'unpinOne': {
              const p = pins.pop();
              if (p) tables[p.t]!.unpinPages(p.access, p.iova, p.length);
              return;
            }
            case 'hugePages':
              tables[o.table]!.setHugePages(o.on);
              return;
            case 'cut': {
              const areas = tables[o.table]!.areas();
              const area = areas[o.at % Math.max(1, areas.length)];
              if (area) tables[o.table]!.cutIova([area.iova + BigInt(o.page) * PAGE_SIZE - 1n]);
              return;
            }
          }
        };

        for (const o of ops) {
          try {
            run(o);
          } catch (e) {
            if (!isErrnoError(e)) throw e;
          }
          tables.forEach((t, ti) => {
            t.checkInvariants();
            const mapped = t.areas().reduce((n, a) => n + (a.last - a.iova + 1n), 0n);
            for (const d of domains[ti]!) expect(d.mappedBytes).toBe(mapped);
          });
        }

        // Tear down: release every pin, every domain, every area.
        for (const p of pins.splice(0)) tables[p.t]!.unpinPages(p.access, p.iova, p.length);
        tables.forEach((t, ti) => {
          for (const d of domains[ti]!) t.detachDomain(d);
          t.removeAccess(accesses[ti]!.polite);
          t.removeAccess(accesses[ti]!.hwq);
          t.destroy();
          expect(t.areas()).toEqual([]);
        });
        for (let i = 0; i < 64; i++) expect(framePinCount(f.phys, f.mm.frameOf(big.addr + BigInt(i) * PAGE_SIZE)!)).toBe(0);
        expect(f.owner.user.lockedPages).toBe(0);
        expect(mmCounters(f.mm)).toEqual({ lockedVm: 0, pinnedVm: 0 });
      }),
      { numRuns: 500, seed: 20261125 },
    );
  });
});
