// runComplianceSuite(kit): the jest suites every backend runs from its own tests. They speak to the
// backend only through the simulated host and the process contract (via @viommu/client), so what
// they prove is what a VMM would see.

import { describe, expect, it } from '@jest/globals';
import { ClientError, type InvalidateOutcome } from '@viommu/client';
import { assertDriverV1, type SimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { failNthSweep } from './fail-nth.js';
import { buildFlow, errnoOf, kitHooks, nestingParent, randomBytes, rng, type AnyFlow, type InvalidationHooks } from './flow.js';
import type { AnyComplianceKit, ComplianceKit, NoViommuKit } from './kit.js';

export interface SuiteOptions {
  /** Hostile-input iterations per case (default 64). */
  readonly fuzzRounds?: number;
  /** Skip the fail_nth sweep (it runs the flow once per failure point). */
  readonly skipFailNth?: boolean;
  /**
   * A known gap, not a licence: physical frames a backend may still hold after the process exited
   * and its devices were released (default 0). Say why in the kit and fix it in the backend.
   */
  readonly allowLeftoverFrames?: number;
}

function invalidate(f: AnyFlow, inv: InvalidationHooks, entries: Uint8Array[]): InvalidateOutcome {
  const batch = { type: inv.type, entryLen: inv.entryLen, entries };
  return inv.target === 'viommu' ? f.viommu!.invalidate(batch) : f.nested.invalidate(batch);
}

/** HWPT_INVALIDATE on every object a guest could aim it at (the vIOMMU, the nested HWPT), as raw batches. */
function invalidateEverywhere(f: AnyFlow, batch: { type: number; entryLen: number; entries: Uint8Array[] }): InvalidateOutcome[] {
  return [...(f.viommu ? [f.viommu.invalidate(batch)] : []), f.nested.invalidate(batch)];
}

/** What HWPT_INVALIDATE answers where the driver has no invalidation op (hw_pagetable.c): EOPNOTSUPP, nothing handled. */
const REFUSED = { ok: false, handled: 0, error: expect.objectContaining({ code: 'EOPNOTSUPP' }) };

/** Everything the process created is gone once it has exited: no context, no leaked object. */
function expectReleased(host: SimHost & { contexts: ReadonlySet<unknown>; leaks: readonly unknown[] }): void {
  expect(host.contexts.size).toBe(0);
  expect(host.leaks).toEqual([]);
}

const dma = (f: AnyFlow) => f.host.device(f.deviceName).dma;

/**
 * The start of every stale-translation check: 'old page' at the flow's data page and 'new page' on
 * the next guest page, a DMA read through the nested HWPT that sees the old one, then the guest's
 * stage-1 remapped to the new page without telling the IOMMU. Returns the read (8 bytes as text),
 * for the caller to check what does (or does not) make the new page visible.
 */
export async function remapGuestPage(f: AnyFlow): Promise<() => Promise<string>> {
  if (!f.stage1.map) throw new Error('remapGuestPage: the kit\'s stage-1 has no map (no guest stage-1 walk)');
  f.guest.write(f.dataIpa, new TextEncoder().encode('old page'));
  f.guest.write(f.dataIpa + 0x1000, new TextEncoder().encode('new page'));
  const read = async () => new TextDecoder().decode(await dma(f).read(BigInt(f.dataIova), 8));
  expect(await read()).toBe('old page');
  f.stage1.map(f.dataIova, f.dataIpa + 0x1000);
  return read;
}

export function runComplianceSuite(kit: AnyComplianceKit, options: SuiteOptions = {}): void {
  const rounds = options.fuzzRounds ?? 64;
  const hooks = kitHooks(kit);
  const inv = hooks.invalidation;
  const viommuKit = kit.viommu === 'none' ? undefined : kit;

  describe(`${kit.name} compliance: the driver interface`, () => {
    it('is a DriverV1 the core accepts', () => {
      const { host, iommu } = kit.createHost();
      const d = host.driver(iommu);
      expect(() => assertDriverV1(d)).not.toThrow();
      expect(d.apiVersion).toBe(1);
      expect(d.name).toBe(iommu);
    });

    it('answers GET_HW_INFO with its type, the same data for DEFAULT and its own type, and EOPNOTSUPP for another', () => {
      const f = buildFlow(kit);
      const info = f.device.hwInfo();
      expect(info.type).toBe(kit.hwInfoType);
      expect(info.data.some((b) => b !== 0)).toBe(true);
      expect(f.device.hwInfo({ type: kit.hwInfoType })).toEqual(info);
      const other = kit.hwInfoType === U.IOMMU_HW_INFO_TYPE_SELFTEST ? U.IOMMU_HW_INFO_TYPE_INTEL_VTD : U.IOMMU_HW_INFO_TYPE_SELFTEST;
      expect(errnoOf(() => f.device.hwInfo({ type: other }))).toBe('EOPNOTSUPP');
      f.iommufd.teardown();
    });

    it('allocates paging domains with exactly the flags it can honour', () => {
      const f = buildFlow(kit);
      const caps = f.device.hwInfo().capabilities;
      expect(f.ioas.allocHwpt(f.device).kind).toBe('HWPT_PAGING');
      expect(f.ioas.allocNestParent(f.device).kind).toBe('HWPT_PAGING');
      const dirty = errnoOf(() => f.ioas.allocHwpt(f.device, { dirtyTracking: true }));
      // Dirty tracking is refused exactly when GET_HW_INFO does not advertise it.
      expect(dirty === undefined).toBe((caps & BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING)) !== 0n);
      if (dirty !== undefined) expect(dirty).toBe('EOPNOTSUPP');
      // A fault-capable stage-2 is refused (hw_pagetable.c: EOPNOTSUPP), as is an unknown flag.
      const fq = f.iommufd.allocFaultQueue();
      expect(errnoOf(() => f.ioas.allocNestParent(f.device, { fault: fq }))).toBe('EOPNOTSUPP');
      expect(errnoOf(() => f.iommufd.call('allocHwpt', undefined, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { flags: 1 << 7, dev_id: f.device.id, pt_id: f.ioas.id }))).toBe('EOPNOTSUPP');
      f.iommufd.teardown();
    });
  });

  describe(`${kit.name} compliance: the nested flow (spec 9.4)`, () => {
    it(viommuKit ? 'builds stage-2, vIOMMU, vDEVICE and nested HWPT; device DMA reaches the right guest bytes' : 'builds stage-2 and a nested HWPT on it (no vIOMMU); device DMA reaches the right guest bytes', async () => {
      const f = buildFlow(kit);
      f.guest.write(f.dataIpa, new TextEncoder().encode('guest data'));
      expect(new TextDecoder().decode(await dma(f).read(BigInt(f.dataIova), 10))).toBe('guest data');
      await dma(f).write(BigInt(f.dataIova + 16), new Uint8Array([0xde, 0xad]));
      expect([...f.guest.read(f.dataIpa + 16, 2)]).toEqual([0xde, 0xad]);
      f.iommufd.teardown();
      expectReleased(f.host);
    });

    if (inv) {
      it('keeps the old translation until the guest invalidates with the vendor entries, then follows the new one', async () => {
        const f = buildFlow(kit);
        const entries = inv.flushAll(f);
        if (!f.stage1.map) {
          // No guest stage-1 walk on this backend: the kit checks the flush some other way.
          expect(invalidate(f, inv, entries)).toEqual({ ok: true, handled: entries.length });
          inv.checkFlushed(f);
          f.iommufd.teardown();
          return;
        }
        const read = await remapGuestPage(f);
        expect(await read()).toBe('old page');
        expect(invalidate(f, inv, entries)).toEqual({ ok: true, handled: entries.length });
        expect(await read()).toBe('new page');
        f.iommufd.teardown();
      });

      it('reports how many entries it handled when one is bad, and refuses it with the vendor errno', () => {
        const f = buildFlow(kit);
        const good = inv.flushAll(f);
        const bad = inv.bad(f);
        const r = invalidate(f, inv, [...good, bad.entry, ...good]);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.code).toBe(bad.errno);
        expect(r.handled).toBe(good.length);
        // A data type the vendor does not use: EINVAL, nothing handled.
        const wrong = invalidate(f, { ...inv, type: (inv.type ^ 0x5a5a) >>> 0 }, good);
        expect(wrong.ok ? 'ok' : wrong.error.code).toBe('EINVAL');
        expect(wrong.handled).toBe(0);
        f.iommufd.teardown();
      });
    } else {
      const refresh = hooks.refresh!;
      const what = (kit as ComplianceKit).refresh!.what;
      it(`has no guest invalidation: a remapped page stays stale through HWPT_INVALIDATE (EOPNOTSUPP) until ${what}`, async () => {
        const f = buildFlow(kit);
        if (!f.stage1.map) throw new Error(`kit ${kit.name}: a kit without invalidation must walk a guest stage-1 (GuestStage1.map)`);
        const read = await remapGuestPage(f);
        expect(await read()).toBe('old page');
        // Whatever the guest tries through the uAPI, nothing is handled and nothing is dropped.
        for (const r of invalidateEverywhere(f, { type: 0, entryLen: 16, entries: [new Uint8Array(16)] })) expect(r).toEqual(REFUSED);
        expect(await read()).toBe('old page');
        const now = refresh(f);
        expect(now.kind).toBe('HWPT_NESTED');
        expect(await read()).toBe('new page');
        // And it keeps following the guest's tables across a second remap and refresh.
        f.stage1.map(f.dataIova, f.dataIpa);
        expect(await read()).toBe('new page');
        refresh({ ...f, nested: now });
        expect(await read()).toBe('old page');
        f.iommufd.teardown();
        expectReleased(f.host);
      });

      it('answers HWPT_INVALIDATE with EOPNOTSUPP for any data type and batch, after the generic checks (EINVAL for a bad entry_len, ENOENT for an unknown ID)', () => {
        const f = buildFlow(kit);
        for (const type of [0, 1, 2, 3, 0x5a5a]) {
          for (const entries of [[], [new Uint8Array(32)], [new Uint8Array(32), new Uint8Array(32).fill(0xff)]]) {
            for (const r of invalidateEverywhere(f, { type, entryLen: 32, entries })) expect(r).toEqual(REFUSED);
          }
        }
        // hw_pagetable.c checks entry_len before it looks the object up.
        const raw = (fields: Partial<ReturnType<typeof U.iommu_hwpt_invalidate.decode>>) =>
          errnoOf(() => f.iommufd.ioctlBytes('invalidate', undefined, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate.encode({ hwpt_id: f.nested.id, data_uptr: 0x1000n, data_type: 0, entry_len: 16, entry_num: 1, ...fields })));
        expect(raw({ entry_len: 0 })).toBe('EINVAL');
        expect(raw({ entry_len: 4097 })).toBe('EINVAL');
        expect(raw({ hwpt_id: 0xdead })).toBe('ENOENT');
        // The stage-2 is a paging HWPT: not an invalidation target at all.
        expect(raw({ hwpt_id: f.s2.id })).toBe('EINVAL');
        f.iommufd.teardown();
        expectReleased(f.host);
      });
    }

    if (viommuKit?.vevent) {
      const ev = viommuKit.vevent;
      it('delivers events to the vEVENTQ with the vendor payload, in sequence, and ends the reader on close', async () => {
        const f = buildFlow(viommuKit);
        const q = f.viommu.allocVeventq(ev.type, 8);
        expect(errnoOf(() => f.viommu.allocVeventq(ev.type, 8))).toBe('EEXIST');
        const it = q.events()[Symbol.asyncIterator]();
        await ev.provoke(f);
        const first = await it.next();
        expect(first.done).toBe(false);
        expect(first.value).toMatchObject({ kind: 'event', sequence: 0 });
        if (first.value?.kind === 'event') ev.check(first.value.data, f);
        await ev.provoke(f);
        expect(await it.next()).toMatchObject({ value: { kind: 'event', sequence: 1 } });
        const pending = it.next();
        q.close();
        expect(await pending).toEqual({ done: true, value: undefined });
        f.iommufd.teardown();
        expectReleased(f.host);
      });

      it('drops events beyond the queue depth and says how many were lost', async () => {
        const f = buildFlow(viommuKit);
        const q = f.viommu.allocVeventq(ev.type, 1);
        for (let i = 0; i < 3; i++) await ev.provoke(f);
        const it = q.events()[Symbol.asyncIterator]();
        expect((await it.next()).value).toMatchObject({ kind: 'event', sequence: 0 });
        expect((await it.next()).value).toMatchObject({ kind: 'lost', count: 2, sequence: 2 });
        q.close();
        f.iommufd.teardown();
      });
    }

    if (hooks.pageFault) {
      const pf = hooks.pageFault;
      it('delivers page requests of a fault-capable nested HWPT to the fault queue and takes one response per group', async () => {
        const f = buildFlow(kit);
        const faults = f.iommufd.allocFaultQueue();
        const capable = nestingParent(f).allocNested(f.device, f.stage1.data, { fault: faults });
        f.device.attach(capable);
        const ctx = { ...f, nested: capable };
        const answered = pf.provoke(ctx, 0xabc000n);
        const groups = faults.groups()[Symbol.asyncIterator]();
        const g = (await groups.next()).value;
        if (!g) throw new Error('the fault queue ended without a group');
        expect(g.devId).toBe(f.device.id);
        const last = g.faults[g.faults.length - 1]!;
        expect(last.addr).toBe(0xabc000n);
        expect(last.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE).toBe(U.IOMMU_PGFAULT_FLAGS_LAST_PAGE);
        pf.check?.(g, ctx);
        g.respond(U.IOMMUFD_PAGE_RESP_SUCCESS);
        if (answered) expect(await answered).toBe(U.IOMMUFD_PAGE_RESP_SUCCESS);
        // The cookie is spent: a second answer is EINVAL.
        expect(errnoOf(() => g.respond(U.IOMMUFD_PAGE_RESP_SUCCESS))).toBe('EINVAL');
        // The queue holds the HWPT's reference: destroying it first is EBUSY.
        expect(errnoOf(() => faults.destroy())).toBe('EBUSY');
        f.iommufd.teardown();
        expectReleased(f.host);
      });
    }

    if (viommuKit?.hwQueue) {
      const hq = viommuKit.hwQueue;
      it('allocates HW queues on guest RAM in ascending index order and tears them down in reverse', () => {
        const f = buildFlow(viommuKit);
        const queues = [];
        for (let i = 0; i < hq.count; i++) {
          const ipa = f.guest.alloc(hq.length, hq.length);
          queues.push(f.viommu.allocHwQueue({ type: hq.type, index: i, iova: BigInt(ipa), length: hq.length }));
        }
        // Its pages are pinned: the guest RAM cannot be unmapped under it.
        expect(errnoOf(() => f.ioas.unmap())).toBe('EBUSY');
        expect(errnoOf(() => f.viommu.allocHwQueue({ type: (hq.type ^ 0x5a5a) >>> 0, index: hq.count, iova: BigInt(kit.guestRam.ipa), length: hq.length }))).toBe('EOPNOTSUPP');
        f.iommufd.teardown();
        expectReleased(f.host);
      });
    }

    it('tears down in dependency order with everything alive, and refuses out-of-order destroys with EBUSY', () => {
      const f = buildFlow(kit);
      expect(errnoOf(() => f.s2.destroy())).toBe('EBUSY');
      if (f.viommu) expect(errnoOf(() => f.viommu.destroy())).toBe('EBUSY');
      expect(errnoOf(() => f.nested.destroy())).toBe('EBUSY');
      f.iommufd.teardown();
      expectReleased(f.host);
      expect(f.host.device(f.deviceName).bound).toBeUndefined();
    });
  });

  describe(`${kit.name} compliance: errors and hostile input`, () => {
    if (viommuKit) {
      const vk = viommuKit;
      it('refuses a vIOMMU on a parent that is not a nest parent, or that belongs to another IOMMU instance', () => {
        const f = buildFlow(vk);
        const plain = f.ioas.allocHwpt(f.device);
        const r = f.iommufd.tryAllocViommu({ type: vk.viommu.type, device: f.device, parent: plain, ...(vk.viommu.data ? { data: vk.viommu.data() } : {}) });
        expect(r.ok ? 'ok' : r.reason).toBe('incompatible-parent');
        if (f.foreignDevice) {
          const foreign = f.iommufd.bindDevice(f.host.device(f.foreignDevice).path);
          const r2 = f.iommufd.tryAllocViommu({ type: vk.viommu.type, device: foreign, parent: f.s2, ...(vk.viommu.data ? { data: vk.viommu.data() } : {}) });
          expect(r2.ok ? 'ok' : r2.reason).toBe('incompatible-parent');
          expect(errnoOf(() => f.viommu.allocVdevice(foreign, vk.virtId + 1n))).toBe('EINVAL');
          const a = foreign.tryAttach(f.s2);
          expect(a.ok ? 'ok' : a.reason).toBe('incompatible');
        }
        f.iommufd.teardown();
        expectReleased(f.host);
      });

      it('refuses a second vDEVICE for the device or for the virtual ID (EEXIST)', () => {
        const f = buildFlow(vk);
        expect(errnoOf(() => f.viommu.allocVdevice(f.device, vk.virtId + 1n))).toBe('EEXIST');
        f.iommufd.teardown();
      });
    } else {
      const nk = kit as NoViommuKit;
      it('refuses a vIOMMU (EOPNOTSUPP), a nested HWPT on a parent that is not a nest parent (EINVAL), and a foreign device on the parent', () => {
        const f = buildFlow(nk);
        const before = f.iommufd.objects.length;
        // viommu.c: a driver without viommu_init refuses every type before looking at the parent.
        expect(errnoOf(() => f.iommufd.allocViommu({ type: nk.refusedViommuType, device: f.device, parent: f.s2 }))).toBe('EOPNOTSUPP');
        const plain = f.ioas.allocHwpt(f.device);
        // hw_pagetable.c: a nested HWPT needs a NEST_PARENT paging parent.
        expect(errnoOf(() => plain.allocNested(f.device, f.stage1.data))).toBe('EINVAL');
        plain.destroy();
        expect(f.iommufd.objects.length).toBe(before);
        if (f.foreignDevice) {
          const foreign = f.iommufd.bindDevice(f.host.device(f.foreignDevice).path);
          const a = foreign.tryAttach(f.s2);
          expect(a.ok ? 'ok' : a.reason).toBe('incompatible');
        }
        f.iommufd.teardown();
        expectReleased(f.host);
      });
    }

    it('refuses nested vendor data that is missing or of another type, creating nothing', () => {
      const f = buildFlow(kit);
      const before = f.iommufd.objects.length;
      expect(errnoOf(() => nestingParent(f).allocNested(f.device, { type: f.stage1.data.type, bytes: new Uint8Array(0) }))).toBe('EINVAL');
      expect(['EINVAL', 'EOPNOTSUPP']).toContain(errnoOf(() => nestingParent(f).allocNested(f.device, { type: (f.stage1.data.type ^ 0x5a5a) >>> 0, bytes: f.stage1.data.bytes })));
      expect(f.iommufd.objects.length).toBe(before);
      f.iommufd.teardown();
    });

    it(inv ? 'answers EFAULT for vendor data and invalidation entries at unmapped user addresses' : 'answers EFAULT for vendor data at an unmapped user address (and EOPNOTSUPP, not EFAULT, for invalidation entries: never read)', () => {
      const f = buildFlow(kit);
      const UNMAPPED = 0x7fff_dead_0000n;
      const data = f.stage1.data;
      expect(errnoOf(() => f.iommufd.call('allocHwpt', undefined, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
        dev_id: f.device.id, pt_id: nestingParent(f).id, data_type: data.type, data_len: data.bytes.length, data_uptr: UNMAPPED,
      }))).toBe('EFAULT');
      const target = inv?.target === 'viommu' ? f.viommu!.id : f.nested.id;
      const cmd = U.iommu_hwpt_invalidate.encode({ hwpt_id: target, data_uptr: UNMAPPED, data_type: inv?.type ?? 0, entry_len: inv?.entryLen ?? 16, entry_num: 2 });
      expect(errnoOf(() => f.iommufd.ioctlBytes('invalidate', undefined, U.IOMMU_HWPT_INVALIDATE, cmd))).toBe(inv ? 'EFAULT' : 'EOPNOTSUPP');
      expect(U.iommu_hwpt_invalidate.get(cmd, 'entry_num')).toBe(0);
      f.iommufd.teardown();
      expectReleased(f.host);
    });

    it(`survives ${rounds} random nested vendor data blobs with errnos only, and releases everything`, async () => {
      const f = buildFlow(kit);
      const next = rng(0xc0ffee);
      const len = f.stage1.data.bytes.length;
      for (let i = 0; i < rounds; i++) {
        const bytes = randomBytes(next, len);
        // Keep the valid bytes' layout for half of them (flip a few bits): reaches deeper checks.
        if (i % 2) bytes.set(f.stage1.data.bytes.map((b, j) => (next() % 8 === 0 ? b ^ (1 << j % 8) : b)));
        try {
          const h = nestingParent(f).allocNested(f.device, { type: f.stage1.data.type, bytes });
          // A accepted configuration must also survive an attach attempt and DMA.
          if (f.device.tryAttach(h).ok) await dma(f).read(BigInt(f.dataIova), 4).catch((e: unknown) => expect((e as { code?: string }).code).toBe('EFAULT'));
          f.device.attach(f.nested);
          h.destroy();
        } catch (e) {
          expect(e).toBeInstanceOf(ClientError);
        }
      }
      f.iommufd.teardown();
      expectReleased(f.host);
    });

    it(`survives ${rounds} random invalidation batches with a handled count within bounds`, () => {
      const f = buildFlow(kit);
      const next = rng(0xbadc0de);
      for (let i = 0; i < rounds; i++) {
        const n = 1 + (next() % 8);
        if (!inv) {
          // No invalidation op: any type, any entry size, any bytes are refused without a look.
          const entryLen = 1 + (next() % 64);
          const batch = { type: next() % 8, entryLen, entries: Array.from({ length: n }, () => randomBytes(next, entryLen)) };
          for (const r of invalidateEverywhere(f, batch)) expect(r).toEqual(REFUSED);
          continue;
        }
        const entries = Array.from({ length: n }, () => randomBytes(next, inv.entryLen));
        const r = invalidate(f, inv, entries);
        expect(r.handled).toBeGreaterThanOrEqual(0);
        expect(r.handled).toBeLessThanOrEqual(n);
        if (r.ok) expect(r.handled).toBe(n);
      }
      f.iommufd.teardown();
      expectReleased(f.host);
    });
  });

  if (!options.skipFailNth) {
    describe(`${kit.name} compliance: fail_nth`, () => {
      it('unwinds every injected failure of the nested flow with an errno and releases every object and frame', async () => {
        const points = await failNthSweep(kit, (host, leftoverFrames) => {
          expectReleased(host);
          expect(leftoverFrames).toBeLessThanOrEqual(options.allowLeftoverFrames ?? 0);
          expect(leftoverFrames).toBeGreaterThanOrEqual(0);
        });
        expect(points).toBeGreaterThan(5);
      });
    });
  }
}
