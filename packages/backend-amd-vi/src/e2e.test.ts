// End to end through the simulated host and the iommufd uAPI: the upstream 7.2.13 boundary by
// default (hw_info, destroy-only vIOMMU, AMD_GUEST refused), and with `nested: true` the dormant
// nested.c path: guest DTE checks, hDomID mapping, and DMA through guest v2 tables nested in the
// host v1 stage-2.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { DTE_FLAG_GV, DTE_FLAG_V, encodeDteQwords } from './formats/dte.js';
import { EVENT_IO_PAGE_FAULT, decodeEvent } from './formats/logs.js';
import { PERM_R, PERM_W } from './pgtable/table.js';
import { DEV_ID, RAM_GPA, call, createRig, errno, type RigOptions } from './testing/rig.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const IOVA = 0x1000_0000;

/** A guest with a v2 table mapping IOVA → `gpa`, reached through a GCR3 table at PASID 0. */
function guest(r: ReturnType<typeof createRig>, gpa: number, perm = PERM_R | PERM_W) {
  const table = r.guestTable();
  table.map(IOVA, gpa, 4096, perm);
  const gcr3 = r.gcr3([[0, table.root]]);
  return { table, gcr3, gdte: { v: true, gv: true, giov: true, glx: 0, gcr3, domainId: 5 } };
}

/** A rig with the nested allocator and a vIOMMU on a nest parent of its IOAS. */
function nestedViommu(o: RigOptions = {}) {
  const r = createRig({ nested: true, ...o });
  return { r, v: r.viommu(r.nestParent()) };
}

describe('GET_HW_INFO (upstream, CONFIG_AMD_IOMMU_IOMMUFD=y)', () => {
  it('reports type AMD with the raw EFR/EFR2 for DEFAULT or AMD, EOPNOTSUPP for another type', () => {
    const r = createRig();
    const hw = r.hwInfo(64);
    expect(hw.out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_AMD);
    expect(hw.data_len).toBe(16);
    expect(U.iommu_hw_info_amd.decode(hw.data.subarray(0, 16))).toEqual({ efr: r.drv.hw.efr, efr2: r.drv.hw.efr2 });
    // GTSup 4, GIoSup 48 in EFR; GCR3TRPMode 3 in EFR2 (what a nest parent needs).
    expect((r.drv.hw.efr >> 4n) & 1n).toBe(1n);
    expect((r.drv.hw.efr >> 48n) & 1n).toBe(1n);
    expect(r.drv.hw.efr2 & 8n).toBe(8n);
    expect(hw.data.subarray(16, 64).every((b) => b === 0)).toBe(true);
    expect(r.hwInfo(16, U.IOMMU_HW_INFO_TYPE_AMD).out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_AMD);
    expect(errno(() => r.hwInfo(16, U.IOMMU_HW_INFO_TYPE_INTEL_VTD))).toBe('EOPNOTSUPP');
  });

  it('without the iommufd option: type NONE, data_len 0, and VIOMMU_ALLOC is EOPNOTSUPP', () => {
    const r = createRig({ iommufd: false });
    const hw = r.hwInfo(16);
    expect([hw.out_data_type, hw.data_len]).toEqual([U.IOMMU_HW_INFO_TYPE_NONE, 0]);
    expect(errno(() => r.viommu(r.nestParent()))).toBe('EOPNOTSUPP');
    // The type probe (get_viommu_size) comes before the parent lookup: a bad HWPT ID is still EOPNOTSUPP.
    expect(errno(() => r.viommu(0xdead))).toBe('EOPNOTSUPP');
    expect(errno(() => createRig().viommu(0xdead))).toBe('ENOENT');
  });
});

