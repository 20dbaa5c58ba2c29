// The hardware model through the driver API: every cache keeps a stale translation until the
// invalidation descriptor that covers it goes through the queue, and faults are recorded with the
// architectural reasons. Page tables are changed behind the IOMMU's back, as a buggy driver would.
import { describe, expect, it } from '@jest/globals';
import { createSimHost, DMA_READ, DMA_WRITE, DOMAIN_NEST_PARENT, NO_PASID, TRANSLATE_OK, type Translation } from '@viommu/core';
import {
  QI_CC_TYPE, QI_DEIOTLB_TYPE, QI_DIOTLB_TYPE, QI_EIOTLB_TYPE, QI_IOTLB_TYPE, QI_IWD_TYPE, QI_PC_TYPE, encodeQiDescriptor,
} from '../formats/descriptors.js';
import { FR_SM_CTX_NOT_PRESENT, FR_SM_FS_NOT_PRESENT, FR_SM_PASID_NOT_PRESENT } from '../formats/fault.js';
import { type VtdDevice } from '../driver/device.js';
import { type FsPagingDomain, type SsPagingDomain } from '../driver/domains.js';
import { vtd } from '../driver/driver.js';
import { FS_A, FS_P, FS_RW, FS_US, SS_R, SS_W } from '../pgtable/pte.js';
import { DMAR_FSTS_REG, FSTS_PFO, FSTS_PPF } from './regs.js';

const FS_LEAF = FS_P | FS_RW | FS_US | FS_A;

function setup(o: { ats?: boolean; features?: Parameters<typeof vtd>[0]['features'] } = {}) {
  const drv = vtd({ name: 'dmar0', features: o.features });
  const host = createSimHost({ iommus: [drv], devices: [{ name: 'd0', iommu: 'dmar0', rid: 0x0310, pasidBits: 8, ats: o.ats ?? false }] });
  const dev = host.device('d0').ddev as VtdDevice;
  const frames = [1, 2, 3].map(() => host.physical.allocRun(1).firstFrame * 4096);
  const out: Translation = { pa: 0, length: 0, reason: '' };
  const tr = (iova: number, pasid = NO_PASID, access = DMA_READ): number | string => {
    const rc = drv.translate(dev, pasid, iova, access, out);
    return rc === TRANSLATE_OK ? out.pa : out.reason;
  };
  return { drv, host, dev, frames, tr };
}

