// A fail_nth sweep (tools/testing/selftests/iommu/iommufd_fail_nth.c, in spirit) over the nested
// flow: for N = 1, 2, ... make the Nth failure point fail, run the flow, and require that the
// failure surfaced as an errno and that exiting the process released everything. Stops at the
// first N the flow passes untouched and returns it.

import { isErrnoError } from '@viommu/uapi';
import type { SimHost } from '@viommu/core';
import { ClientError } from '@viommu/client';
import { buildFlow } from './flow.js';
import type { ComplianceKit } from './kit.js';

type Released = (host: SimHost) => void;

export function failNthSweep(kit: ComplianceKit, expectReleased: Released, limit = 5000): number {
  for (let n = 1; n < limit; n++) {
    let host: SimHost | undefined;
    let exit: (() => void) | undefined;
    try {
      buildFlow(kit, {
        onSpawn: (h, p) => {
          host = h;
          exit = () => p.exit();
          h.failNth.arm(n);
        },
      });
    } catch (e) {
      const errno = e instanceof ClientError || isErrnoError(e);
      if (!errno || !host?.failNth.fired) throw e;
    }
    if (!host) throw new Error('buildFlow never spawned a process');
    const fired = host.failNth.fired;
    host.failNth.disarm();
    exit?.();
    expectReleased(host);
    if (!fired) return n;
  }
  throw new Error(`fail_nth sweep did not converge in ${limit} runs`);
}