describe('paging domains (amd_iommu_domain_alloc_paging_flags)', () => {
  it('a plain attach gets a v1 domain: DTE V/TV/IR/IW, Mode 4, root, DomainID; DMA translates and faults after unmap', async () => {
    const r = createRig();
    r.attach(r.ioas);
    r.write(RAM_GPA + 0x3000, 'host page');
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(BigInt(RAM_GPA + 0x3000), 9))).toBe('host page');
    const dom = r.drv.device(DEV_ID)!.domain!;
    expect(dom.constructor.name).toBe('V1Domain');
    const q = r.drv.readDte(DEV_ID);
    expect(q[0]! & 0x6000_0000_0000_0e03n).toBe(0x6000_0000_0000_0803n); // IW, IR, Mode 4, TV, V
    expect(Number(q[1]! & 0xffffn)).toBe((dom as { domainId: number }).domainId);
    call(r.proc, r.fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: r.ioas, iova: BigInt(RAM_GPA), length: BigInt(4 << 20) });
    await expect(nic.dma.read(BigInt(RAM_GPA + 0x3000), 4)).rejects.toMatchObject({ code: 'EFAULT', message: expect.stringContaining('IO_PAGE_FAULT') });
    // The fault went to the event log (and the driver consumed and zeroed it).
    expect(r.drv.hostLog.at(-1)).toContain('code 0x2 device 0x310');
  });

  it('flags: NEST_PARENT ok; DIRTY_TRACKING without HDSup, PASID with another flag, unknown flags and vendor data EOPNOTSUPP', () => {
    const r = createRig();
    const alloc = (flags: number) => errno(() => call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas, flags }));
    expect(alloc(U.IOMMU_HWPT_ALLOC_NEST_PARENT)).toBeUndefined();
    expect(alloc(U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING)).toBe('EOPNOTSUPP');
    expect(alloc(U.IOMMU_HWPT_ALLOC_PASID | U.IOMMU_HWPT_ALLOC_NEST_PARENT)).toBe('EOPNOTSUPP');
    expect(alloc(U.IOMMU_HWPT_ALLOC_PASID)).toBeUndefined();
    expect(alloc(1 << 10)).toBe('EOPNOTSUPP');
    const data = r.proc.memory.alloc(32);
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      dev_id: r.devId, pt_id: r.ioas, data_type: U.IOMMU_HWPT_DATA_AMD_GUEST, data_len: 32, data_uptr: data.addr,
    }))).toBe('EOPNOTSUPP');
  });

  it('NEST_PARENT needs GTSup, GIoSup and GCR3TRPMode; DIRTY_TRACKING with HDSup is accepted', () => {
    for (const features of [{ gt: false }, { gio: false }, { gcr3trp: false }]) {
      const r = createRig({ features });
      expect(errno(() => r.nestParent())).toBe('EOPNOTSUPP');
    }
    const r = createRig({ features: { hd: true } });
    call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING });
  });

  it('a v2 (PASID) domain attached to the RID: GV + GIoV DTE through a host GCR3 table; DMA translates', async () => {
    const r = createRig();
    const hwpt = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas, flags: U.IOMMU_HWPT_ALLOC_PASID }).out_hwpt_id;
    r.attach(hwpt);
    const q = r.drv.readDte(DEV_ID);
    expect(q[0]! & (DTE_FLAG_GV | (1n << 54n))).toBe(DTE_FLAG_GV | (1n << 54n));
    r.write(RAM_GPA + 0x6000, 'v2 page');
    expect(text(await r.host.device('nic0').dma.read(BigInt(RAM_GPA + 0x6000), 7))).toBe('v2 page');
  });
});

