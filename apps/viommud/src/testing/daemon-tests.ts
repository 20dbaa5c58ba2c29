// What several daemon test files share: the addon (or why it is missing), and what a selftest
// scenario run through the daemon must give.
import { expect, it } from '@jest/globals';
import { contractSkips, forkCases, kernelSkips, pendingOnSimulator, scenarios, type Outcome } from '@viommu/backend-mock';
import { loadAddon, type NativeAddon } from '@viommu/native';
import type { DaemonProcess } from '@viommu/protocol';

/** @viommu/native's addon, or the reason it cannot be loaded here. */
export function addonOrReason(): { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string } {
  try {
    return { addon: loadAddon() };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

/** A scenario's outcome through the daemon: as in-process, except the fork cases skip (a client cannot fork). */
export function expectAsInProcess(name: string, outcome: Outcome): void {
  const reason = contractSkips.get(name) ?? (kernelSkips.has(name) ? 'kernel skip' : undefined);
  if (forkCases.has(name)) expect(outcome).toEqual({ status: 'skip', reason: expect.stringMatching(/needs fork and exit/) });
  else if (reason === undefined) expect(outcome).toEqual({ status: 'pass' });
  else expect(outcome.status).toBe('skip');
}

/** One test per selftest scenario, each on its own connection from `connect`; pending ones skip. */
export function selftestThroughDaemon(connect: () => Promise<DaemonProcess>): void {
  for (const s of scenarios) {
    const pending = pendingOnSimulator.get(s.name);
    if (pending !== undefined) {
      it.skip(`${s.name} — pending on the simulator: ${pending}`, () => {});
      continue;
    }
    it(s.name, async () => {
      const p = await connect();
      try {
        expectAsInProcess(s.name, await s.run(p));
      } finally {
        p.disconnect();
      }
    });
  }
}

/** The errno code `f` throws, or undefined. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}
