// Per-call cost of a large user memory region through viommud: mirrored (ADR 0120) against shared
// through a memfd (SCM_RIGHTS, ADR 0129), with a 64 MiB region alive in the session. Baseline in the
// same run: the same call from a session with no big region, whose client writes as much into a
// buffer of its own (so the cache misses after a big write are in the baseline too). Cases: nothing
// changed between calls, and the client writing 1 MiB or 8 MiB of the region before each call (a
// VMM filling guest RAM). On the simulator the shared region's pages are the memfd's (ADR 0193): its
// cost should stay at the baseline whatever the client wrote; mirrored memory costs a compare of the
// whole region and a copy of what changed. Medians (the machine is shared: means follow its load).
// Bounded by count. Prints per-call microseconds and ratios; writes bench-results/shared-memory.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectDaemonProcess, type DaemonProcess } from '@viommu/protocol';
import { IOMMU_DESTROY, IOMMU_IOAS_ALLOC, iommu_destroy, iommu_ioas_alloc } from '@viommu/uapi';
import { APP_DIR, startDaemon } from '../spawn-daemon.js';

const REGION = 64 << 20;
const CASES = [
  { name: 'unchanged', touch: 0, calls: 60 },
  { name: 'wrote 1 MiB', touch: 1 << 20, calls: 30 },
  { name: 'wrote 8 MiB', touch: 8 << 20, calls: 12 },
];

/** One call = IOAS_ALLOC + DESTROY (two round trips, each syncing memory); returns the median µs per round trip. */
function measure(p: DaemonProcess, fd: number, region: Uint8Array | undefined, touch: number, calls: number, seed: number): number {
  const arg = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size, flags: 0, out_ioas_id: 0 });
  const destroy = iommu_destroy.encode({ size: iommu_destroy.size, id: 0 });
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    // The write is the client's own work, outside the timed part; its cost is the sync that follows.
    if (region && touch) region.fill((seed + i) & 0xff, (i * touch) % (REGION - touch), ((i * touch) % (REGION - touch)) + touch);
    const t0 = process.hrtime.bigint();
    p.ioctl(fd, IOMMU_IOAS_ALLOC, arg);
    iommu_destroy.set(destroy, 'id', iommu_ioas_alloc.get(arg, 'out_ioas_id'));
    p.ioctl(fd, IOMMU_DESTROY, destroy);
    times.push(Number(process.hrtime.bigint() - t0));
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]! / 2 / 1000;
}

async function main(): Promise<void> {
  let bridge;
  try {
    bridge = (await import('@viommu/native')).loadAddon();
  } catch (e) {
    console.log(`shared-memory bench skipped: ${(e as Error).message}`);
    return;
  }
  const daemon = await startDaemon();
  const rows: Array<Record<string, number | string>> = [];
  try {
    // All three with the addon, so all make their calls on the same channel (ADR 0131): only memory differs.
    const base = await connectDaemonProcess(daemon.socketPath, { clientName: 'bench-baseline', fdBridge: bridge, sharedMemoryMin: false });
    const mirrored = await connectDaemonProcess(daemon.socketPath, { clientName: 'bench-mirrored', fdBridge: bridge, sharedMemoryMin: false });
    const shared = await connectDaemonProcess(daemon.socketPath, { clientName: 'bench-shared', fdBridge: bridge, sharedMemoryMin: 1 << 20 });
    const fds = [base, mirrored, shared].map((p) => p.open('/dev/iommu'));
    const mRegion = mirrored.memory.alloc(REGION).bytes;
    const sRegion = shared.memory.alloc(REGION).bytes;
    const bRegion = new Uint8Array(REGION); // the baseline client's own memory, not the daemon's
    // Every page touched once first, as a guest's RAM soon is: the kernel allocating a fresh memfd
    // page on the client's first write costs the next call about 2 ms (measured), whoever shares it.
    for (const r of [mRegion, sRegion, bRegion]) r.fill(0);
    measure(base, fds[0]!, undefined, 0, 20, 0); // warm-up
    measure(mirrored, fds[1]!, mRegion, 0, 5, 0);
    measure(shared, fds[2]!, sRegion, 0, 5, 0);
    for (const c of CASES) {
      const b = measure(base, fds[0]!, bRegion, c.touch, c.calls, 1);
      const m = measure(mirrored, fds[1]!, mRegion, c.touch, c.calls, 2);
      const s = measure(shared, fds[2]!, sRegion, c.touch, c.calls, 3);
      const row = { case: c.name, baselineUs: +b.toFixed(1), mirroredUs: +m.toFixed(1), sharedUs: +s.toFixed(1), mirroredOverShared: +(m / s).toFixed(2), sharedOverBaseline: +(s / b).toFixed(2) };
      rows.push(row);
      console.log(
        `${c.name.padEnd(12)} baseline ${b.toFixed(1)} us  mirrored ${m.toFixed(1)} us  shared ${s.toFixed(1)} us  ` +
          `mirrored/shared ${row.mirroredOverShared}  shared/baseline ${row.sharedOverBaseline}`,
      );
    }
    for (const p of [base, mirrored, shared]) p.disconnect();
  } finally {
    await daemon.stop();
  }
  const dir = join(APP_DIR, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'shared-memory.json'), JSON.stringify({ date: new Date().toISOString(), regionBytes: REGION, rows }, null, 2));
}

await main();