describe('vIOMMU and IOMMU_HWPT_DATA_AMD_GUEST as upstream 7.2.13 (default)', () => {
  it('VIOMMU_ALLOC accepts any non-zero type on a nest parent; the vIOMMU can only be destroyed', () => {
    const r = createRig();
    const s2 = r.nestParent();
    const v = r.viommu(s2, 0x77);
    expect(v).toBeGreaterThan(0);
    // HWPT_ALLOC on the vIOMMU: no nested allocator → EOPNOTSUPP before the data is read.
    const { gdte } = guest(r, RAM_GPA + 0x10000);
    expect(errno(() => r.nested(v, gdte))).toBe('EOPNOTSUPP');
    // ... also with a bogus length (the data is never looked at).
    expect(errno(() => r.nested(v, gdte, { len: 8 }))).toBe('EOPNOTSUPP');
    // HWPT_ALLOC on the nest parent: no parent-based nested allocator either.
    expect(errno(() => r.nested(s2, gdte))).toBe('EOPNOTSUPP');
    // HWPT_INVALIDATE on the vIOMMU: no cache_invalidate.
    const buf = r.proc.memory.alloc(16);
    expect(errno(() => r.proc.ioctl(r.fd, U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate.encode({ hwpt_id: v, data_uptr: buf.addr, data_type: 1, entry_len: 16, entry_num: 1 })))).toBe('EOPNOTSUPP');
    // HW queues: none.
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, { size: 40, viommu_id: v, type: 2, index: 0, nesting_parent_iova: BigInt(RAM_GPA), length: 4096n }))).toBe('EOPNOTSUPP');
    // vEVENTQ succeeds generically for any non-zero type; the driver never reports into it.
    const evq = call(r.proc, r.fd, U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, { size: 32, viommu_id: v, type: 0x42, veventq_depth: 4 });
    expect(evq.out_veventq_id).toBeGreaterThan(0);
    r.proc.close(evq.out_veventq_fd);
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: evq.out_veventq_id });
    // vDEVICE succeeds generically (the driver never uses it); destroy order is the core's.
    const vdev = call(r.proc, r.fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: v, dev_id: r.devId, virt_id: 0x1234n }).out_vdevice_id;
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: vdev });
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: v });
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: s2 });
  });

  it('VIOMMU_ALLOC on a paging HWPT that is not a nest parent fails in the core', () => {
    const r = createRig();
    const plain = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas }).out_hwpt_id;
    expect(errno(() => r.viommu(plain))).toBe('EINVAL');
  });
});

