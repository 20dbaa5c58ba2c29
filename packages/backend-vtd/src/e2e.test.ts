// End to end through the simulated host and the iommufd uAPI, as a VMM drives a VT-d guest: hw_info,
// a nest parent, a nested HWPT from iommu_hwpt_vtd_s1, DMA through the guest's first stage in its
// RAM and the host second stage, HWPT_INVALIDATE on the nested HWPT, PASID attach, and IOPF.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { FS_P, FS_US } from './pgtable/pte.js';
import { GUEST_RO, GUEST_RW, RAM_GPA, call, createRig, errno } from './testing/rig.js';

const U64_MAX = (1n << 64n) - 1n;
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('GET_HW_INFO', () => {
  it('reports INTEL_VTD with the erratum flag and the raw CAP/ECAP, for DEFAULT or INTEL_VTD only', () => {
    const r = createRig();
    const hw = r.hwInfo(64);
    expect(hw.out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_INTEL_VTD);
    expect(hw.data_len).toBe(24);
    const v = U.iommu_hw_info_vtd.decode(hw.data.subarray(0, 24));
    expect(v).toEqual({ flags: U.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, __reserved: 0, cap_reg: r.drv.hw.cap, ecap_reg: r.drv.hw.ecap });
    // ECAP.NEST (26), SMTS (43), FLTS (47), SLTS (46) set; PSS = 19 (20-bit PASIDs).
    for (const b of [26n, 43n, 46n, 47n]) expect((BigInt(v.ecap_reg) >> b) & 1n).toBe(1n);
    expect((BigInt(v.ecap_reg) >> 35n) & 0x1fn).toBe(19n);
    expect(hw.data.subarray(24, 64).every((x) => x === 0)).toBe(true); // the core zero-fills past the struct
    expect(r.hwInfo(24, U.IOMMU_HW_INFO_TYPE_INTEL_VTD).out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_INTEL_VTD);
    expect(errno(() => r.hwInfo(24, U.IOMMU_HW_INFO_TYPE_ARM_SMMUV3))).toBe('EOPNOTSUPP');
  });
});

describe('plain attach to an IOAS', () => {
  it('gets a first-stage domain (the kernel prefers it), translates, and faults after unmap', async () => {
    const r = createRig();
    r.attach(r.ioas);
    const nic = r.host.device('nic0');
    r.write(RAM_GPA + 0x3000, 'host page');
    expect(text(await nic.dma.read(BigInt(RAM_GPA + 0x3000), 9))).toBe('host page');
    const d = r.drv.device(0x0310)!.domains.get(0)!;
    expect(d.constructor.name).toBe('FsPagingDomain');
    call(r.proc, r.fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: r.ioas, iova: BigInt(RAM_GPA), length: BigInt(4 << 20) });
    await expect(nic.dma.read(BigInt(RAM_GPA + 0x3000), 4)).rejects.toMatchObject({ code: 'EFAULT', message: expect.stringContaining('DMAR_0x71') });
  });

  it('without first-stage support the domain is second stage (PGTT 2) and the same DMA works', async () => {
    const r = createRig({ features: { flts: false } });
    r.attach(r.ioas);
    r.write(RAM_GPA + 0x5000, 'ss page');
    expect(text(await r.host.device('nic0').dma.read(BigInt(RAM_GPA + 0x5000), 7))).toBe('ss page');
    expect(r.drv.device(0x0310)!.domains.get(0)!.constructor.name).toBe('SsPagingDomain');
  });
});

