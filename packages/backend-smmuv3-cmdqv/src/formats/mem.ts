// Allocation-free 32-bit stores into PhysicalMemory for the model's hot paths (queue entries,
// event records): core's writeU32 builds a buffer per call.
// TODO(core): PhysicalMemory.writeU32 could take this fast path itself.
import { FRAME_SIZE, type PhysicalMemory } from '@viommu/core';

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