describe('nested: true (the dormant nested.c allocator installed on the vIOMMU)', () => {
  it('end-to-end DMA: guest v2 table and GCR3 in guest RAM, every GPA through the host v1 stage-2', async () => {
    const { r, v } = nestedViommu();
    const g = guest(r, RAM_GPA + 0x10000);
    r.write(RAM_GPA + 0x10000, 'guest data');
    const hwpt = r.nested(v, g.gdte);
    r.attach(hwpt);
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(BigInt(IOVA + 0), 10))).toBe('guest data');
    await nic.dma.write(BigInt(IOVA + 0x20), new TextEncoder().encode('written'));
    expect(r.read(RAM_GPA + 0x10020, 7)).toBe('written');
    // Host DTE composition: GV forced, GIoV/GLX/GCR3/GPM copied, Mode + root from the parent, DomainID = hDomID.
    const q = r.drv.readDte(DEV_ID);
    const dom = r.drv.device(DEV_ID)!.domain as unknown as { hDomId: number; parent: { table: { root: number } } };
    expect(Number(q[0]! & 0x000f_ffff_ffff_f000n)).toBe(dom.parent.table.root);
    expect(Number((q[0]! >> 9n) & 7n)).toBe(4);
    expect(q[0]! & (DTE_FLAG_GV | (1n << 54n) | DTE_FLAG_V)).toBe(DTE_FLAG_GV | (1n << 54n) | DTE_FLAG_V);
    expect(Number(q[1]! & 0xffffn)).toBe(dom.hDomId);
    expect(dom.hDomId).not.toBe(5);
    const back = encodeDteQwords({ gcr3: g.gcr3 });
    expect([q[0]! & (7n << 58n), q[1]! & ~0xffffn & ~(1n << 32n)]).toEqual([back[0], back[1]]);
  });

  it('guest write to a read-only guest page faults; host read-only stage-2 also limits the guest', async () => {
    const { r, v } = nestedViommu();
    const g = guest(r, RAM_GPA + 0x10000, PERM_R);
    r.attach(r.nested(v, g.gdte));
    const nic = r.host.device('nic0');
    await nic.dma.read(BigInt(IOVA), 4);
    await expect(nic.dma.write(BigInt(IOVA), new Uint8Array(4))).rejects.toMatchObject({ code: 'EFAULT' });
    const ev = r.drv.hostLog.at(-1)!;
    expect(ev).toContain('code 0x2');
    expect(ev).toContain('flags 0x071'); // GN | PR | RW | PE
  });

  it('a guest GCR3 or table pointer outside guest RAM (not in the stage-2) faults cleanly', async () => {
    const { r, v } = nestedViommu();
    r.attach(r.nested(v, { v: true, gv: true, giov: true, gcr3: 0x7_0000_0000, domainId: 1 }));
    await expect(r.host.device('nic0').dma.read(BigInt(IOVA), 4)).rejects.toMatchObject({ code: 'EFAULT', message: expect.stringContaining('IO_PAGE_FAULT') });
  });

  it('guest DTE checks in the kernel order, with their errnos', () => {
    const { r, v } = nestedViommu();
    const ok = { v: true, gv: true, giov: true, gcr3: RAM_GPA, domainId: 1 };
    expect(errno(() => r.nested(v, { ...ok, mode: 4 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, { ...ok, hostRoot: 0x1000 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, { ...ok, gcr3: 0 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, { ...ok, gcr3: 0, gv: false }))).toBeUndefined(); // only V && GV needs a root
    expect(errno(() => r.nested(v, { ...ok, gpm: 2 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, { ...ok, glx: 3 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, { ...ok, gpm: 1 }))).toBe('EOPNOTSUPP'); // host has 4-level guest tables only
    expect(errno(() => r.nested(v, { ...ok, gpm: 2, mode: 1 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, ok, { len: 24 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, ok, { len: 40 }))).toBe('EINVAL');
    expect(errno(() => r.nested(v, ok, { type: U.IOMMU_HWPT_DATA_VTD_S1, len: 24 }))).toBe('EOPNOTSUPP');
    // Still no parent-based allocator: AMD_GUEST on the nest parent itself stays EOPNOTSUPP.
    expect(errno(() => r.nested(r.nestParent(), ok))).toBe('EOPNOTSUPP');
    // Unused guest bits are ignored (IR/IW, interrupt fields, u64[3]).
    expect(errno(() => r.nested(v, { ...ok, ir: true, iw: true, iv: true, intTabLen: 9, dw3: 0xffffn }))).toBeUndefined();
    // 5-level guests with a host that supports them.
    const r5 = createRig({ nested: true, features: { guest5Level: true } });
    expect(errno(() => r5.nested(r5.viommu(r5.nestParent()), { ...ok, gpm: 1 }))).toBeUndefined();
  });

  it('gDomIDs map to hDomIDs per vIOMMU: shared within one, distinct across vIOMMUs, freed with the last user', () => {
    const r = createRig({ nested: true });
    const s2 = r.nestParent();
    const v1 = r.viommu(s2);
    const v2 = r.viommu(s2);
    const ok = { v: true, gv: true, giov: true, gcr3: RAM_GPA, domainId: 9 };
    const a = r.nested(v1, ok);
    const b = r.nested(v1, ok);
    const c = r.nested(v2, ok);
    const drvAny = r.drv as unknown as { usedIds: Set<number> };
    const before = drvAny.usedIds.size;
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: a });
    expect(drvAny.usedIds.size).toBe(before); // b still holds gDomID 9 on v1
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: b });
    expect(drvAny.usedIds.size).toBe(before - 1);
    call(r.proc, r.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: c });
    expect(drvAny.usedIds.size).toBe(before - 2);
  });

  it('stage-2 unmap is flushed for every hDomID of every vIOMMU on the parent', async () => {
    const { r, v } = nestedViommu();
    const g = guest(r, RAM_GPA + 0x10000);
    r.write(RAM_GPA + 0x10000, 'before');
    r.attach(r.nested(v, g.gdte));
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(BigInt(IOVA), 6))).toBe('before');
    // Unmap the guest's target page from the stage-2: the cached nested translation must go.
    call(r.proc, r.fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: r.ioas, iova: BigInt(RAM_GPA), length: BigInt(4 << 20) });
    await expect(nic.dma.read(BigInt(IOVA), 6)).rejects.toMatchObject({ code: 'EFAULT' });
  });

  it('a guest remap stays stale (upstream has no guest invalidation path) through DTE rewrites, until a nested HWPT with a new gDomID', async () => {
    const { r, v } = nestedViommu();
    const g = guest(r, RAM_GPA + 0x10000);
    r.write(RAM_GPA + 0x10000, 'old');
    r.write(RAM_GPA + 0x11000, 'new');
    const h = r.nested(v, g.gdte);
    r.attach(h);
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('old');
    g.table.remap(IOVA, RAM_GPA + 0x11000, PERM_R | PERM_W);
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('old');
    // Via the IOAS and back: the DTE is rewritten twice, but nested_attach_device flushes only the
    // DTE, and the v1 attach flushes the paging domain, not the hDomID the stale entry is under.
    r.attach(r.ioas);
    r.attach(h);
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('old');
    // The same guest DTE again: same gDomID, same (shared) hDomID, still stale.
    r.attach(r.nested(v, g.gdte));
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('old');
    // A new gDomID maps to a new hDomID, under which nothing is cached.
    r.attach(r.nested(v, { ...g.gdte, domainId: 6 }));
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('new');
  });

  it('a second guest device cannot reach the first one\'s pages through its own vIOMMU domain', async () => {
    const { r, v } = nestedViommu({ second: true });
    const g = guest(r, RAM_GPA + 0x10000);
    r.write(RAM_GPA + 0x10000, 'secret');
    r.attach(r.nested(v, g.gdte));
    const nic1 = r.bind('nic1');
    // nic1 on a guest DTE with an empty GCR3 table (PASID 0 not valid).
    const empty = r.gcr3([]);
    r.attach(r.nested(v, { v: true, gv: true, giov: true, gcr3: empty, domainId: 6 }, { dev: nic1.devId }), nic1.dfd);
    await expect(r.host.device('nic1').dma.read(BigInt(IOVA), 6)).rejects.toMatchObject({ code: 'EFAULT' });
    expect(text(await r.host.device('nic0').dma.read(BigInt(IOVA), 6))).toBe('secret');
  });
});

