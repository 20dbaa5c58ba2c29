// Benchmarks of the io page table (issue 3). Run from packages/core:
//   tsc -b --force src/ioas/tsconfig.bench.json && node --expose-gc dist/ioas/io-pagetable.bench.js
// (--force: tsc -b checks only the entry file for staleness, not what it imports.)
// 1. MAP + UNMAP of 4 KiB, 2 MiB and 1 GiB regions in an IOAS with one attached domain, in
//    operations per second, with the ratio to a floor measured in the same run: the same map +
//    unmap done on the domain alone plus one counter pass over the pages each way (what any model
//    that pins page by page must pay), so the ratio shows the io page table's own overhead.
// 2. Memory per mapped 4 KiB page with 1 M pages mapped (target: under 64 bytes per page), for
//    three layouts: 1 GiB maps, 2 MiB maps and (worst case) 1 M separate 4 KiB maps.
// Results go to bench-results/ioas.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { AddressSpace } from '../host/address-space.js';
import { FRAME_SIZE, PhysicalMemory } from '../host/physical-memory.js';
import { IOMMU_READ, IOMMU_WRITE } from '../driver/domain.js';
import { IoPagetable } from './io-pagetable.js';
import { TestDomain } from './test-domain.js';
import { MemlockUser, type PinOwner } from './types.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const KiB = 1024n;
const MiB = 1024n * KiB;
const GiB = 1024n * MiB;

const gc = (globalThis as { gc?: () => void }).gc;
function collect(): void {
  if (gc) for (let i = 0; i < 3; i++) gc();
}

/** Runs `op` repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per second. */
function rate(op: () => void, ms = 1000): number {
  // Warm up for a fifth of the budget so the JIT has settled before measuring.
  const warm = process.hrtime.bigint() + BigInt(ms) * 200_000n;
  while (process.hrtime.bigint() < warm) for (let i = 0; i < 10; i++) op();
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 10; i++) op();
    n += 10;
    elapsed = process.hrtime.bigint() - start;
  }
  return (n * 1e9) / Number(elapsed);
}

function setup(bytes: bigint) {
  const phys = new PhysicalMemory();
  const mm = new AddressSpace(phys);
  const mem = mm.alloc(Number(bytes));
  const owner: PinOwner = { mm, user: new MemlockUser(), memlockLimit: Infinity, capIpcLock: false };
  const iopt = new IoPagetable();
  const domain = new TestDomain();
  iopt.attachDomain(domain);
  return { phys, mm, addr: mem.addr, owner, iopt, domain };
}

function mapUnmap(size: bigint): { size: string; iopsPerSec: number; baselinePerSec: number; ratio: number } {
  const s = setup(size);
  const opts = { prot: RW, owner: s.owner, rlimitMode: 0 as const };
  const iopt = rate(() => {
    const iova = s.iopt.mapUser(s.mm, s.addr, size, opts);
    s.iopt.unmap(iova, size);
  });
  // The floor: the domain's own map + unmap, plus one pass over a per-page counter each way (the
  // least any model that pins page by page, as the kernel does, must do).
  const frame0 = s.mm.frameOf(s.addr)!;
  const pa = BigInt(frame0) * BigInt(FRAME_SIZE);
  const bare = new TestDomain();
  const pages = Number(size) / FRAME_SIZE;
  const counts = new Uint32Array(pages);
  const baseline = rate(() => {
    for (let i = 0; i < pages; i++) counts[i]!++;
    bare.map(1n << 30n, pa, size, RW);
    bare.unmap(1n << 30n, size);
    for (let i = 0; i < pages; i++) counts[i]!--;
  });
  return { size: label(size), iopsPerSec: Math.round(iopt), baselinePerSec: Math.round(baseline), ratio: round(iopt / baseline) };
}

function memoryPerPage(chunk: bigint): { layout: string; areas: number; bytesPerPage: number } {
  const PAGES = 1n << 20n;
  const total = PAGES * BigInt(FRAME_SIZE); // 4 GiB, as two 2 GiB user mappings
  const phys = new PhysicalMemory();
  const mm = new AddressSpace(phys);
  const halves = [mm.alloc(Number(total / 2n)).addr, mm.alloc(Number(total / 2n)).addr];
  const owner: PinOwner = { mm, user: new MemlockUser(), memlockLimit: Infinity, capIpcLock: false };
  const iopt = new IoPagetable();
  iopt.attachDomain(new TestDomain());
  collect();
  const before = used();
  const opts = { prot: RW, owner, rlimitMode: 0 as const };
  // Fixed IOVAs, as a VMM maps guest RAM (automatic IOVAs walk the areas first-fit, as the kernel does).
  let areas = 0;
  let iova = 1n << 32n;
  for (const base of halves) {
    for (let off = 0n; off < total / 2n; off += chunk) {
      iopt.mapUser(mm, base + off, chunk, { ...opts, iova });
      iova += chunk;
      areas++;
    }
  }
  collect();
  const bytes = used() - before;
  const result = { layout: `${label(chunk)} maps`, areas, bytesPerPage: round(bytes / Number(PAGES)) };
  iopt.destroy();
  return result;
}

/** JS heap plus array buffers (pin counts live in typed arrays); user memory itself is allocated before measuring. */
function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function label(n: bigint): string {
  return n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function main(): void {
  if (!gc) console.warn('run with node --expose-gc for stable memory numbers');
  const mapUnmapResults = [4n * KiB, 2n * MiB, 1n * GiB].map(mapUnmap);
  for (const r of mapUnmapResults) {
    console.log(`map+unmap ${r.size.padStart(6)}: ${r.iopsPerSec.toLocaleString('en')} ops/s (floor ${r.baselinePerSec.toLocaleString('en')} ops/s, ratio ${r.ratio})`);
  }
  const memory = [1n * GiB, 2n * MiB, 4n * KiB].map(memoryPerPage);
  for (const m of memory) {
    console.log(`memory at 1M mapped pages, ${m.layout.padEnd(11)} (${m.areas} areas): ${m.bytesPerPage} bytes/page (target < 64)`);
  }
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/ioas.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, mapUnmap: mapUnmapResults, memory }, null, 2) + '\n');
  console.log('wrote bench-results/ioas.json');
}

main();
