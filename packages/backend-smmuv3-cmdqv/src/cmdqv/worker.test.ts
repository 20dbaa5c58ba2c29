// A guest vCPU in a worker thread drives a VCMDQ over SharedArrayBuffers — its RAM (the queue) and
// the mmapped VINTF page (PROD/CONS) — while the CMDQV hardware consumes in the host thread on the
// doorbell. No call crosses from the guest into the host: only memory stores and Atomics.notify.
import { describe, expect, it } from '@jest/globals';
import { Worker } from 'node:worker_threads';
import { DMA_READ, DOMAIN_NEST_PARENT, NO_PASID, TRANSLATE_OK, type Translation } from '@viommu/core';
import { IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV } from '@viommu/uapi';
import type { NestParentDomain } from '../driver/domains.js';
import { smmuv3Cmdqv } from '../driver/driver.js';
import type { SmmuMaster } from '../driver/master.js';
import type { TegraVsmmu } from '../driver/vsmmu.js';
import { CMDQ_OP_CMD_SYNC, CMDQ_OP_TLBI_NH_VA, encodeCommand } from '../formats/command.js';
import { STE_CFG_S1_TRANS, encodeSte } from '../formats/ste.js';
import { s1LeafAttrs } from '../pgtable/builder.js';
import { FakeHost, FakeViommuCore } from '../testing/fake-core.js';
import { Guest } from '../testing/rig.js';
import { VCMDQ_CONFIG, VCMDQ_CONS, VCMDQ_PROD } from './cmdqv.js';

// The guest side, plain JavaScript: write each batch into the ring, publish PROD, ring the
// doorbell, and wait for CONS to catch up before the next batch (as a guest driver's CMD_SYNC does).
const GUEST = `
const { workerData, parentPort } = require('node:worker_threads');
const { ram, ramOffset, regs, regsOffset, log2, batches } = workerData;
const ring = new Uint8Array(ram, ramOffset, 16 << log2);
const r = new Int32Array(regs, regsOffset, 0x4000);
const PROD = ${VCMDQ_PROD >> 2}, CONS = ${VCMDQ_CONS >> 2};
const wrap = (2 << log2) - 1, mask = (1 << log2) - 1;
let prod = Atomics.load(r, PROD);
for (const batch of batches) {
  for (let i = 0; i < batch.length; i += 16) {
    ring.set(batch.subarray(i, i + 16), (prod & mask) * 16);
    prod = (prod + 1) & wrap;
  }
  Atomics.store(r, PROD, prod);
  Atomics.notify(r, PROD);
  let cons;
  while (((cons = Atomics.load(r, CONS)) & wrap) !== prod) {
    if ((cons >>> 24) & 0x7f) { parentPort.postMessage({ error: (cons >>> 24) & 0x7f }); process.exit(0); }
    Atomics.wait(r, CONS, cons, 1000);
  }
}
parentPort.postMessage({ done: prod });
`;

describe('a guest thread driving a VCMDQ', () => {
  it('invalidates through the VCMDQ from a worker, with no call into the host', async () => {
    const host = new FakeHost();
    const drv = smmuv3Cmdqv({ name: 'smmu0' });
    drv.probe(host);
    const dev = drv.probeDevice({ name: 'nic0', rid: 0x100, pasidBits: 0, pri: false, ats: true }) as SmmuMaster;
    const s2 = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT) as NestParentDomain;
    const guest = new Guest(host.physical, 0x4000_0000, 4 << 20, s2.config.vmid, { domain: s2 });
    const core = new FakeViommuCore(1, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, s2);
    const viommu = drv.viommuInit({
      type: IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, dev, parent: s2, data: host.userData(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, new Uint8Array(16)), core,
    }) as TegraVsmmu;
    core.vdevs.set(1n, dev);
    const s1 = guest.s1Table();
    const pages = 64;
    const old = guest.alloc(pages * 4096);
    const fresh = guest.alloc(pages * 4096);
    for (let i = 0; i < pages; i++) {
      guest.write(old + i * 4096, new Uint8Array([0xaa]));
      guest.write(fresh + i * 4096, new Uint8Array([0xbb]));
    }
    s1.map(0x1000_0000, old, pages * 4096, s1LeafAttrs({ ap: 1 }));
    const cdTable = guest.cdTable();
    guest.writeCd(cdTable, 0, guest.cdFor(s1, 0x42));
    const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cdTable }).subarray(0, 16);
    drv.attach(dev, NO_PASID, viommu.allocNested(dev, 0, host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, vste)));
    const out: Translation = { pa: 0, length: 0, reason: '' };
    const byte = (i: number) => {
      expect(drv.translate(dev, NO_PASID, 0x1000_0000 + i * 4096, DMA_READ, out)).toBe(TRANSLATE_OK);
      return host.physical.read(out.pa, new Uint8Array(1))[0];
    };
    for (let i = 0; i < pages; i++) expect(byte(i)).toBe(0xaa);
    s1.unmap(0x1000_0000, pages * 4096);
    s1.map(0x1000_0000, fresh, pages * 4096, s1LeafAttrs({ ap: 1 }));
    for (let i = 0; i < pages; i++) expect(byte(i)).toBe(0xaa); // stale

    const log2 = 4; // a 16-entry ring: the 64 TLBIs and their SYNCs wrap it several times
    const qIpa = guest.alloc(16 << log2, 16 << log2);
    viommu.hwQueueInit({ type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 0, id: 1, baseIova: BigInt(qIpa), basePa: guest.pa(qIpa), length: 16 << log2, dependOn: () => {} });
    const regs = viommu.vintf.regs;
    Atomics.store(regs, VCMDQ_CONFIG >> 2, 1);
    drv.cmdqv!.startDoorbell();
    try {
      const batches: Uint8Array[] = [];
      for (let b = 0; b < pages / 8; b++) {
        const batch = new Uint8Array(9 * 16);
        for (let i = 0; i < 8; i++) batch.set(encodeCommand({ opcode: CMDQ_OP_TLBI_NH_VA, asid: 0x42, addr: 0x1000_0000 + (b * 8 + i) * 4096, leaf: true }), i * 16);
        batch.set(encodeCommand({ opcode: CMDQ_OP_CMD_SYNC }), 8 * 16);
        batches.push(batch);
      }
      const ramRun = host.physical.runAt(guest.pa(qIpa))!;
      const regsRun = host.physical.runAt(viommu.vintf.page0Pa)!;
      const worker = new Worker(GUEST, {
        eval: true,
        workerData: {
          ram: ramRun.bytes.buffer, ramOffset: ramRun.bytes.byteOffset + guest.pa(qIpa) - ramRun.firstFrame * 4096,
          regs: regsRun.bytes.buffer, regsOffset: regsRun.bytes.byteOffset + viommu.vintf.page0Pa - regsRun.firstFrame * 4096,
          log2, batches,
        },
      });
      const result = await new Promise<{ done?: number; error?: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      await worker.terminate();
      expect(result).toEqual({ done: (pages / 8) * 9 % 32 });
    } finally {
      drv.cmdqv!.stopDoorbell();
    }
    for (let i = 0; i < pages; i++) expect(byte(i)).toBe(0xbb);
    // A hang guard only (worker start-up on a loaded machine), not a performance assertion.
  }, 120_000);
});
