// A tiny kselftest-harness in our words: fixtures with variants, TEST_F cases expanded once per
// variant, and outcomes (pass / skip with reason / fail with message) instead of a process exit code.
import type { Process } from '@viommu/uapi';

export type Outcome =
  | { readonly status: 'pass' }
  | { readonly status: 'skip'; readonly reason: string }
  | { readonly status: 'fail'; readonly message: string };

/** ASSERT_* / EXPECT_* failing: the case stops and is reported failed with this message. */
export class CaseFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaseFailure';
  }
}

/** SKIP(): the case stops and is reported skipped with this reason (as kselftest does). */
export class CaseSkip extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CaseSkip';
  }
}

/**
 * A fixture (FIXTURE + FIXTURE_VARIANT + FIXTURE_SETUP/TEARDOWN). `Self` is the per-case state the
 * C code calls `self`; setup builds it on a process, teardown runs after the case even when it failed.
 */
export interface Fixture<Self, Variant> {
  readonly name: string;
  /** FIXTURE_VARIANT_ADD entries in the C file's order; a fixture without variants has one named ''. */
  readonly variants: ReadonlyArray<readonly [string, Variant]>;
  setup(process: Process, variant: Variant): Self | Promise<Self>;
  teardown(self: Self, variant: Variant): void | Promise<void>;
}

export interface Scenario {
  /** `fixture.variant.case`, as the kselftest harness prints it (`fixture.case` without variants). */
  readonly name: string;
  readonly fixture: string;
  readonly variant: string;
  readonly test: string;
  run(process: Process): Promise<Outcome>;
}

type Body<Self, Variant> = (self: Self, variant: Variant) => void | Promise<void>;

function describeError(e: unknown): string {
  if (e instanceof CaseFailure) return e.message;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${typeof code === 'string' ? `unexpected ${code}: ` : ''}${e.message}`;
  }
  return String(e);
}

/** TEST_F: one scenario per variant of the fixture. */
export function testF<Self, Variant>(fixture: Fixture<Self, Variant>, test: string, body: Body<Self, Variant>): Scenario[] {
  return fixture.variants.map(([variant, v]) => ({
    name: variant ? `${fixture.name}.${variant}.${test}` : `${fixture.name}.${test}`,
    fixture: fixture.name,
    variant,
    test,
    async run(process: Process): Promise<Outcome> {
      let self: Self;
      try {
        self = await fixture.setup(process, v);
      } catch (e) {
        if (e instanceof CaseSkip) return { status: 'skip', reason: e.reason };
        return { status: 'fail', message: `setup: ${describeError(e)}` };
      }
      let outcome: Outcome = { status: 'pass' };
      try {
        await body(self, v);
      } catch (e) {
        outcome = e instanceof CaseSkip ? { status: 'skip', reason: e.reason } : { status: 'fail', message: describeError(e) };
      }
      try {
        await fixture.teardown(self, v);
      } catch (e) {
        if (outcome.status !== 'fail') outcome = { status: 'fail', message: `teardown: ${describeError(e)}` };
      }
      return outcome;
    },
  }));
}

export interface RunReport {
  readonly results: ReadonlyArray<{ readonly scenario: Scenario; readonly outcome: Outcome }>;
  readonly passed: number;
  readonly skipped: number;
  readonly failed: number;
}

/**
 * Runs scenarios one after another, each on a fresh process from `spawn` (the kernel harness forks
 * one child per case). `pending` maps a scenario name to the reason it is skipped on this target.
 */
export async function runScenarios(
  scenarios: readonly Scenario[],
  spawn: () => Process | Promise<Process>,
  pending: ReadonlyMap<string, string> = new Map(),
): Promise<RunReport> {
  const results: Array<{ scenario: Scenario; outcome: Outcome }> = [];
  for (const scenario of scenarios) {
    const reason = pending.get(scenario.name);
    const outcome: Outcome = reason !== undefined ? { status: 'skip', reason } : await scenario.run(await spawn());
    results.push({ scenario, outcome });
  }
  const count = (s: Outcome['status']) => results.filter((r) => r.outcome.status === s).length;
  return { results, passed: count('pass'), skipped: count('skip'), failed: count('fail') };
}
