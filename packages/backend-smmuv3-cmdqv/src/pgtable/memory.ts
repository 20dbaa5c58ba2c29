// Table memory over the host's PhysicalMemory: tables are runs of frames, aligned by
// over-allocating when the table is larger than a frame (frame numbers are not chosen by us).
import { FRAME_SIZE, type PhysicalMemory } from '@viommu/core';
import type { TableMemory } from './builder.js';

export class PhysicalTableMemory implements TableMemory {
  private readonly runs: number[] = [];

  constructor(private readonly mem: PhysicalMemory) {}

  readU32(addr: number): number {
    return this.mem.readU32(addr);
  }

  writeU32(addr: number, value: number): void {
    this.mem.writeU32(addr, value);
  }

  allocTable(bytes: number): number {
    const frames = Math.ceil(bytes / FRAME_SIZE);
    const extra = bytes > FRAME_SIZE ? frames - 1 : 0;
    const run = this.mem.allocRun(frames + extra);
    this.runs.push(run.firstFrame);
    const start = run.firstFrame * FRAME_SIZE;
    return Math.ceil(start / bytes) * bytes;
  }

  /** Frees every table this memory handed out. */
  freeAll(): void {
    for (const first of this.runs) this.mem.freeRun(first);
    this.runs.length = 0;
  }
}
