// Runs the port of the kernel's iommufd selftest on the simulator: one jest test per scenario.
// A case passes here only if it passes (or skips, where the kernel or the contract says it must).
import { describe, expect, it } from '@jest/globals';
import * as core from '@viommu/core';
import { IOMMU_IOAS_ALLOC, IOMMU_TEST_CMD, IOMMU_TEST_OP_MOCK_DOMAIN, O_RDWR, iommu_ioas_alloc, iommu_test_cmd_mock_domain, type Process } from '@viommu/uapi';
import { failNthScenarios } from './fail-nth.js';
import { pendingOnSimulator } from './pending.js';
import { contractSkips, kernelSkips, scenarios } from './scenarios.js';

type SimHostFactory = () => { spawn(): Process; failNth: { arm(n: number): void; disarm(): void; readonly fired: boolean } };
// createSimHost lands with the core's object model; until then every case is reported pending.
const createSimHost = (core as Record<string, unknown>)['createSimHost'] as SimHostFactory | undefined;

/** Whether the simulator answers IOMMU_TEST_CMD at all (the mock driver and the test command are registered). */
function testCmdWorks(): boolean {
  if (!createSimHost) return false;
  try {
    const p = createSimHost().spawn();
    const fd = p.open('/dev/iommu', O_RDWR);
    const alloc = iommu_ioas_alloc.encode({});
    p.ioctl(fd, IOMMU_IOAS_ALLOC, alloc);
    p.ioctl(fd, IOMMU_TEST_CMD, iommu_test_cmd_mock_domain.encode({ op: IOMMU_TEST_OP_MOCK_DOMAIN, id: iommu_ioas_alloc.get(alloc, 'out_ioas_id') }));
    p.close(fd);
    return true;
  } catch {
    return false;
  }
}

const missing = !createSimHost
  ? 'createSimHost() is not in @viommu/core yet'
  : !testCmdWorks()
    ? 'IOMMU_TEST_CMD MOCK_DOMAIN does not work on the simulator yet (core src/selftest/)'
    : undefined;

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
    const pending = pendingOnSimulator.get(s.name) ?? missing;
    if (pending !== undefined) {
      it.skip(`${s.name} — pending: ${pending}`, () => {});
      continue;
    }
    it(s.name, async () => {
      const outcome = await s.run(createSimHost!().spawn());
      const reason = contractSkips.get(s.name) ?? (kernelSkips.has(s.name) ? 'skipped by the kernel too' : undefined);
      if (reason === undefined) expect(outcome).toEqual({ status: 'pass' });
      else expect(outcome.status).toBe('skip');
    });
  }
});

describe('iommufd fail_nth on the simulator', () => {
  for (const s of failNthScenarios) {
    if (missing !== undefined) {
      it.skip(`${s.name} — pending: ${missing}`, () => {});
      continue;
    }
    it(s.name, async () => {
      const host = createSimHost!();
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
