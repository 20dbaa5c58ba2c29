// Runs the port of the kernel's iommufd selftest on the simulator: one jest test per scenario.
// A case passes here only if it passes (or skips, where the kernel or the contract says it must).
import { describe, expect, it } from '@jest/globals';
import { createSimHost } from '@viommu/core';
import { failNthScenarios } from './fail-nth.js';
import { pendingOnSimulator } from './pending.js';
import { contractSkips, kernelSkips, scenarios } from './scenarios.js';

describe('the scenario list', () => {
  it('has every TEST_F of iommufd.c once per variant (246, as the kernel harness counts)', () => {
    expect(scenarios.length).toBe(246);
    expect(new Set(scenarios.map((s) => s.name)).size).toBe(246);
  });

  it('names only existing scenarios in its skip and pending tables', () => {
    const names = new Set(scenarios.map((s) => s.name));
    for (const n of [...kernelSkips, ...contractSkips.keys(), ...pendingOnSimulator.keys()]) expect(names).toContain(n);
  });
});

describe('iommufd selftest on the simulator', () => {
  for (const s of scenarios) {
    const pending = pendingOnSimulator.get(s.name);
    if (pending !== undefined) {
      it.skip(`${s.name} — pending: ${pending}`, () => {});
      continue;
    }
    it(s.name, async () => {
      const outcome = await s.run(createSimHost().spawn());
      const reason = contractSkips.get(s.name) ?? (kernelSkips.has(s.name) ? 'skipped by the kernel too' : undefined);
      if (reason === undefined) expect(outcome).toEqual({ status: 'pass' });
      else expect(outcome.status).toBe('skip');
    });
  }
});

describe('iommufd fail_nth on the simulator', () => {
  for (const s of failNthScenarios) {
    it(s.name, async () => {
      const host = createSimHost();
      const control = {
        enable: (n: number) => host.failNth.arm(n),
        disable: () => {
          const fired = host.failNth.fired;
          host.failNth.disarm();
          return fired;
        },
      };
      const outcome = await s.run(host.spawn(), control);
      expect(outcome.status).toBe('pass');
    });
  }
});

describe('the pending table', () => {
  it('holds only cases that still do not pass on the simulator (drop an entry once its feature lands)', async () => {
    const nowPassing: string[] = [];
    for (const s of scenarios) {
      if (!pendingOnSimulator.has(s.name)) continue;
      if ((await s.run(createSimHost().spawn())).status === 'pass') nowPassing.push(s.name);
    }
    expect(nowPassing).toEqual([]);
  });
});