describe('nest parent and nested HWPT allocation', () => {
  it('refuses read-only mappings in an IOAS with a nest parent (ERRATA_772415_SPR17), and a parent over read-only areas', () => {
    const r = createRig();
    const s2 = r.nestParent();
    expect(s2).toBeGreaterThan(0);
    const buf = r.proc.memory.alloc(8192);
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      ioas_id: r.ioas, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE, user_va: buf.addr, length: 8192n, iova: 0x1000_0000n,
    }))).toBe('EINVAL');
    call(r.proc, r.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      ioas_id: r.ioas, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, user_va: buf.addr, length: 8192n, iova: 0x1000_0000n,
    });
    // A second IOAS with a read-only area: creating a nest parent over it fails.
    const ro = call(r.proc, r.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(r.proc, r.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      ioas_id: ro, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE, user_va: buf.addr, length: 8192n, iova: 0x1000_0000n,
    });
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: ro, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }))).toBe('EINVAL');
    // A plain (first-stage) HWPT takes read-only mappings.
    call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: ro });
  });

  it('applies the kernel checks and errnos of intel_iommu_domain_alloc_nested', () => {
    const r = createRig();
    const s2 = r.nestParent();
    const plain = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas }).out_hwpt_id;
    const data = r.proc.memory.alloc(32);
    data.bytes.set(U.iommu_hwpt_vtd_s1.encode({ addr_width: 48, pgtbl_addr: 0x1000n }));
    const alloc = (f: Partial<ReturnType<typeof U.iommu_hwpt_alloc.decode>>) =>
      errno(() => call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: s2, data_type: U.IOMMU_HWPT_DATA_VTD_S1, data_len: 24, data_uptr: data.addr, ...f }));
    expect(alloc({ flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT })).toBe('EOPNOTSUPP');
    expect(alloc({ data_type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16 })).toBe('EOPNOTSUPP');
    expect(alloc({ pt_id: plain })).toBe('EINVAL'); // parent is not a second-stage nest parent
    expect(alloc({ data_len: 16 })).toBe('EINVAL');
    expect(alloc({ data_len: 32 })).toBe('EINVAL'); // longer than the struct: EINVAL, not a zero-tail check
    expect(alloc({})).toBeUndefined();
    expect(alloc({ flags: U.IOMMU_HWPT_ALLOC_PASID })).toBeUndefined();
    // Nothing in the struct is checked at allocation: a bad width and reserved bits pass here.
    data.bytes.set(U.iommu_hwpt_vtd_s1.encode({ addr_width: 39, flags: 0xf0n, __reserved: 7 }));
    expect(alloc({})).toBeUndefined();
    // VT-d has no vIOMMU type: VIOMMU_ALLOC is EOPNOTSUPP.
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: U.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, dev_id: r.devId, hwpt_id: s2 }))).toBe('EOPNOTSUPP');
    // DIRTY_TRACKING needs second-stage A/D, which the default unit does not report.
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }))).toBe('EOPNOTSUPP');
  });

  it('EOPNOTSUPP for a nest parent on a unit without ECAP.NEST', () => {
    const r = createRig({ features: { nest: false } });
    expect(errno(() => r.nestParent())).toBe('EOPNOTSUPP');
  });
});

