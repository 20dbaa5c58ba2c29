// Conformance targets: where a fresh Process for each case comes from. `sim` is the embedded
// simulator; `native` is the real /dev/iommu through @viommu/native, when its addon loads and the
// device exists (a kernel with CONFIG_IOMMUFD_TEST for the selftest cases); `daemon` is viommud
// (a child started here on a temp socket, or --socket for one already running), one connection per
// case.
//
// The scenario set: the kernel selftest port (@viommu/backend-mock's `scenarios`) and the
// compliance flows of every vendor backend (./compliance.ts), run in-process.

import { contractSkips, forkCases, pendingOnSimulator, runScenarios, scenarios, type Outcome, type Scenario } from '@viommu/backend-mock';
import { createSimHost } from '@viommu/core';
import { connectDaemonProcess, type DaemonProcess } from '@viommu/protocol';
import type { Process } from '@viommu/uapi';
import { COMPLIANCE_VENDORS, complianceCaseNames, runComplianceVendor } from './compliance.js';
import { DaemonUnavailable, existingDaemon, startDaemon, type DaemonHandle } from './daemon.js';
import { tally, type CaseResult, type TargetRun } from './formats.js';

export const TARGETS = ['sim', 'native', 'daemon'] as const;
export type TargetName = (typeof TARGETS)[number];

export const CASE_SETS = ['all', 'selftest', 'compliance'] as const;
export type CaseSet = (typeof CASE_SETS)[number];

export class TargetUnavailable extends Error {
  override readonly name = 'TargetUnavailable';
}

/** Selftest cases a target does not run, with the reason (the same maps its own tests use). */
export function pendingOn(name: TargetName): ReadonlyMap<string, string> {
  if (name === 'sim') return new Map([...pendingOnSimulator, ...contractSkips]);
  if (name === 'native') return contractSkips;
  // Through the socket: what the simulator cannot do yet, plus the fork cases (the daemon's Process
  // offers no fork/exit, so they would skip at run time anyway; apps/viommud's tests expect that).
  return new Map([...pendingOnSimulator, ...contractSkips, ...forkCases]);
}

/** Why a target cannot run the compliance flows, or undefined when it can. */
export function complianceUnavailableOn(name: TargetName): string | undefined {
  if (name === 'sim') return undefined;
  // The kits build their own simulated hosts with the vendor's IOMMU models (kit.createHost), drive
  // device DMA and check contexts and leaks on that host in-process.
  if (name === 'daemon') return "the compliance kits need the vendor IOMMU model in the caller's own simulated host (kit.createHost, device DMA, leak checks); viommud's sim host has only the selftest mock and is in another process";
  return 'the compliance kits build simulated hosts with the vendor IOMMU models; there is none on the real kernel';
}

interface Target {
  spawn(): Process | Promise<Process>;
  /** Ends a case's process (connections are closed, objects torn down). */
  release(p: Process): void;
  dispose(): Promise<void>;
}

export interface TargetOptions {
  /** daemon: use the viommud on this socket instead of starting one. */
  readonly socket?: string;
  /** daemon: a shared simulated host for every connection instead of one per connection. */
  readonly sharedHost?: boolean;
}

