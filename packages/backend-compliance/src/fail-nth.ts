// A fail_nth sweep (tools/testing/selftests/iommu/iommufd_fail_nth.c, in spirit) over the nested
// flow and the calls that follow it: for N = 1, 2, ... make the Nth failure point fail, run the
// scenario, and require that the failure surfaced as an errno, that exiting the process released
// every object, and that every physical frame the run took is back once the devices are unplugged
// (save the process's own memory). Stops at the first N the scenario passes untouched and returns it.

import { isErrnoError } from '@viommu/uapi';
import type { SimHost, SimProcess } from '@viommu/core';
import { ClientError } from '@viommu/client';
import { buildFlow, kitHooks } from './flow.js';
import type { AnyComplianceKit } from './kit.js';

/** What a sweep checks after each run; throws (a ComplianceFailure) when something is left behind. */
export type ReleasedCheck = (host: SimHost, leftoverFrames: number) => void;

/** The scenario swept: the flow, then a vEVENTQ, an invalidation (or the kit's refresh), HW queues, and teardown (vIOMMU parts only with one). */
async function scenario(kit: AnyComplianceKit, onSpawn: (host: SimHost, p: SimProcess) => void): Promise<void> {
  const f = buildFlow(kit, { onSpawn });
  if (f.viommu && kit.viommu !== 'none' && kit.vevent) f.viommu.allocVeventq(kit.vevent.type, 4);
  const { invalidation: inv, refresh } = kitHooks(kit);
  if (inv) {
    const batch = { type: inv.type, entryLen: inv.entryLen, entries: inv.flushAll(f) };
    const r = inv.target === 'viommu' ? f.viommu!.invalidate(batch) : f.nested.invalidate(batch);
    if (!r.ok) throw r.error;
  } else {
    // A vendor without a guest invalidation: its refresh (a new nested HWPT, a replace) instead.
    refresh!(f);
  }
  if (f.viommu && kit.viommu !== 'none' && kit.hwQueue) {
    for (let i = 0; i < kit.hwQueue.count; i++) {
      const ipa = f.guest.alloc(kit.hwQueue.length, kit.hwQueue.length);
      f.viommu.allocHwQueue({ type: kit.hwQueue.type, index: i, iova: BigInt(ipa), length: kit.hwQueue.length });
    }
  }
  await f.host.device(f.deviceName).dma.read(BigInt(f.dataIova), 8);
  f.iommufd.teardown();
}

/**
 * Frames the host's drivers free when its devices are unplugged without any process having run
 * (per-device state made at probe, e.g. a VT-d context table): the sweep's baseline is taken before
 * the process, so these come off it.
 */
function framesFreedByUnplug(kit: AnyComplianceKit): number {
  const { host } = kit.createHost();
  const before = host.physical.allocatedFrameCount;
  for (const name of [...host.devices.keys()]) host.removeDevice(name);
  return before - host.physical.allocatedFrameCount;
}

export async function failNthSweep(kit: AnyComplianceKit, check: ReleasedCheck, limit = 5000): Promise<number> {
  const unplugged = framesFreedByUnplug(kit);
  for (let n = 1; n < limit; n++) {
    let host: SimHost | undefined;
    let proc: SimProcess | undefined;
    let baseline = 0;
    try {
      await scenario(kit, (h, p) => {
        host = h;
        proc = p;
        baseline = h.physical.allocatedFrameCount;
        h.failNth.arm(n);
      });
    } catch (e) {
      const errno = e instanceof ClientError || isErrnoError(e) || (e instanceof AggregateError && e.errors.every((x) => x instanceof ClientError));
      if (!errno || !host?.failNth.fired) throw e;
    }
    if (!host || !proc) throw new Error('the scenario never spawned a process');
    const fired = host.failNth.fired;
    host.failNth.disarm();
    const own = proc.memory.list().reduce((a, m) => a + Math.ceil(m.length / 4096), 0);
    proc.exit();
    // Unplug the devices too: per-device driver state (a master's CD table) is freed on release.
    for (const name of [...host.devices.keys()]) host.removeDevice(name);
    check(host, host.physical.allocatedFrameCount - (baseline - unplugged) - own);
    if (!fired) return n;
  }
  throw new Error(`fail_nth sweep did not converge in ${limit} runs`);
}
