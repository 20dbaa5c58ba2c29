// complianceCases(kit): the compliance suite as data, one { name, run } per case, asserting with
// ./assert.ts (no jest), so the jest suite (./suite.ts) and any other runner (`viommu conformance`)
// run the same code. The cases speak to the backend only through the simulated host and the process
// contract (via @viommu/client), so what they prove is what a VMM would see.

import { ClientError, type InvalidateOutcome } from '@viommu/client';
import { assertDriverV1, type SimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { check, expectEqual, expectMatch, expectOneOf, expectWithin } from './assert.js';
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

/** One compliance case. Running it twice builds everything twice: cases share no state. */
export interface ComplianceCase {
  /** `<group> › <title>`: what jest calls the test, with › between describe and test. */
  readonly name: string;
  /** `<kit name> compliance: <area>` (the jest describe). */
  readonly group: string;
  /** The jest test title. */
  readonly title: string;
  /** Resolves when the case passed; throws (a ComplianceFailure, or the backend's own error) when not. */
  run(): void | Promise<void>;
}

/** The separator between group and title in a case name (as jest's reporters and the harness print it). */
export const CASE_SEPARATOR = ' › ';

function invalidate(f: AnyFlow, inv: InvalidationHooks, entries: Uint8Array[]): InvalidateOutcome {
  const batch = { type: inv.type, entryLen: inv.entryLen, entries };
  return inv.target === 'viommu' ? f.viommu!.invalidate(batch) : f.nested.invalidate(batch);
}

/** HWPT_INVALIDATE on every object a guest could aim it at (the vIOMMU, the nested HWPT), as raw batches. */
function invalidateEverywhere(f: AnyFlow, batch: { type: number; entryLen: number; entries: Uint8Array[] }): InvalidateOutcome[] {
  return [...(f.viommu ? [f.viommu.invalidate(batch)] : []), f.nested.invalidate(batch)];
}

/** What HWPT_INVALIDATE answers where the driver has no invalidation op (hw_pagetable.c): EOPNOTSUPP, nothing handled. */
function expectRefused(r: InvalidateOutcome, what: string): void {
  expectMatch(r, { ok: false, handled: 0, error: { code: 'EOPNOTSUPP' } }, what);
}

/** Everything the process created is gone once it has exited: no context, no leaked object. */
function expectReleased(host: SimHost & { contexts: ReadonlySet<unknown>; leaks: readonly unknown[] }): void {
  expectEqual(host.contexts.size, 0, 'iommufd contexts left on the host');
  expectEqual(host.leaks, [], 'objects leaked');
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
  expectEqual(await read(), 'old page', 'DMA through the nested HWPT before the remap');
  f.stage1.map(f.dataIova, f.dataIpa + 0x1000);
  return read;
}

export function complianceCases(kit: AnyComplianceKit, options: SuiteOptions = {}): ComplianceCase[] {
  const rounds = options.fuzzRounds ?? 64;
  const hooks = kitHooks(kit);
  const inv = hooks.invalidation;
  const viommuKit = kit.viommu === 'none' ? undefined : kit;
  const cases: ComplianceCase[] = [];
  let group = '';
  const area = (name: string) => void (group = `${kit.name} compliance: ${name}`);
  const it = (title: string, run: () => void | Promise<void>) => cases.push({ name: `${group}${CASE_SEPARATOR}${title}`, group, title, run });

  area('the driver interface');
  it('is a DriverV1 the core accepts', () => {
    const { host, iommu } = kit.createHost();
    const d = host.driver(iommu);
    assertDriverV1(d);
    expectEqual(d.apiVersion, 1, 'apiVersion');
    expectEqual(d.name, iommu, 'the driver name');
  });

  it('answers GET_HW_INFO with its type, the same data for DEFAULT and its own type, and EOPNOTSUPP for another', () => {
    const f = buildFlow(kit);
    const info = f.device.hwInfo();
    expectEqual(info.type, kit.hwInfoType, 'GET_HW_INFO (DEFAULT) type');
    check(info.data.some((b) => b !== 0), 'GET_HW_INFO data is all zero');
    expectEqual(f.device.hwInfo({ type: kit.hwInfoType }), info, 'GET_HW_INFO of the vendor type against DEFAULT');
    const other = kit.hwInfoType === U.IOMMU_HW_INFO_TYPE_SELFTEST ? U.IOMMU_HW_INFO_TYPE_INTEL_VTD : U.IOMMU_HW_INFO_TYPE_SELFTEST;
    expectEqual(errnoOf(() => f.device.hwInfo({ type: other })), 'EOPNOTSUPP', `GET_HW_INFO of type ${other}`);
    f.iommufd.teardown();
  });

  it('allocates paging domains with exactly the flags it can honour', () => {
    const f = buildFlow(kit);
    const caps = f.device.hwInfo().capabilities;
    expectEqual(f.ioas.allocHwpt(f.device).kind, 'HWPT_PAGING', 'a plain paging HWPT');
    expectEqual(f.ioas.allocNestParent(f.device).kind, 'HWPT_PAGING', 'a NEST_PARENT HWPT');
    const dirty = errnoOf(() => f.ioas.allocHwpt(f.device, { dirtyTracking: true }));
    // Dirty tracking is refused exactly when GET_HW_INFO does not advertise it.
    const advertised = (caps & BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING)) !== 0n;
    expectEqual(dirty === undefined, advertised, `a dirty-tracking HWPT allocated (${dirty ?? 'ok'}) against IOMMU_HW_CAP_DIRTY_TRACKING advertised`);
    if (dirty !== undefined) expectEqual(dirty, 'EOPNOTSUPP', 'a dirty-tracking HWPT without the capability');
    // A fault-capable stage-2 is refused (hw_pagetable.c: EOPNOTSUPP), as is an unknown flag.
    const fq = f.iommufd.allocFaultQueue();
    expectEqual(errnoOf(() => f.ioas.allocNestParent(f.device, { fault: fq })), 'EOPNOTSUPP', 'a fault-capable NEST_PARENT');
    expectEqual(errnoOf(() => f.iommufd.call('allocHwpt', undefined, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { flags: 1 << 7, dev_id: f.device.id, pt_id: f.ioas.id })), 'EOPNOTSUPP', 'HWPT_ALLOC with an unknown flag');
    f.iommufd.teardown();
  });

  area('the nested flow (spec 9.4)');
  it(viommuKit ? 'builds stage-2, vIOMMU, vDEVICE and nested HWPT; device DMA reaches the right guest bytes' : 'builds stage-2 and a nested HWPT on it (no vIOMMU); device DMA reaches the right guest bytes', async () => {
    const f = buildFlow(kit);
    f.guest.write(f.dataIpa, new TextEncoder().encode('guest data'));
    expectEqual(new TextDecoder().decode(await dma(f).read(BigInt(f.dataIova), 10)), 'guest data', 'device DMA read through the nested HWPT');
    await dma(f).write(BigInt(f.dataIova + 16), new Uint8Array([0xde, 0xad]));
    expectEqual([...f.guest.read(f.dataIpa + 16, 2)], [0xde, 0xad], 'guest bytes after a device DMA write');
    f.iommufd.teardown();
    expectReleased(f.host);
  });

  if (inv) {
    it('keeps the old translation until the guest invalidates with the vendor entries, then follows the new one', async () => {
      const f = buildFlow(kit);
      const entries = inv.flushAll(f);
      if (!f.stage1.map) {
        // No guest stage-1 walk on this backend: the kit checks the flush some other way.
        expectEqual(invalidate(f, inv, entries), { ok: true, handled: entries.length }, 'HWPT_INVALIDATE of the kit\'s flush');
        inv.checkFlushed(f);
        f.iommufd.teardown();
        return;
      }
      const read = await remapGuestPage(f);
      expectEqual(await read(), 'old page', 'DMA after the guest remapped, before it invalidated (stale)');
      expectEqual(invalidate(f, inv, entries), { ok: true, handled: entries.length }, 'HWPT_INVALIDATE of the kit\'s flush');
      expectEqual(await read(), 'new page', 'DMA after the guest invalidated');
      f.iommufd.teardown();
    });

    it('reports how many entries it handled when one is bad, and refuses it with the vendor errno', () => {
      const f = buildFlow(kit);
      const good = inv.flushAll(f);
      const bad = inv.bad(f);
      const r = invalidate(f, inv, [...good, bad.entry, ...good]);
      expectEqual(r.ok ? 'ok' : r.error.code, bad.errno, 'HWPT_INVALIDATE of a batch with a bad entry');
      expectEqual(r.handled, good.length, 'entries handled before the bad one');
      // A data type the vendor does not use: EINVAL, nothing handled.
      const wrong = invalidate(f, { ...inv, type: (inv.type ^ 0x5a5a) >>> 0 }, good);
      expectEqual(wrong.ok ? 'ok' : wrong.error.code, 'EINVAL', 'HWPT_INVALIDATE of a foreign data type');
      expectEqual(wrong.handled, 0, 'entries handled of a foreign data type');
      f.iommufd.teardown();
    });
  } else {
    const refresh = hooks.refresh!;
    const what = (kit as ComplianceKit).refresh!.what;
    it(`has no guest invalidation: a remapped page stays stale through HWPT_INVALIDATE (EOPNOTSUPP) until ${what}`, async () => {
      const f = buildFlow(kit);
      if (!f.stage1.map) throw new Error(`kit ${kit.name}: a kit without invalidation must walk a guest stage-1 (GuestStage1.map)`);
      const read = await remapGuestPage(f);
      expectEqual(await read(), 'old page', 'DMA after the guest remapped (stale)');
      // Whatever the guest tries through the uAPI, nothing is handled and nothing is dropped.
      for (const r of invalidateEverywhere(f, { type: 0, entryLen: 16, entries: [new Uint8Array(16)] })) expectRefused(r, 'HWPT_INVALIDATE without an invalidation op');
      expectEqual(await read(), 'old page', 'DMA after the refused HWPT_INVALIDATE (still stale)');
      const now = refresh(f);
      expectEqual(now.kind, 'HWPT_NESTED', 'what the kit\'s refresh attached');
      expectEqual(await read(), 'new page', 'DMA after the kit\'s refresh');
      // And it keeps following the guest's tables across a second remap and refresh.
      f.stage1.map(f.dataIova, f.dataIpa);
      expectEqual(await read(), 'new page', 'DMA after a second remap (stale)');
      refresh({ ...f, nested: now });
      expectEqual(await read(), 'old page', 'DMA after a second refresh');
      f.iommufd.teardown();
      expectReleased(f.host);
    });

    it('answers HWPT_INVALIDATE with EOPNOTSUPP for any data type and batch, after the generic checks (EINVAL for a bad entry_len, ENOENT for an unknown ID)', () => {
      const f = buildFlow(kit);
      for (const type of [0, 1, 2, 3, 0x5a5a]) {
        for (const entries of [[], [new Uint8Array(32)], [new Uint8Array(32), new Uint8Array(32).fill(0xff)]]) {
          for (const r of invalidateEverywhere(f, { type, entryLen: 32, entries })) expectRefused(r, `HWPT_INVALIDATE of type ${type}, ${entries.length} entries`);
        }
      }
      // hw_pagetable.c checks entry_len before it looks the object up.
      const raw = (fields: Partial<ReturnType<typeof U.iommu_hwpt_invalidate.decode>>) =>
        errnoOf(() => f.iommufd.ioctlBytes('invalidate', undefined, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate.encode({ hwpt_id: f.nested.id, data_uptr: 0x1000n, data_type: 0, entry_len: 16, entry_num: 1, ...fields })));
      expectEqual(raw({ entry_len: 0 }), 'EINVAL', 'HWPT_INVALIDATE with entry_len 0');
      expectEqual(raw({ entry_len: 4097 }), 'EINVAL', 'HWPT_INVALIDATE with entry_len above a page');
      expectEqual(raw({ hwpt_id: 0xdead }), 'ENOENT', 'HWPT_INVALIDATE of an unknown ID');
      // The stage-2 is a paging HWPT: not an invalidation target at all.
      expectEqual(raw({ hwpt_id: f.s2.id }), 'EINVAL', 'HWPT_INVALIDATE of the stage-2');
      f.iommufd.teardown();
      expectReleased(f.host);
    });
  }

  if (viommuKit?.vevent) {
    const ev = viommuKit.vevent;
    it('delivers events to the vEVENTQ with the vendor payload, in sequence, and ends the reader on close', async () => {
      const f = buildFlow(viommuKit);
      const q = f.viommu.allocVeventq(ev.type, 8);
      expectEqual(errnoOf(() => f.viommu.allocVeventq(ev.type, 8)), 'EEXIST', 'a second vEVENTQ of the type');
      const events = q.events()[Symbol.asyncIterator]();
      await ev.provoke(f);
      const first = await events.next();
      expectMatch(first, { done: false, value: { kind: 'event', sequence: 0 } }, 'the first vEVENT');
      if (first.value?.kind === 'event') ev.check(first.value.data, f);
      await ev.provoke(f);
      expectMatch(await events.next(), { value: { kind: 'event', sequence: 1 } }, 'the second vEVENT');
      const pending = events.next();
      q.close();
      expectEqual(await pending, { done: true, value: undefined }, 'the reader after close');
      f.iommufd.teardown();
      expectReleased(f.host);
    });

    it('drops events beyond the queue depth and says how many were lost', async () => {
      const f = buildFlow(viommuKit);
      const q = f.viommu.allocVeventq(ev.type, 1);
      for (let i = 0; i < 3; i++) await ev.provoke(f);
      const events = q.events()[Symbol.asyncIterator]();
      expectMatch((await events.next()).value, { kind: 'event', sequence: 0 }, 'the one event a depth-1 queue holds');
      expectMatch((await events.next()).value, { kind: 'lost', count: 2, sequence: 2 }, 'the lost-events record after it');
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
      expectEqual(g.devId, f.device.id, 'the page request group\'s dev_id');
      const last = g.faults[g.faults.length - 1]!;
      expectEqual(last.addr, 0xabc000n, 'the page request\'s address');
      expectEqual(last.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE, U.IOMMU_PGFAULT_FLAGS_LAST_PAGE, 'LAST_PAGE on the group\'s last request');
      pf.check?.(g, ctx);
      g.respond(U.IOMMUFD_PAGE_RESP_SUCCESS);
      if (answered) expectEqual(await answered, U.IOMMUFD_PAGE_RESP_SUCCESS, 'the response the device saw');
      // The cookie is spent: a second answer is EINVAL.
      expectEqual(errnoOf(() => g.respond(U.IOMMUFD_PAGE_RESP_SUCCESS)), 'EINVAL', 'a second response to the group');
      // The queue holds the HWPT's reference: destroying it first is EBUSY.
      expectEqual(errnoOf(() => faults.destroy()), 'EBUSY', 'destroying the fault queue under its HWPT');
      f.iommufd.teardown();
      expectReleased(f.host);
    });
  }

  if (viommuKit?.hwQueue) {
    const hq = viommuKit.hwQueue;
    it('allocates HW queues on guest RAM in ascending index order and tears them down in reverse', () => {
      const f = buildFlow(viommuKit);
      for (let i = 0; i < hq.count; i++) {
        const ipa = f.guest.alloc(hq.length, hq.length);
        f.viommu.allocHwQueue({ type: hq.type, index: i, iova: BigInt(ipa), length: hq.length });
      }
      // Its pages are pinned: the guest RAM cannot be unmapped under it.
      expectEqual(errnoOf(() => f.ioas.unmap()), 'EBUSY', 'unmapping guest RAM under HW queues');
      expectEqual(errnoOf(() => f.viommu.allocHwQueue({ type: (hq.type ^ 0x5a5a) >>> 0, index: hq.count, iova: BigInt(kit.guestRam.ipa), length: hq.length })), 'EOPNOTSUPP', 'a HW queue of a foreign type');
      f.iommufd.teardown();
      expectReleased(f.host);
    });
  }

  it('tears down in dependency order with everything alive, and refuses out-of-order destroys with EBUSY', () => {
    const f = buildFlow(kit);
    expectEqual(errnoOf(() => f.s2.destroy()), 'EBUSY', 'destroying the stage-2 first');
    if (f.viommu) expectEqual(errnoOf(() => f.viommu.destroy()), 'EBUSY', 'destroying the vIOMMU before its users');
    expectEqual(errnoOf(() => f.nested.destroy()), 'EBUSY', 'destroying the attached nested HWPT');
    f.iommufd.teardown();
    expectReleased(f.host);
    expectEqual(f.host.device(f.deviceName).bound, undefined, 'the device still bound after teardown');
  });

  area('errors and hostile input');
  if (viommuKit) {
    const vk = viommuKit;
    it('refuses a vIOMMU on a parent that is not a nest parent, or that belongs to another IOMMU instance', () => {
      const f = buildFlow(vk);
      const plain = f.ioas.allocHwpt(f.device);
      const r = f.iommufd.tryAllocViommu({ type: vk.viommu.type, device: f.device, parent: plain, ...(vk.viommu.data ? { data: vk.viommu.data() } : {}) });
      expectEqual(r.ok ? 'ok' : r.reason, 'incompatible-parent', 'a vIOMMU on a plain paging HWPT');
      if (f.foreignDevice) {
        const foreign = f.iommufd.bindDevice(f.host.device(f.foreignDevice).path);
        const r2 = f.iommufd.tryAllocViommu({ type: vk.viommu.type, device: foreign, parent: f.s2, ...(vk.viommu.data ? { data: vk.viommu.data() } : {}) });
        expectEqual(r2.ok ? 'ok' : r2.reason, 'incompatible-parent', 'a vIOMMU for a device of another instance');
        expectEqual(errnoOf(() => f.viommu.allocVdevice(foreign, vk.virtId + 1n)), 'EINVAL', 'a vDEVICE for a device of another instance');
        const a = foreign.tryAttach(f.s2);
        expectEqual(a.ok ? 'ok' : a.reason, 'incompatible', 'attaching a device of another instance to the stage-2');
      }
      f.iommufd.teardown();
      expectReleased(f.host);
    });

    it('refuses a second vDEVICE for the device or for the virtual ID (EEXIST)', () => {
      const f = buildFlow(vk);
      expectEqual(errnoOf(() => f.viommu.allocVdevice(f.device, vk.virtId + 1n)), 'EEXIST', 'a second vDEVICE for the device');
      f.iommufd.teardown();
    });
  } else {
    const nk = kit as NoViommuKit;
    it('refuses a vIOMMU (EOPNOTSUPP), a nested HWPT on a parent that is not a nest parent (EINVAL), and a foreign device on the parent', () => {
      const f = buildFlow(nk);
      const before = f.iommufd.objects.length;
      // viommu.c: a driver without viommu_init refuses every type before looking at the parent.
      expectEqual(errnoOf(() => f.iommufd.allocViommu({ type: nk.refusedViommuType, device: f.device, parent: f.s2 })), 'EOPNOTSUPP', 'VIOMMU_ALLOC on a vendor without a vIOMMU');
      const plain = f.ioas.allocHwpt(f.device);
      // hw_pagetable.c: a nested HWPT needs a NEST_PARENT paging parent.
      expectEqual(errnoOf(() => plain.allocNested(f.device, f.stage1.data)), 'EINVAL', 'a nested HWPT on a plain paging HWPT');
      plain.destroy();
      expectEqual(f.iommufd.objects.length, before, 'objects after the refusals');
      if (f.foreignDevice) {
        const foreign = f.iommufd.bindDevice(f.host.device(f.foreignDevice).path);
        const a = foreign.tryAttach(f.s2);
        expectEqual(a.ok ? 'ok' : a.reason, 'incompatible', 'attaching a device of another instance to the stage-2');
      }
      f.iommufd.teardown();
      expectReleased(f.host);
    });
  }

  it('refuses nested vendor data that is missing or of another type, creating nothing', () => {
    const f = buildFlow(kit);
    const before = f.iommufd.objects.length;
    expectEqual(errnoOf(() => nestingParent(f).allocNested(f.device, { type: f.stage1.data.type, bytes: new Uint8Array(0) })), 'EINVAL', 'a nested HWPT without vendor data');
    expectOneOf(errnoOf(() => nestingParent(f).allocNested(f.device, { type: (f.stage1.data.type ^ 0x5a5a) >>> 0, bytes: f.stage1.data.bytes })), ['EINVAL', 'EOPNOTSUPP'], 'a nested HWPT of a foreign data type');
    expectEqual(f.iommufd.objects.length, before, 'objects after the refusals');
    f.iommufd.teardown();
  });

  it(inv ? 'answers EFAULT for vendor data and invalidation entries at unmapped user addresses' : 'answers EFAULT for vendor data at an unmapped user address (and EOPNOTSUPP, not EFAULT, for invalidation entries: never read)', () => {
    const f = buildFlow(kit);
    const UNMAPPED = 0x7fff_dead_0000n;
    const data = f.stage1.data;
    expectEqual(errnoOf(() => f.iommufd.call('allocHwpt', undefined, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      dev_id: f.device.id, pt_id: nestingParent(f).id, data_type: data.type, data_len: data.bytes.length, data_uptr: UNMAPPED,
    })), 'EFAULT', 'HWPT_ALLOC with vendor data at an unmapped address');
    const target = inv?.target === 'viommu' ? f.viommu!.id : f.nested.id;
    const cmd = U.iommu_hwpt_invalidate.encode({ hwpt_id: target, data_uptr: UNMAPPED, data_type: inv?.type ?? 0, entry_len: inv?.entryLen ?? 16, entry_num: 2 });
    expectEqual(errnoOf(() => f.iommufd.ioctlBytes('invalidate', undefined, U.IOMMU_HWPT_INVALIDATE, cmd)), inv ? 'EFAULT' : 'EOPNOTSUPP', 'HWPT_INVALIDATE with entries at an unmapped address');
    expectEqual(U.iommu_hwpt_invalidate.get(cmd, 'entry_num'), 0, 'entry_num written back');
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
        // An accepted configuration must also survive an attach attempt and DMA.
        if (f.device.tryAttach(h).ok) await dma(f).read(BigInt(f.dataIova), 4).catch((e: unknown) => expectEqual((e as { code?: string }).code, 'EFAULT', `DMA through random nested data #${i}`));
        f.device.attach(f.nested);
        h.destroy();
      } catch (e) {
        // Anything but an errno from the kernel boundary (a crash, a failed check) fails the case as it is.
        if (!(e instanceof ClientError)) throw e;
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
        for (const r of invalidateEverywhere(f, batch)) expectRefused(r, `random batch #${i}`);
        continue;
      }
      const entries = Array.from({ length: n }, () => randomBytes(next, inv.entryLen));
      const r = invalidate(f, inv, entries);
      expectWithin(r.handled, { min: 0, max: n }, `entries handled of random batch #${i} (${n} entries)`);
      if (r.ok) expectEqual(r.handled, n, `entries handled of accepted random batch #${i}`);
    }
    f.iommufd.teardown();
    expectReleased(f.host);
  });

  if (!options.skipFailNth) {
    area('fail_nth');
    it('unwinds every injected failure of the nested flow with an errno and releases every object and frame', async () => {
      const points = await failNthSweep(kit, (host, leftoverFrames) => {
        expectReleased(host);
        expectWithin(leftoverFrames, { min: 0, max: options.allowLeftoverFrames ?? 0 }, 'physical frames left after exit and unplug');
      });
      expectWithin(points, { min: 6 }, 'failure points the sweep went through');
    });
  }
  return cases;
}
