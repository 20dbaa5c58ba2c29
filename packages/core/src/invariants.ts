// The invariant checker tests call after every step (and the fuzz test after every call): the
// object model's bookkeeping is consistent, nothing is half-created, and after teardown nothing
// is left behind. Throws an Error naming the first broken invariant.

import { IommufdDevice } from './device/device.js';
import type { SimHost } from './host/sim-host.js';
import { HwptPaging } from './hwpt/hwpt.js';
import { runHasPins } from './ioas/pin-counts.js';
import { Ioas } from './iommufd/ioas.js';
import { OBJ_NAMES, type IommufdObject } from './object/object.js';

function fail(msg: string): never {
  throw new Error(`invariant: ${msg}`);
}

/** Consistency of every live context of `host`. */
export function checkInvariants(host: SimHost): void {
  for (const ctx of host.contexts) {
    const objs = ctx.objects.objects();
    const liveSet = new Set(objs);
    if (ctx.objects.reservedCount() !== 0) fail(`context ${ctx.id}: ${ctx.objects.reservedCount()} object(s) reserved but never finalized or aborted`);
    // References the core can account for; holders in other families only add to them.
    const seen = new Map<IommufdObject, number>();
    const add = (o: IommufdObject, n = 1) => seen.set(o, (seen.get(o) ?? 0) + n);
    for (const o of objs) {
      if (o.users < 1) fail(`${OBJ_NAMES[o.type]} ${o.id} has users ${o.users}`);
      if (o instanceof HwptPaging) {
        add(o.ioas);
        if (!o.inIopt || !o.ioas.hwpts.includes(o)) fail(`HWPT_PAGING ${o.id} is not in its IOAS`);
        if (o.fault) add(o.fault);
        if (o.autoDomain && o.users === 1) fail(`automatic HWPT_PAGING ${o.id} has no device but still exists`);
      } else if (o instanceof IommufdDevice) {
        if (o.sim.bound !== o) fail(`DEVICE ${o.id} is not its device's binding`);
        add(o, o.attached.size + 1); // each attachment, and the binder
        for (const h of o.attached.values()) {
          add(h);
          if (!liveSet.has(h)) fail(`DEVICE ${o.id} is attached to a dead HWPT ${h.id}`);
        }
      } else if (o instanceof Ioas) {
        for (const h of o.hwpts) if (!liveSet.has(h)) fail(`IOAS ${o.id} lists a dead HWPT ${h.id}`);
        try {
          o.iopt.checkInvariants();
        } catch (e) {
          fail(`IOAS ${o.id}: ${(e as Error).message}`);
        }
      }
    }
    for (const [o, n] of seen) {
      if (o.users < 1 + n) fail(`${OBJ_NAMES[o.type]} ${o.id} has users ${o.users}, but ${n} holder(s) besides the table`);
    }
  }
}

/** After every process using `host` has exited: no context, no binding, no leak. */
export function checkAllReleased(host: SimHost): void {
  if (host.contexts.size !== 0) fail(`${host.contexts.size} iommufd context(s) still alive`);
  if (host.leaks.length !== 0) fail(`context release leaked ${host.leaks.map((o) => `${OBJ_NAMES[o.type]} ${o.id} (users ${o.users})`).join(', ')}`);
  for (const d of host.devices.values()) if (d.bound) fail(`device ${d.name} is still bound`);
  // Every pin went with its io page table or access (adopted runs too: a pin keeps one alive, ADR 0193).
  for (const run of host.physical.liveRuns()) {
    if (runHasPins(run)) fail(`frames ${run.firstFrame}..${run.firstFrame + run.frames - 1}${run.adopted ? ' (adopted)' : ''} are still pinned`);
  }
}
