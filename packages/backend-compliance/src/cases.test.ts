// The cases as data (what `viommu conformance` runs without jest) and their assertions.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import {
  CASE_SEPARATOR, ComplianceFailure, complianceCases, deepEqual, expectEqual, expectMatch, expectRejects, expectWithin, selftestMockKit, show,
  type ComplianceKit,
} from './testing.js';

/** What a case threw, or undefined when it passed. */
async function outcome(run: () => void | Promise<void>): Promise<unknown> {
  try {
    await run();
    return undefined;
  } catch (e) {
    return e;
  }
}

describe('the assertions', () => {
  it('compare structurally as toEqual does (undefined fields absent, bytes by value, bigints exactly)', () => {
    expect(deepEqual({ ok: true, handled: 2, error: undefined }, { ok: true, handled: 2 })).toBe(true);
    expect(deepEqual({ ok: true, handled: 2 }, { ok: true, handled: 3 })).toBe(false);
    expect(deepEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(deepEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(deepEqual(new Uint8Array([1]), [1])).toBe(false);
    expect(deepEqual({ c: 1n }, { c: 1n })).toBe(true);
    expect(deepEqual({ c: 1n }, { c: 1 })).toBe(false);
    expect(deepEqual([[3, 1]], [[3, 1]])).toBe(true);
  });

  it('fail with what was checked, what was expected and what came', async () => {
    expect(() => expectEqual({ ok: false, handled: 1 }, { ok: true, handled: 2 }, 'HWPT_INVALIDATE')).toThrow(
      new ComplianceFailure('HWPT_INVALIDATE: expected { ok: true, handled: 2 }, got { ok: false, handled: 1 }'),
    );
    expect(() => expectMatch({ kind: 'lost', count: 1 }, { kind: 'lost', count: 2 }, 'record')).toThrow('record: expected a match of { kind: "lost", count: 2 }, got { kind: "lost", count: 1 }');
    expect(() => expectWithin(9, { min: 0, max: 8 }, 'handled')).toThrow('handled: expected >= 0 and <= 8, got 9');
    expect(show(new Uint8Array([0xde, 0xad]))).toBe('<de ad>');
    expect(show(0x7n)).toBe('0x7n');
    const err = Object.assign(new Error('no'), { code: 'EIO' });
    expect(show(err)).toBe('Error EIO: no');
    await expect(expectRejects(Promise.reject(err), 'EFAULT', 'DMA')).rejects.toThrow('DMA: expected a rejection with EFAULT, got Error EIO: no');
    await expect(expectRejects(Promise.resolve(new Uint8Array(1)), 'EFAULT', 'DMA')).rejects.toThrow('DMA: expected a rejection with EFAULT, got <00>');
    await expectRejects(Promise.reject(err), 'EIO', 'DMA');
  });
});

describe('complianceCases', () => {
  it('names each case <kit> compliance: <group> › <title>, as jest names the registered test', () => {
    const cases = complianceCases(selftestMockKit);
    expect(cases).toHaveLength(18);
    for (const c of cases) {
      expect(c.name).toBe(`${c.group}${CASE_SEPARATOR}${c.title}`);
      expect(c.group.startsWith('selftest mock compliance: ')).toBe(true);
    }
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(cases[0]!.name).toBe('selftest mock compliance: the driver interface › is a DriverV1 the core accepts');
    expect(complianceCases(selftestMockKit, { skipFailNth: true, fuzzRounds: 3 }).map((c) => c.title)).toContain('survives 3 random invalidation batches with a handled count within bounds');
    expect(complianceCases(selftestMockKit, { skipFailNth: true })).toHaveLength(17);
  });

  it('runs without jest, and a kit whose flush misses the cache fails its case with the reason', async () => {
    const cases = complianceCases(selftestMockKit);
    const one = cases.find((c) => c.title.startsWith('keeps the old translation until the guest invalidates'))!;
    expect(await outcome(() => one.run())).toBeUndefined();
    // Invalidates cache slot 1 only: slot 0 keeps what the device cached.
    const broken: ComplianceKit = {
      ...selftestMockKit,
      invalidation: {
        ...selftestMockKit.invalidation!,
        flushAll: (ctx) => [U.iommu_viommu_invalidate_selftest.encode({ flags: 0, vdev_id: Number(ctx.vdevice.virtId), cache_id: 1 })],
      },
    };
    const again = complianceCases(broken).find((c) => c.name === one.name)!;
    const e = await outcome(() => again.run());
    expect(e).toBeInstanceOf(ComplianceFailure);
    expect((e as Error).message).toBe('cache slot 0 of the device is not 0 after the flush');
  });

  it('refuses a kit that gives both an invalidation and a refresh, before any case runs', () => {
    const both: ComplianceKit = { ...selftestMockKit, refresh: { what: 'nothing', apply: (ctx) => ctx.nested } };
    expect(() => complianceCases(both)).toThrow('kit selftest mock: give exactly one of invalidation and refresh');
  });
});
