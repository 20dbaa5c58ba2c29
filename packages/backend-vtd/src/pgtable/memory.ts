// Table memory over the host's PhysicalMemory (host-owned tables of host domains), freed with
// the domain. Frames from allocRun are zeroed and 4 KiB aligned.
import { FRAME_SIZE, type PhysicalMemory } from '@viommu/core';
import type { TableMemory } from './table.js';

/** Allocation-free 32-bit store (core's writeU32 builds a buffer per call). */
export function storeU32(mem: PhysicalMemory, pa: number, value: number): void {
  const run = mem.runAt(pa);
  const off = run ? pa - run.firstFrame * FRAME_SIZE : 0;
  if (!run || off + 4 > run.bytes.length) {
    mem.writeU32(pa, value);
    return;
  }
  const b = run.bytes;
  b[off] = value & 0xff;
  b[off + 1] = (value >>> 8) & 0xff;
  b[off + 2] = (value >>> 16) & 0xff;
  b[off + 3] = (value >>> 24) & 0xff;
}

export class PhysicalTableMemory implements TableMemory {
  private readonly frames: number[] = [];

  constructor(private readonly mem: PhysicalMemory) {}

  readU32(addr: number): number {
    return this.mem.readU32(addr);
  }

  writeU32(addr: number, value: number): void {
    storeU32(this.mem, addr, value);
  }

  allocTable(): number {
    const run = this.mem.allocRun(1);
    this.frames.push(run.firstFrame);
    return run.firstFrame * FRAME_SIZE;
  }

  freeAll(): void {
    for (const f of this.frames) this.mem.freeRun(f);
    this.frames.length = 0;
  }
}