describe('nested DMA', () => {
  function nestedRig(o: Parameters<typeof createRig>[0] = {}) {
    const r = createRig(o);
    const s2 = r.nestParent();
    const gt = r.guestTable();
    const page = r.galloc(4096);
    r.write(page, 'guest data');
    gt.map(0x1234_5000, page, 4096, GUEST_RW);
    const nested = r.nested(s2, { pgtbl_addr: BigInt(gt.root) });
    return { ...r, s2, gt, page, nest: nested };
  }

  /**
   * Attaches the nested HWPT and reads the guest page once (caching its translation), then points
   * the guest's mapping at a new page holding 'moved data' without invalidating; returns the device.
   */
  async function attachThenRemap(r: ReturnType<typeof nestedRig>) {
    r.attach(r.nest);
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    const moved = r.galloc(4096);
    r.write(moved, 'moved data');
    r.gt.setLeaf(0x1234_5000, moved, GUEST_RW);
    return nic;
  }

  it('translates through the guest first stage and the host second stage to the right bytes', async () => {
    const r = nestedRig();
    r.attach(r.nest);
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(0x1234_5004n, 6))).toBe('t data');
    await nic.dma.write(0x1234_5000n, new TextEncoder().encode('DEVICE'));
    expect(text(r.ram.bytes.subarray(r.page - RAM_GPA, r.page - RAM_GPA + 10))).toBe('DEVICEdata');
    // Not mapped by the guest: EFAULT with the first-stage not-present reason.
    await expect(nic.dma.read(0x7777_0000n, 4)).rejects.toMatchObject({ code: 'EFAULT', message: expect.stringContaining('DMAR_0x71') });
    // Read-only in the guest: writes fault, reads work.
    const ro = r.galloc(4096);
    r.gt.map(0x2000_0000, ro, 4096, GUEST_RO);
    await expect(nic.dma.write(0x2000_0000n, new Uint8Array(4))).rejects.toMatchObject({ code: 'EFAULT', message: expect.stringContaining('DMAR_0x85') });
    expect((await nic.dma.read(0x2000_0000n, 4)).length).toBe(4);
  });

  it('walks a 5-level guest first stage (addr_width 57) on a unit with FS5LP', async () => {
    const r = createRig({ features: { fs5lp: true } });
    const s2 = r.nestParent();
    const gt = r.guestTable(5);
    const page = r.galloc(4096);
    r.write(page, 'five levels');
    // An IOVA above 2^48: only reachable with 5 levels.
    gt.map(0x1_2345_6789_a000, page, 4096, GUEST_RW);
    r.attach(r.nested(s2, { pgtbl_addr: BigInt(gt.root), addr_width: 57 }));
    expect(text(await r.host.device('nic0').dma.read(0x1_2345_6789_a000n, 11))).toBe('five levels');
    // The same table read as 4-level (addr_width 48): the address is not canonical there.
    r.attach(r.nested(s2, { pgtbl_addr: BigInt(gt.root), addr_width: 48 }));
    await expect(r.host.device('nic0').dma.read(0x1_2345_6789_a000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x80') });
  });

  it('keeps a stale translation until HWPT_INVALIDATE, per page and with the "all" encoding', async () => {
    const r = nestedRig();
    const nic = await attachThenRemap(r);
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data'); // IOTLB hit: stale
    // An invalidation of another page leaves it.
    expect(r.invalidate(r.nest, [{ addr: 0x5555_0000n, npages: 1n }])).toEqual({ entryNum: 1, error: undefined });
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    expect(r.invalidate(r.nest, [{ addr: 0x1234_5000n, npages: 1n, flags: U.IOMMU_VTD_INV_FLAGS_LEAF }])).toEqual({ entryNum: 1, error: undefined });
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('moved data');
    // "All": addr 0, npages U64_MAX.
    r.gt.setLeaf(0x1234_5000, r.page, GUEST_RW);
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('moved data');
    expect(r.invalidate(r.nest, [{ addr: 0n, npages: U64_MAX }])).toEqual({ entryNum: 1, error: undefined });
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
  });

  it('applies the invalidation entry rules: type, entry_num 0, flags, reserved, alignment, npages U64_MAX', () => {
    const r = nestedRig();
    r.attach(r.nest);
    const ok = { addr: 0x1000n, npages: 1n };
    expect(r.invalidate(r.nest, [], { entryNum: 0 })).toEqual({ entryNum: 0, error: undefined });
    expect(r.invalidate(r.nest, [ok], { type: 1 }).error).toBe('EINVAL');
    expect(r.invalidate(r.nest, [], { type: 1, entryNum: 0 }).error).toBe('EINVAL');
    expect(r.invalidate(r.nest, [ok, { addr: 0x1000n, npages: 1n, flags: 2 }])).toEqual({ entryNum: 1, error: 'EOPNOTSUPP' });
    expect(r.invalidate(r.nest, [{ addr: 0x1000n, npages: 1n, __reserved: 1 }])).toEqual({ entryNum: 0, error: 'EOPNOTSUPP' });
    expect(r.invalidate(r.nest, [ok, ok, { addr: 0x1800n, npages: 1n }])).toEqual({ entryNum: 2, error: 'EINVAL' });
    expect(r.invalidate(r.nest, [{ addr: 0x1000n, npages: U64_MAX }])).toEqual({ entryNum: 0, error: 'EINVAL' });
    expect(r.invalidate(r.nest, [ok], { entryLen: 16 })).toEqual({ entryNum: 0, error: 'EINVAL' });
    expect(r.invalidate(r.nest, [ok], { entryLen: 32 })).toEqual({ entryNum: 0, error: 'EINVAL' });
    // npages 0 is not refused: [addr, addr - 1] wraps as the kernel's 64-bit arithmetic does.
    expect(r.invalidate(r.nest, [{ addr: 0n, npages: 0n }, { addr: 0x1000n, npages: 0n }])).toEqual({ entryNum: 2, error: undefined });
    // A huge range (no overflow check) is accepted and becomes a whole-PASID flush.
    expect(r.invalidate(r.nest, [{ addr: 0x1000n, npages: 1n << 60n }])).toEqual({ entryNum: 1, error: undefined });
    // On the nest parent itself: neither a nested HWPT nor a vIOMMU, EINVAL (iommufd_hwpt_invalidate).
    expect(r.invalidate(r.s2, [ok]).error).toBe('EINVAL');
  });

  it('checks the stage-1 configuration at attach (addr_width, SRE, EAFE) and leaves the old domain working', async () => {
    const r = nestedRig({ features: { srs: false } });
    r.attach(r.nest);
    const nic = r.host.device('nic0');
    const bad = [
      r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root), addr_width: 39 }),
      r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root), addr_width: 57 }), // no FS5LP
      r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root), flags: BigInt(U.IOMMU_VTD_S1_SRE) }),
      r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root), flags: BigInt(U.IOMMU_VTD_S1_EAFE) }),
    ];
    for (const h of bad) expect(errno(() => r.attach(h))).toBe('EINVAL');
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    // WPE alone and unknown flag bits are ignored.
    r.attach(r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root), flags: BigInt(U.IOMMU_VTD_S1_WPE) | 0x100n, __reserved: 5 }));
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
  });

  it('a misaligned pgtbl_addr leaks into PASID-entry bits; reserved ones make DMA fault without harming others', async () => {
    const r = nestedRig();
    // Low bits 0x100 land in qword 2 bit 8: reserved in the PASID entry.
    r.attach(r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root) | 0x100n }));
    const nic = r.host.device('nic0');
    await expect(nic.dma.read(0x1234_5000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x5a') });
    expect(r.drv.hostLog.some((l) => l.includes('fault reason 0x5a'))).toBe(true);
    // Low bit 0x4 sets FSPM = 1 (5-level) on a unit without FS5LP: an invalid PASID entry.
    r.attach(r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root) | 0x4n }));
    await expect(nic.dma.read(0x1234_5000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x5b') });
    r.attach(r.nest);
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
  });

  it('a guest pointing its tables outside its RAM or at garbage faults cleanly', async () => {
    const r = nestedRig();
    const nic = r.host.device('nic0');
    // Root outside the stage-2 (GPA not mapped): a second-stage fault on the table fetch.
    r.attach(r.nested(r.s2, { pgtbl_addr: 0x7000_0000n }));
    await expect(nic.dma.read(0x1234_5000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x79') });
    // Reserved bits in a guest first-stage entry.
    const gt2 = r.guestTable();
    gt2.map(0x1000, r.page, 4096, GUEST_RW, 0x0010_0000 << 4);
    r.attach(r.nested(r.s2, { pgtbl_addr: BigInt(gt2.root) }));
    await expect(nic.dma.read(0x1000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x72') });
    // Supervisor-only page for a user request.
    const gt3 = r.guestTable();
    gt3.map(0x1000, r.page, 4096, FS_P);
    r.attach(r.nested(r.s2, { pgtbl_addr: BigInt(gt3.root) }));
    await expect(nic.dma.read(0x1000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x81') });
    // The output GPA outside guest RAM.
    const gt4 = r.guestTable();
    gt4.map(0x1000, 0x7fff_0000, 4096, FS_P | FS_US);
    r.attach(r.nested(r.s2, { pgtbl_addr: BigInt(gt4.root) }));
    await expect(nic.dma.read(0x1000n, 4)).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x79') });
    // None of it touched the parent: the good guest table still works.
    r.attach(r.nest);
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
  });

  it("one guest's hostile tables and invalidations never reach another domain's translations", async () => {
    const r = nestedRig({ secondDevice: true });
    r.attach(r.nest);
    // A second VM: its own IOAS with its own RAM, its own nest parent and nested domain, on nic1.
    const ram2 = r.proc.memory.alloc(1 << 20);
    const ioas2 = call(r.proc, r.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(r.proc, r.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      ioas_id: ioas2, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, user_va: ram2.addr, length: 1n << 20n, iova: 0n,
    });
    const dfd2 = r.proc.open(r.host.device('nic1').path);
    const dev2 = call(r.proc, dfd2, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: r.fd }).out_devid;
    const s2b = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev2, pt_id: ioas2, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id;
    // The hostile guest points its first stage at the *other* guest's table address (a GPA in its
    // own space: RAM_GPA is not mapped there) and maps page 0 to guest A's data GPA.
    const data = r.proc.memory.alloc(24);
    data.bytes.set(U.iommu_hwpt_vtd_s1.encode({ addr_width: 48, pgtbl_addr: BigInt(r.gt.root) }));
    const evil = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev2, pt_id: s2b, data_type: U.IOMMU_HWPT_DATA_VTD_S1, data_len: 24, data_uptr: data.addr }).out_hwpt_id;
    call(r.proc, dfd2, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: evil });
    await expect(r.host.device('nic1').dma.read(0x1234_5000n, 4)).rejects.toMatchObject({ code: 'EFAULT' });
    // Guest A's cached translation survives guest B's "invalidate everything".
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    const moved = r.galloc(4096);
    r.write(moved, 'moved data');
    r.gt.setLeaf(0x1234_5000, moved, GUEST_RW);
    expect(r.invalidate(evil, [{ addr: 0n, npages: U64_MAX }])).toEqual({ entryNum: 1, error: undefined });
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    // Guest A's own invalidation is what drops it.
    r.invalidate(r.nest, [{ addr: 0n, npages: U64_MAX }]);
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('moved data');
  });

  it('unmapping the parent flushes the nested translations that went through it', async () => {
    const r = nestedRig();
    r.attach(r.nest);
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    call(r.proc, r.fd, U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: r.ioas, iova: BigInt(RAM_GPA), length: BigInt(4 << 20) });
    await expect(nic.dma.read(0x1234_5000n, 4)).rejects.toMatchObject({ code: 'EFAULT' });
  });

  it('attaches nested domains at a PASID; each PASID has its own IOTLB tag', async () => {
    const r = nestedRig();
    const nested2 = r.nested(r.s2, { pgtbl_addr: BigInt(r.gt.root) }, U.IOMMU_HWPT_ALLOC_PASID);
    const gt = r.guestTable();
    const other = r.galloc(4096);
    r.write(other, 'pasid data');
    gt.map(0x1234_5000, other, 4096, GUEST_RW);
    const nestedP = r.nested(r.s2, { pgtbl_addr: BigInt(gt.root) }, U.IOMMU_HWPT_ALLOC_PASID);
    call(r.proc, r.dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: nested2 });
    call(r.proc, r.dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 5, pt_id: nestedP });
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    expect(text(await nic.dma.read(0x1234_5000n, 10, { pasid: 5 }))).toBe('pasid data');
    // Invalidating the RID's nested HWPT leaves PASID 5's translation cached.
    gt.setLeaf(0x1234_5000, r.page, GUEST_RW);
    r.invalidate(nested2, [{ addr: 0n, npages: U64_MAX }]);
    expect(text(await nic.dma.read(0x1234_5000n, 10, { pasid: 5 }))).toBe('pasid data');
    r.invalidate(nestedP, [{ addr: 0x1234_5000n, npages: 1n }]);
    expect(text(await nic.dma.read(0x1234_5000n, 10, { pasid: 5 }))).toBe('guest data');
    call(r.proc, r.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt, { flags: U.VFIO_DEVICE_DETACH_PASID, pasid: 5 });
    await expect(nic.dma.read(0x1234_5000n, 4, { pasid: 5 })).rejects.toMatchObject({ message: expect.stringContaining('DMAR_0x59') });
  });

  it('with ATS, the device-TLB is flushed by the user invalidation too', async () => {
    const r = nestedRig({ ats: true });
    const nic = await attachThenRemap(r);
    const hits = r.drv.hw.stats.devTlbHits;
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('guest data');
    expect(r.drv.hw.stats.devTlbHits).toBe(hits + 1);
    r.invalidate(r.nest, [{ addr: 0x1234_5000n, npages: 1n }]);
    expect(text(await nic.dma.read(0x1234_5000n, 10))).toBe('moved data');
  });
});