describe('caches stay stale until invalidated', () => {
  it('IOTLB of a second-stage domain: IOTLB invalidation (type 2), page-selective by DID', () => {
    const { drv, dev, frames: [a, b], tr } = setup();
    const d = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT) as SsPagingDomain;
    d.map(0x10_0000n, BigInt(a!), 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    expect(tr(0x10_0010)).toBe(a! + 0x10);
    d.table.setLeaf(0x10_0000, b!, SS_R | SS_W);
    expect(tr(0x10_0010)).toBe(a! + 0x10);
    drv.submit([{ type: QI_IOTLB_TYPE, gran: 3, dw: false, dr: false, did: d.did + 1, am: 0, ih: false, addr: 0x10_0000n }]);
    expect(tr(0x10_0010)).toBe(a! + 0x10); // another DID
    drv.submit([{ type: QI_EIOTLB_TYPE, gran: 2, did: d.did, pasid: 0, am: 0, ih: false, addr: 0n }]);
    expect(tr(0x10_0010)).toBe(a! + 0x10); // PASID-based invalidation leaves second-stage-only entries
    drv.submit([{ type: QI_IOTLB_TYPE, gran: 3, dw: false, dr: false, did: d.did, am: 0, ih: false, addr: 0x10_0000n }]);
    expect(tr(0x10_0010)).toBe(b! + 0x10);
  });

  it('IOTLB of a first-stage domain: PASID-based IOTLB invalidation (type 6) with address and mask', () => {
    const { drv, dev, frames: [a, b], tr } = setup();
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d.map(0x20_3000n, BigInt(a!), 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    expect(tr(0x20_3000)).toBe(a);
    d.table.setLeaf(0x20_3000, b!, FS_LEAF);
    drv.submit([{ type: QI_EIOTLB_TYPE, gran: 3, did: d.did, pasid: 0, am: 1, ih: false, addr: 0x20_0000n }]); // 0x200000-0x201fff
    expect(tr(0x20_3000)).toBe(a);
    drv.submit([{ type: QI_EIOTLB_TYPE, gran: 3, did: d.did, pasid: 0, am: 2, ih: true, addr: 0x20_0000n }]); // 0x200000-0x203fff
    expect(tr(0x20_3000)).toBe(b);
  });

  it('PASID cache: a rewritten PASID entry is used only after a PASID-cache invalidation (type 7)', () => {
    const { drv, host, dev, frames: [a, b], tr } = setup();
    const d1 = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    const d2 = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d1.map(0x1000n, BigInt(a!), 4096n, 3);
    d2.map(0x1000n, BigInt(b!), 4096n, 3);
    drv.attach(dev, NO_PASID, d1);
    expect(tr(0x1000)).toBe(a);
    // Point the RID_PASID entry at d2's table behind the hardware's back (same DID).
    const pe = drv.pasidEntryAddr(dev, 0, false)!;
    host.physical.writeU64(pe + 16, BigInt(d2.root));
    drv.submit([{ type: QI_EIOTLB_TYPE, gran: 2, did: d1.did, pasid: 0, am: 0, ih: false, addr: 0n }]);
    expect(tr(0x1000)).toBe(a); // walked again, through the cached PASID entry
    drv.submit([{ type: QI_PC_TYPE, gran: 1, did: d1.did, pasid: 0 }, { type: QI_EIOTLB_TYPE, gran: 2, did: d1.did, pasid: 0, am: 0, ih: false, addr: 0n }]);
    expect(tr(0x1000)).toBe(b);
  });

  it('context cache: a cleared context entry takes effect only after a context-cache invalidation (type 1)', () => {
    const { drv, host, dev, frames: [a], tr } = setup();
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d.map(0x1000n, BigInt(a!), 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    expect(tr(0x1000)).toBe(a);
    const root = Number(drv.hw.readReg64(0x20) & ~0xfffn);
    const ctxTable = host.physical.readU32(root + 3 * 16) & ~0xfff;
    host.physical.write(ctxTable + 0x10 * 32, new Uint8Array(32));
    expect(tr(0x1000)).toBe(a);
    drv.submit([{ type: QI_CC_TYPE, gran: 3, did: 0, sid: 0x0311, fm: 0 }]); // another device
    expect(tr(0x1000)).toBe(a);
    drv.submit([{ type: QI_CC_TYPE, gran: 3, did: 0, sid: 0x0310, fm: 0 }]);
    expect(tr(0x1000)).toMatch(/^DMAR_0x41/);
    expect(drv.hw.lastFault).toBe(FR_SM_CTX_NOT_PRESENT);
  });

  it('device-TLB (type 3): an ATS device keeps its translation after the IOTLB flush until the device-TLB is invalidated', () => {
    const { drv, dev, frames: [a, b], tr } = setup({ ats: true });
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d.map(0x1000n, BigInt(a!), 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    expect(tr(0x1000)).toBe(a);
    d.table.setLeaf(0x1000, b!, FS_LEAF);
    drv.submit([{ type: QI_EIOTLB_TYPE, gran: 2, did: d.did, pasid: 0, am: 0, ih: false, addr: 0n }]);
    expect(tr(0x1000)).toBe(a);
    drv.submit([{ type: QI_DIOTLB_TYPE, sid: 0x310, pfsid: 0x310, qdep: 0, size: false, addr: 0x1000n }]);
    expect(tr(0x1000)).toBe(b);
  });

  it('PASID-based device-TLB (type 8): only the named PASID is invalidated', () => {
    const { drv, dev, frames: [a, b], tr } = setup({ ats: true });
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d.map(0x1000n, BigInt(a!), 4096n, 3);
    drv.attach(dev, 5, d);
    drv.attach(dev, 6, d);
    expect([tr(0x1000, 5), tr(0x1000, 6)]).toEqual([a, a]);
    d.table.setLeaf(0x1000, b!, FS_LEAF);
    drv.submit([
      { type: QI_EIOTLB_TYPE, gran: 2, did: d.did, pasid: 5, am: 0, ih: false, addr: 0n },
      { type: QI_EIOTLB_TYPE, gran: 2, did: d.did, pasid: 6, am: 0, ih: false, addr: 0n },
      { type: QI_DEIOTLB_TYPE, sid: 0x310, pfsid: 0x310, qdep: 0, pasid: 5, global: false, size: false, addr: 0x1000n },
    ]);
    expect([tr(0x1000, 5), tr(0x1000, 6)]).toEqual([b, a]);
    expect(tr(0x1000, 7)).toMatch(/^DMAR_0x59/);
    expect(drv.hw.lastFault).toBe(FR_SM_PASID_NOT_PRESENT);
  });

  it('unmap through the domain flushes as the kernel does (no stale translation afterwards)', () => {
    const { drv, dev, frames: [a], tr } = setup({ ats: true });
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d.map(0x1000n, BigInt(a!), 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    expect(tr(0x1000)).toBe(a);
    expect(d.unmap(0x1000n, 4096n)).toBe(4096n);
    expect(tr(0x1000)).toMatch(/^DMAR_0x71/);
  });
});

describe('invalidation queue', () => {
  it('a wait descriptor writes its status word; an unknown descriptor stops the queue with IQE until cleared', () => {
    const { drv, host, frames: [a] } = setup();
    drv.submit([{ type: QI_IWD_TYPE, intr: false, sw: true, fence: false, pd: false, statusData: 0x1234_5678, statusAddr: BigInt(a!) }]);
    expect(host.physical.readU32(a!)).toBe(0x1234_5678);
    const bad = new Uint8Array(32);
    bad[0] = 0xf;
    expect(() => drv.submitRaw(bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    // The queue moves on after the driver skipped the bad descriptor.
    drv.submitRaw(encodeQiDescriptor({ type: QI_IWD_TYPE, intr: false, sw: true, fence: false, pd: false, statusData: 7, statusAddr: BigInt(a!) }));
    expect(host.physical.readU32(a!)).toBe(7);
    // Descriptors across the ring's wrap.
    for (let i = 0; i < 300; i++) drv.submit([{ type: QI_CC_TYPE, gran: 1, did: 0, sid: 0, fm: 0 }]);
    expect(drv.hw.stats.descriptors).toBeGreaterThan(600);
  });
});

describe('fault recording', () => {
  it('records reason, source-id, address and type, and sets FSTS.PPF; the driver logs and clears', () => {
    const { drv, dev, tr } = setup();
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    drv.attach(dev, NO_PASID, d);
    expect(tr(0x9000, NO_PASID, DMA_WRITE)).toMatch(/^DMAR_0x71/);
    expect(drv.hw.lastFault).toBe(FR_SM_FS_NOT_PRESENT);
    expect(drv.hostLog.at(-1)).toBe('DMAR: [DMA Write NO_PASID] Request device [3:2.0] fault addr 0x9000 [fault reason 0x71] DMAR_0x71_SM_FS_NOT_PRESENT');
    expect(Number(drv.hw.readReg64(DMAR_FSTS_REG)) & FSTS_PPF).toBe(0); // cleared by the handler
  });

  it('overflows (PFO) when every record is still pending', () => {
    const { drv, dev, tr } = setup({ features: { nfr: 2 } });
    drv.hw.hooks.fault = undefined; // nobody services the records
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    drv.attach(dev, NO_PASID, d);
    for (let i = 0; i < 3; i++) tr(0x9000 + i * 4096);
    expect(drv.hw.faultRecord(0)).toMatchObject({ f: true, addr: 0x9000n, sid: 0x310, reason: 0x71, read: true });
    expect(drv.hw.faultRecord(1)).toMatchObject({ f: true, addr: 0xa000n });
    expect(Number(drv.hw.readReg64(DMAR_FSTS_REG)) & (FSTS_PFO | FSTS_PPF)).toBe(FSTS_PFO | FSTS_PPF);
  });
});

describe('device lifetime', () => {
  it('releasing a device and freeing its domains gives every frame back', () => {
    const { drv, host, dev } = setup({ ats: true });
    const before = host.physical.allocatedFrameCount;
    const d = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    d.map(0x1000n, 0x10_0000n, 4096n, 3);
    drv.attach(dev, NO_PASID, d);
    drv.attach(dev, 200, d); // a second PASID table
    expect(host.physical.allocatedFrameCount).toBeGreaterThan(before);
    drv.attach(dev, NO_PASID, null);
    drv.attach(dev, 200, null);
    d.free();
    host.removeDevice('d0');
    // The domain's tables, both PASID tables and the device's one-frame PASID directory are gone
    // (the bus's context table stays).
    expect(host.physical.allocatedFrameCount).toBe(before - 1);
    expect(drv.device(0x310)).toBeUndefined();
  });
});

describe('snoop control (enforce_cache_coherency)', () => {
  it('first stage: PGSNP set in the attached RID PASID entry; second stage: SNP in leaves mapped afterwards; refused without ECAP.SC', () => {
    const { drv, host, dev } = setup();
    expect(dev.enforceCacheCoherency).toBe(true);
    const fs = drv.allocPagingDomain(dev, 0) as FsPagingDomain;
    drv.attach(dev, NO_PASID, fs);
    const pe = drv.pasidEntryAddr(dev, 0, false)!;
    expect((host.physical.readU32(pe + 8) >>> 24) & 1).toBe(0);
    expect(fs.enforceCacheCoherency()).toBe(true);
    expect((host.physical.readU32(pe + 8) >>> 24) & 1).toBe(1);
    const ss = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT) as SsPagingDomain;
    ss.map(0x1000n, 0x20_0000n, 4096n, 3);
    expect(ss.enforceCacheCoherency()).toBe(true);
    ss.map(0x2000n, 0x20_1000n, 4096n, 3);
    expect(host.physical.readU32(ss.table.leafEntry(0x1000)!) & 0x800).toBe(0);
    expect(host.physical.readU32(ss.table.leafEntry(0x2000)!) & 0x800).toBe(0x800);

    const other = setup({ features: { sc: false } });
    expect(other.dev.enforceCacheCoherency).toBe(false);
    expect((other.drv.allocPagingDomain(other.dev, 0) as FsPagingDomain).enforceCacheCoherency()).toBe(false);
  });
});