describe('event log entries for faults', () => {
  it('writes IO_PAGE_FAULT entries the driver reads and zeroes', async () => {
    const r = createRig();
    r.attach(r.ioas);
    const log = r.drv.hw.eventLog;
    await expect(r.host.device('nic0').dma.read(0x10n, 4)).rejects.toMatchObject({ code: 'EFAULT' });
    expect(r.drv.hostLog.at(-1)).toMatch(/code 0x2 device 0x310 domain 0x\d+ pasid 0x0 address 0x10 flags 0x000/);
    const first = decodeEvent(r.host.physical.read(log.base, new Uint8Array(16)));
    expect(first.code).toBe(0); // consumed and cleared
    expect(EVENT_IO_PAGE_FAULT).toBe(2);
  });
});

describe('page requests (nested: true, fault-capable nested HWPT)', () => {
  function setupIopf() {
    const { r, v } = nestedViommu({ pri: true });
    const table = r.guestTable();
    const gcr3 = r.gcr3([[0, table.root], [3, table.root]]);
    const fault = call(r.proc, r.fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc);
    const data = r.proc.memory.alloc(32);
    data.bytes.set(encodeDteQwords({ v: true, gv: true, giov: true, ppr: true, gcr3, domainId: 2 }).flatMap((q) => [...new Uint8Array(new BigUint64Array([q]).buffer)]));
    const hwpt = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      dev_id: r.devId, pt_id: v, flags: U.IOMMU_HWPT_FAULT_ID_VALID, fault_id: fault.out_fault_id, data_type: U.IOMMU_HWPT_DATA_AMD_GUEST, data_len: 32, data_uptr: data.addr,
    }).out_hwpt_id;
    r.attach(hwpt);
    return { r, table, fault };
  }

  it('a guest miss with PASID becomes a page request; SUCCESS retries the DMA and COMPLETE_PPR_REQUEST carries the code', async () => {
    const { r, table, fault } = setupIopf();
    const page = r.galloc(4096);
    r.write(page, 'faulted in');
    const dma = r.host.device('nic0').dma.read(0x5000_0000n, 10, { pasid: 3 });
    await new Promise((res) => setImmediate(res));
    const rec = new Uint8Array(40);
    expect(r.proc.read(fault.out_fault_fd, rec)).toBe(40);
    const f = U.iommu_hwpt_pgfault.decode(rec);
    expect(f).toMatchObject({ dev_id: r.devId, pasid: 3, addr: 0x5000_0000n });
    expect(f.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID).toBe(U.IOMMU_PGFAULT_FLAGS_PASID_VALID);
    table.map(0x5000_0000, page, 4096, PERM_R | PERM_W);
    r.proc.write(fault.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: f.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }));
    expect(text(await dma)).toBe('faulted in');
    expect(r.drv.pprResponses.at(-1)).toEqual([DEV_ID, 3, f.grpid, 0]);
  });

  it('a PASID-less miss is a plain fault (the kernel never forwards PASID 0 page requests)', async () => {
    const { r, fault } = setupIopf();
    await expect(r.host.device('nic0').dma.read(0x5000_0000n, 4)).rejects.toMatchObject({ code: 'EFAULT' });
    expect(r.proc.read(fault.out_fault_fd, new Uint8Array(40))).toBe(0);
  });

  it('PPR log entries: PASID 0 or beyond the device range are answered FAILURE by the driver; others reach the fault queue with grpid = tag[8:0]', async () => {
    const { r, fault } = setupIopf();
    const dev = r.host.device('nic0').ddev;
    r.drv.raisePageRequest(dev, { pasid: 0, address: 0x6000_0000n, tag: 0x205 });
    r.drv.raisePageRequest(dev, { pasid: 1 << 8, address: 0x6000_0000n, tag: 0x206 });
    expect(r.drv.pprResponses).toEqual([[DEV_ID, 0, 5, 2], [DEV_ID, 256, 6, 2]]);
    r.drv.raisePageRequest(dev, { pasid: 3, address: 0x6000_0000n, write: true, tag: 0x207 });
    await new Promise((res) => setImmediate(res));
    const rec = new Uint8Array(40);
    expect(r.proc.read(fault.out_fault_fd, rec)).toBe(40);
    const f = U.iommu_hwpt_pgfault.decode(rec);
    expect(f).toMatchObject({ pasid: 3, grpid: 7, addr: 0x6000_0000n });
    expect(f.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE).toBe(U.IOMMU_PGFAULT_FLAGS_LAST_PAGE);
    expect(f.perm & U.IOMMU_PGFAULT_PERM_WRITE).toBe(U.IOMMU_PGFAULT_PERM_WRITE);
    r.proc.write(fault.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: f.cookie, code: U.IOMMUFD_PAGE_RESP_INVALID }));
    await new Promise((res) => setImmediate(res));
    expect(r.drv.pprResponses.at(-1)).toEqual([DEV_ID, 3, 7, U.IOMMUFD_PAGE_RESP_INVALID]);
    expect(r.drv.pprResponses.length).toBe(3);
  });
});

describe('hostile or buggy host commands', () => {
  it('an illegal command is refused with EIO, logged, skipped, and the queue keeps working', async () => {
    const r = createRig();
    r.attach(r.ioas);
    const bad = new Uint8Array(16);
    bad[7] = 0x90; // opcode 9
    expect(errno(() => r.drv.submitRaw(bad))).toBe('EIO');
    expect(r.drv.hostLog.at(-1)).toContain('code 0x5');
    r.write(RAM_GPA, 'still ok');
    expect(text(await r.host.device('nic0').dma.read(BigInt(RAM_GPA), 8))).toBe('still ok');
    // A COMPLETION_WAIT storing outside memory is illegal too.
    const cw = new Uint8Array(16);
    new DataView(cw.buffer).setUint32(0, 0xfff0_0001, true);
    new DataView(cw.buffer).setUint32(4, 0x1000_0fff, true);
    expect(errno(() => r.drv.submitRaw(cw))).toBe('EIO');
  });
});