describe('dirty tracking (ECAP.SLADS)', () => {
  function bitmap(r: ReturnType<typeof createRig>, hwpt: number, iova: number, pages: number, flags = 0): number[] {
    const bits = r.proc.memory.alloc(8);
    call(r.proc, r.fd, U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, {
      hwpt_id: hwpt, flags, iova: BigInt(iova), length: BigInt(pages * 4096), page_size: 4096n, data: bits.addr,
    });
    const out: number[] = [];
    for (let i = 0; i < pages; i++) if ((bits.bytes[i >> 3]! >> (i & 7)) & 1) out.push(i);
    return out;
  }

  it('a second-stage domain records device writes in D bits while SSADE is on; clearing makes the next write walk again', async () => {
    const r = createRig({ features: { slads: true } });
    const hwpt = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: r.devId, pt_id: r.ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }).out_hwpt_id;
    r.attach(hwpt);
    const nic = r.host.device('nic0');
    await nic.dma.write(BigInt(RAM_GPA), new Uint8Array(4)); // before tracking: not recorded
    call(r.proc, r.fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await nic.dma.write(BigInt(RAM_GPA + 2 * 4096), new Uint8Array(4));
    await nic.dma.read(BigInt(RAM_GPA + 3 * 4096), 4);
    expect(bitmap(r, hwpt, RAM_GPA, 8)).toEqual([2]);
    expect(bitmap(r, hwpt, RAM_GPA, 8)).toEqual([]); // cleared
    // The IOTLB still holds the page as writable; the write walks again to set D.
    await nic.dma.write(BigInt(RAM_GPA + 2 * 4096), new Uint8Array(4));
    expect(bitmap(r, hwpt, RAM_GPA, 8, U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)).toEqual([2]);
    expect(bitmap(r, hwpt, RAM_GPA, 8)).toEqual([2]);
    call(r.proc, r.fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags: 0 });
    await nic.dma.write(BigInt(RAM_GPA + 5 * 4096), new Uint8Array(4));
    expect(bitmap(r, hwpt, RAM_GPA, 8)).toEqual([]);
  });

  it('a dirty-tracking nest parent records the guest-physical pages nested DMA writes', async () => {
    const r = createRig({ features: { slads: true } });
    const s2 = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      dev_id: r.devId, pt_id: r.ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    }).out_hwpt_id;
    const gt = r.guestTable();
    const page = r.galloc(4096);
    gt.map(0x1234_5000, page, 4096, GUEST_RW);
    r.attach(r.nested(s2, { pgtbl_addr: BigInt(gt.root) }));
    call(r.proc, r.fd, U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, { hwpt_id: s2, flags: U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await r.host.device('nic0').dma.write(0x1234_5000n, new Uint8Array(4));
    const pages = (4 << 20) / 4096;
    expect(bitmap(r, s2, RAM_GPA, pages).map((i) => RAM_GPA + i * 4096)).toEqual([page]);
  });
});