async function openTarget(name: TargetName, o: TargetOptions): Promise<Target> {
  if (name === 'sim') {
    // A fresh host per case, as backend-mock's own tests give each scenario: on one shared host the
    // physical layout earlier cases leave changes huge-page alignment (4 dirty-tracking cases fail).
    return { spawn: () => createSimHost().spawn(), release: () => undefined, dispose: async () => undefined };
  }
  if (name === 'native') {
    // Loaded by path so the harness does not depend on the optional addon being built.
    let mod: { openNativeProcess(opts?: { checkDevice?: string | false }): Process & { dispose(): void } };
    try {
      mod = (await import(new URL('../../../../packages/native/dist/index.js', import.meta.url).href)) as typeof mod;
    } catch (e) {
      throw new TargetUnavailable(`@viommu/native is not built (${e instanceof Error ? e.message : String(e)})`);
    }
    let first: (Process & { dispose(): void }) | undefined;
    try {
      first = mod.openNativeProcess();
    } catch (e) {
      throw new TargetUnavailable(`native: ${e instanceof Error ? e.message : String(e)}`);
    }
    const open = new Set<Process & { dispose(): void }>([first]);
    return {
      // One process per case, as the kernel harness forks one child per case; the first one proved the device opens.
      spawn: () => {
        const p = first ?? mod.openNativeProcess();
        first = undefined;
        open.add(p);
        return p;
      },
      release: (p) => {
        (p as Process & { dispose(): void }).dispose();
        open.delete(p as Process & { dispose(): void });
      },
      dispose: async () => open.forEach((p) => p.dispose()),
    };
  }
  let daemon: DaemonHandle;
  try {
    // A host per connection by default: each case then starts from a fresh machine, as in-process.
    daemon = o.socket !== undefined ? existingDaemon(o.socket) : await startDaemon({ perClientHost: !o.sharedHost });
  } catch (e) {
    if (e instanceof DaemonUnavailable) throw new TargetUnavailable(`daemon: ${e.message}`);
    throw e;
  }
  const open = new Set<DaemonProcess>();
  try {
    // One connection up front proves the daemon answers (and that it is a viommud).
    const probe = await connectDaemonProcess(daemon.socketPath, { clientName: 'viommu-conformance' });
    probe.disconnect();
  } catch (e) {
    await daemon.stop();
    throw new TargetUnavailable(`daemon at ${daemon.socketPath} does not answer: ${e instanceof Error ? e.message : String(e)}`);
  }
  return {
    spawn: async () => {
      const p = await connectDaemonProcess(daemon.socketPath, { clientName: 'viommu-conformance' });
      open.add(p);
      return p;
    },
    release: (p) => {
      (p as DaemonProcess).disconnect();
      open.delete(p as DaemonProcess);
    },
    dispose: async () => {
      for (const p of open) p.disconnect();
      open.clear();
      await daemon.stop();
    },
  };
}

export interface RunOptions extends TargetOptions {
  readonly filter?: string;
  readonly cases?: CaseSet;
  /**
   * Selftest cases to skip on top of the target's own pending ones, and a reason to skip the
   * compliance cases; --compare passes the other target's, so both run the same cases.
   */
  readonly alsoSkip?: { readonly selftest: ReadonlyMap<string, string>; readonly compliance?: string };
  readonly onCase?: (c: CaseResult, i: number, total: number) => void;
}

export async function runTarget(name: TargetName, opts: RunOptions = {}): Promise<TargetRun> {
  const set = opts.cases ?? 'all';
  const matches = (n: string) => !opts.filter || n.includes(opts.filter);
  const chosen: Scenario[] = set === 'compliance' ? [] : scenarios.filter((s) => matches(s.name));
  const vendors = set === 'selftest' ? [] : COMPLIANCE_VENDORS;
  const pending = new Map([...pendingOn(name), ...(opts.alsoSkip?.selftest ?? [])]);
  const complianceSkip = complianceUnavailableOn(name) ?? opts.alsoSkip?.compliance;
  const cases: CaseResult[] = [];
  const total = chosen.length + vendors.reduce((n, v) => n + complianceCaseNames(v, opts.filter).length, 0);
  const add = (c: CaseResult) => {
    cases.push(c);
    opts.onCase?.(c, cases.length, Math.max(total, cases.length));
  };
  const t0 = performance.now();
  const target = await openTarget(name, opts);
  try {
    for (const s of chosen) {
      const t = performance.now();
      let proc: Process | undefined;
      let outcome: Outcome;
      try {
        const report = await runScenarios([s], async () => (proc = await target.spawn()), pending);
        outcome = report.results[0]!.outcome;
      } finally {
        if (proc) target.release(proc);
      }
      add({
        name: s.name, suite: s.fixture, status: outcome.status, ms: performance.now() - t,
        ...(outcome.status === 'fail' ? { message: outcome.message } : outcome.status === 'skip' ? { message: outcome.reason } : {}),
      });
    }
  } finally {
    await target.dispose();
  }
  // The compliance flows run here, in-process, on the simulator (each kit builds its own simulated
  // host with the vendor's model); on the other targets they are listed as skipped.
  for (const vendor of vendors) {
    await runComplianceVendor(vendor, { ...(opts.filter !== undefined ? { filter: opts.filter } : {}), ...(complianceSkip !== undefined ? { listOnly: complianceSkip } : {}), onCase: add });
  }
  return tally(name, cases, performance.now() - t0);
}
