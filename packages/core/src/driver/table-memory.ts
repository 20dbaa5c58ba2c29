// Memory for a backend's host-owned translation tables (the tables of host paging domains): zeroed
// tables carved from the host's PhysicalMemory, all freed with their domain. A guest's own tables
// live in guest RAM instead; backends read both through the same TableMemory shape.
import { FRAME_SIZE, type PhysicalMemory } from '../host/physical-memory.js';

/** Where a page-table builder reads, writes and allocates its 4 KiB tables (entries as u32 halves). */
export interface TableMemory {
  readU32(addr: number): number;
  writeU32(addr: number, value: number): void;
  /** A zeroed, 4 KiB aligned table of 4 KiB; returns its address in this memory. */
  allocTable(): number;
}

export class PhysicalTableMemory implements TableMemory {
  /** First frame of every run handed out. */
  private readonly runs: number[] = [];

  constructor(private readonly mem: PhysicalMemory) {}

  readU32(addr: number): number {
    return this.mem.readU32(addr);
  }

  writeU32(addr: number, value: number): void {
    this.mem.writeU32(addr, value); // straight into the run's bytes, no allocation
  }

  /**
   * A zeroed table of `bytes` (default one frame) aligned to its size. Frames come from allocRun,
   * which picks their numbers, so a table larger than a frame over-allocates to find an aligned start.
   */
  allocTable(bytes: number = FRAME_SIZE): number {
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