describe('IOPF through the fault queue', () => {
  it('a first-stage miss of a PRI device on a fault-capable nested HWPT becomes a page request; SUCCESS retries the DMA', async () => {
    const r = createRig({ pri: true });
    const s2 = r.nestParent();
    const gt = r.guestTable();
    const page = r.galloc(4096);
    r.write(page, 'faulted in');
    const fault = call(r.proc, r.fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc);
    const nested = r.nested(s2, { pgtbl_addr: BigInt(gt.root) }, 0, fault.out_fault_id);
    r.attach(nested);
    const nic = r.host.device('nic0');
    const dma = nic.dma.read(0x5000_0000n, 10);
    await new Promise((res) => setImmediate(res));
    const rec = new Uint8Array(40);
    expect(r.proc.read(fault.out_fault_fd, rec)).toBe(40);
    const f = U.iommu_hwpt_pgfault.decode(rec);
    expect(f).toMatchObject({ dev_id: r.devId, addr: 0x5000_0000n });
    expect(f.flags & U.IOMMU_PGFAULT_FLAGS_LAST_PAGE).toBe(U.IOMMU_PGFAULT_FLAGS_LAST_PAGE);
    // The guest maps the page (a fresh entry: nothing cached for it), then answers.
    gt.map(0x5000_0000, page, 4096, GUEST_RW);
    r.proc.write(fault.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: f.cookie, code: U.IOMMUFD_PAGE_RESP_SUCCESS }));
    expect(text(await dma)).toBe('faulted in');
    // The response went to the device as a page group response descriptor.
    expect(r.drv.deviceResponses.at(-1)).toEqual([0x0310, -1, 0, U.IOMMUFD_PAGE_RESP_SUCCESS]);
  });

  it('page requests from the PRQ reach the fault queue with PASID; bad ones are answered INVALID by the driver', async () => {
    const r = createRig({ pri: true });
    const s2 = r.nestParent();
    const gt = r.guestTable();
    const fault = call(r.proc, r.fd, U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc);
    const nested = r.nested(s2, { pgtbl_addr: BigInt(gt.root) }, U.IOMMU_HWPT_ALLOC_PASID, fault.out_fault_id);
    call(r.proc, r.dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 3, pt_id: nested });
    const dev = r.host.device('nic0').ddev;
    expect(r.drv.raisePageRequest(dev, { pasid: 3, addr: 0x6000_0000n, write: true, prgIndex: 7 })).toBe(true);
    await new Promise((res) => setImmediate(res));
    const rec = new Uint8Array(40);
    expect(r.proc.read(fault.out_fault_fd, rec)).toBe(40);
    const f = U.iommu_hwpt_pgfault.decode(rec);
    expect(f).toMatchObject({ pasid: 3, grpid: 7, addr: 0x6000_0000n });
    expect(f.flags & U.IOMMU_PGFAULT_FLAGS_PASID_VALID).toBe(U.IOMMU_PGFAULT_FLAGS_PASID_VALID);
    expect(f.perm & U.IOMMU_PGFAULT_PERM_WRITE).toBe(U.IOMMU_PGFAULT_PERM_WRITE);
    r.proc.write(fault.out_fault_fd, U.iommu_hwpt_page_response.encode({ cookie: f.cookie, code: U.IOMMUFD_PAGE_RESP_INVALID }));
    await new Promise((res) => setImmediate(res));
    expect(r.drv.deviceResponses.at(-1)).toEqual([0x0310, 3, 7, U.IOMMUFD_PAGE_RESP_INVALID]);
    // Privileged with read: answered INVALID by the driver, never reported.
    const before = r.drv.deviceResponses.length;
    r.drv.raisePageRequest(dev, { pasid: 3, addr: 0x6000_0000n, priv: true, prgIndex: 9 });
    expect(r.drv.deviceResponses.slice(before)).toEqual([[0x0310, 3, 9, U.IOMMUFD_PAGE_RESP_INVALID]]);
    // Stop marker: dropped, no response.
    r.drv.raisePageRequest(dev, { pasid: 3, addr: 0n, read: false, write: false, prgIndex: 10 });
    await new Promise((res) => setImmediate(res));
    expect(r.drv.deviceResponses.length).toBe(before + 1);
    expect(r.proc.read(fault.out_fault_fd, rec)).toBe(0);
  });

  it('a full page request queue drops requests (PRS.PRO) until the driver drains it', () => {
    const r = createRig({ pri: true });
    const dev = r.host.device('nic0').ddev;
    r.drv.hw.hooks.pageRequest = undefined; // the handler does not run: the queue fills
    const slots = r.drv.hw.prqSize / 32 - 1;
    for (let i = 0; i < slots; i++) expect(r.drv.raisePageRequest(dev, { addr: 0x1000n, lpig: false })).toBe(true);
    expect(r.drv.raisePageRequest(dev, { addr: 0x1000n })).toBe(false);
    expect(Number(r.drv.hw.readReg64(0xdc)) & 2).toBe(2);
  });
});
