// Conformance targets: where a fresh Process for each case comes from. `sim` is the embedded
// simulator; `native` is the real /dev/iommu through @viommu/native, when its addon loads and the
// device exists (a kernel with CONFIG_IOMMUFD_TEST for the selftest cases); `daemon` comes with the
// daemon package.

import { contractSkips, pendingOnSimulator, runScenarios, scenarios, type Scenario } from '@viommu/backend-mock';
import { createSimHost } from '@viommu/core';
import type { Process } from '@viommu/uapi';
import { tally, type CaseResult, type TargetRun } from './formats.js';

export const TARGETS = ['sim', 'native', 'daemon'] as const;
export type TargetName = (typeof TARGETS)[number];

export class TargetUnavailable extends Error {
  override readonly name = 'TargetUnavailable';
}

interface Target {
  spawn(): Process;
  /** Cases skipped on this target, with the reason. */
  readonly pending: ReadonlyMap<string, string>;
  dispose(): void;
}

async function openTarget(name: TargetName): Promise<Target> {
  if (name === 'sim') {
    const host = createSimHost();
    return { spawn: () => host.spawn(), pending: new Map([...pendingOnSimulator, ...contractSkips]), dispose: () => undefined };
  }
  if (name === 'native') {
    // Loaded by path so the harness does not depend on the optional addon being built.
    let mod: { openNativeProcess(opts?: { checkDevice?: string | false }): Process & { dispose(): void } };
    try {
      mod = (await import(new URL('../../../../packages/native/dist/index.js', import.meta.url).href)) as typeof mod;
    } catch (e) {
      throw new TargetUnavailable(`@viommu/native is not built (${e instanceof Error ? e.message : String(e)})`);
    }
    const opened: (Process & { dispose(): void })[] = [];
    let used = false;
    try {
      opened.push(mod.openNativeProcess());
    } catch (e) {
      throw new TargetUnavailable(`native: ${e instanceof Error ? e.message : String(e)}`);
    }
    return {
      // One process per case, as the kernel harness forks one child per case; the first one proved the device opens.
      spawn: () => {
        const p = opened.length === 1 && !used ? opened[0]! : mod.openNativeProcess();
        if (p !== opened[0]) opened.push(p);
        used = true;
        return p;
      },
      pending: contractSkips,
      dispose: () => opened.forEach((p) => p.dispose()),
    };
  }
  throw new TargetUnavailable('the daemon target needs @viommu/daemon, which has not landed yet');
}

export async function runTarget(name: TargetName, opts: { filter?: string; onCase?: (c: CaseResult, i: number, total: number) => void } = {}): Promise<TargetRun> {
  const target = await openTarget(name);
  const chosen: Scenario[] = scenarios.filter((s) => !opts.filter || s.name.includes(opts.filter));
  const cases: CaseResult[] = [];
  const t0 = performance.now();
  try {
    for (const s of chosen) {
      const t = performance.now();
      const report = await runScenarios([s], () => target.spawn(), target.pending);
      const o = report.results[0]!.outcome;
      const c: CaseResult = {
        name: s.name, suite: s.fixture, status: o.status, ms: performance.now() - t,
        ...(o.status === 'fail' ? { message: o.message } : o.status === 'skip' ? { message: o.reason } : {}),
      };
      cases.push(c);
      opts.onCase?.(c, cases.length, chosen.length);
    }
  } finally {
    target.dispose();
  }
  return tally(name, cases, performance.now() - t0);
}
