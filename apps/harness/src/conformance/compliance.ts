// The compliance flows as conformance cases: every vendor backend's compliance kits (its
// `./compliance-kit` entry, the same kits its own jest test runs) turned into cases by
// @viommu/backend-compliance's complianceCases and run here, in-process, one after another. A case
// is named `<vendor>/<kit> compliance: <group> › <test>`, exactly the jest name of that test.

import { complianceKits as amdKits } from '@viommu/backend-amd-vi/compliance-kit';
import { complianceCases, type AnyComplianceKit, type ComplianceCase } from '@viommu/backend-compliance/testing';
import { complianceKits as mockKits } from '@viommu/backend-mock/compliance-kit';
import { complianceKits as smmuv3Kits } from '@viommu/backend-smmuv3-cmdqv/compliance-kit';
import { complianceKits as vtdKits } from '@viommu/backend-vtd/compliance-kit';
import type { CaseResult } from './formats.js';

export interface ComplianceVendor {
  /** The workload's vendor id (`viommu demo --vendor`), the first part of its case names. */
  readonly id: string;
  /** The backend's kits, in the order its own compliance test registers them. */
  readonly kits: readonly AnyComplianceKit[];
}

export const COMPLIANCE_VENDORS: readonly ComplianceVendor[] = [
  { id: 'mock', kits: mockKits },
  { id: 'smmuv3', kits: smmuv3Kits },
  { id: 'vtd', kits: vtdKits },
  { id: 'amd', kits: amdKits },
];

export function complianceSuiteName(v: ComplianceVendor): string {
  return `compliance.${v.id}`;
}

/** Lines of a failure's message a case result keeps (the stack's first frames after it). */
const MESSAGE_LINES = 12;

function messageOf(e: unknown): string {
  const text = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  return text.split('\n').slice(0, MESSAGE_LINES).join('\n');
}

/** The vendor's case names as a run would give them (what a progress count needs up front). */
export function complianceCaseNames(vendor: ComplianceVendor, filter?: string): string[] {
  try {
    return vendor.kits.flatMap((kit) => complianceCases(kit)).map((c) => `${vendor.id}/${c.name}`).filter((n) => filter === undefined || n.includes(filter));
  } catch {
    return [`${vendor.id}/(compliance suite)`];
  }
}

export interface VendorRunOptions {
  /** Only cases whose full name (`<vendor>/<name>`) contains this. */
  readonly filter?: string;
  /** List the cases as skipped with this reason instead of running them. */
  readonly listOnly?: string;
  readonly onCase?: (c: CaseResult) => void;
}

/**
 * Runs (or, with `listOnly`, only lists) one vendor's compliance cases. A kit the suite refuses
 * before any case exists (e.g. both an invalidation and a refresh) is one failed case
 * `<vendor>/(compliance suite)`, so the vendor does not silently drop out of the count.
 */
export async function runComplianceVendor(vendor: ComplianceVendor, opts: VendorRunOptions = {}): Promise<CaseResult[]> {
  const suite = complianceSuiteName(vendor);
  const out: CaseResult[] = [];
  const add = (c: CaseResult) => {
    out.push(c);
    opts.onCase?.(c);
  };
  let cases: ComplianceCase[];
  try {
    cases = vendor.kits.flatMap((kit) => complianceCases(kit));
  } catch (e) {
    add({ name: `${vendor.id}/(compliance suite)`, suite, status: 'fail', message: messageOf(e), ms: 0 });
    return out;
  }
  for (const c of cases) {
    const name = `${vendor.id}/${c.name}`;
    if (opts.filter !== undefined && !name.includes(opts.filter)) continue;
    if (opts.listOnly !== undefined) {
      add({ name, suite, status: 'skip', message: opts.listOnly, ms: 0 });
      continue;
    }
    const t = performance.now();
    try {
      await c.run();
      add({ name, suite, status: 'pass', ms: performance.now() - t });
    } catch (e) {
      add({ name, suite, status: 'fail', message: messageOf(e), ms: performance.now() - t });
    }
  }
  return out;
}
