// Benchmarks of the SMMUv3 + CMDQV model, each reported as a ratio against a baseline measured in
// the same run (never compared with a stored number):
//   1. IOTLB-hit translations/s vs uncached nested walks/s (TLB flushed before every translation);
//   2. guest invalidation commands/s through a VCMDQ the hardware consumes directly vs through
//      the HWPT_INVALIDATE path (the driver's cacheInvalidate: copy, convert, issue on the host
//      queue with a CMD_SYNC), one command per call and in batches.
// Run: `pnpm bench` in this package (tsc --build, then node dist/bench/smmu.bench.js).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOMAIN_NEST_PARENT, NO_PASID } from '@viommu/core';
import { IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV } from '@viommu/uapi';
import { VCMDQ_CONFIG, VCMDQ_PROD } from '../cmdqv/cmdqv.js';
import type { NestParentDomain } from '../driver/domains.js';
import { smmuv3Cmdqv } from '../driver/driver.js';
import type { SmmuMaster } from '../driver/master.js';
import type { TegraVsmmu } from '../driver/vsmmu.js';
import { CMDQ_OP_TLBI_NH_VA, encodeCommand } from '../formats/command.js';
import { STE_CFG_S1_TRANS, encodeSte } from '../formats/ste.js';
import { s1LeafAttrs } from '../pgtable/builder.js';
import { NO_SSID } from '../smmu/smmu.js';
import { FakeHost, FakeViommuCore } from '../testing/fake-core.js';
import { Guest } from '../testing/rig.js';

const RAM_IPA = 0x4000_0000;
const PAGES = 256;

function measure(name: string, opsPerCall: number, fn: () => void, minMs = 400): { name: string; opsPerSec: number } {
  for (let i = 0; i < 200; i++) fn(); // warm-up
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
    now = performance.now();
  }
  return { name, opsPerSec: (calls * opsPerCall * 1000) / (now - start) };
}

// --- A Tegra241 guest with a nested domain over 4-level guest tables.
const host = new FakeHost();
const drv = smmuv3Cmdqv({ name: 'smmu0' });
drv.probe(host);
const dev = drv.probeDevice({ name: 'nic0', rid: 0x100, pasidBits: 0, pri: false, ats: true }) as SmmuMaster;
const s2 = drv.allocPagingDomain(dev, DOMAIN_NEST_PARENT) as NestParentDomain;
const guest = new Guest(host.physical, RAM_IPA, 8 << 20, s2.config.vmid, { domain: s2 });
const core = new FakeViommuCore(1, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, s2);
const viommu = drv.viommuInit({
  type: IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, dev, parent: s2, data: host.userData(IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, new Uint8Array(16)), core,
}) as TegraVsmmu;
core.vdevs.set(1n, dev);
viommu.vdeviceInit({ dev, virtId: 1n });
const s1 = guest.s1Table();
const data = guest.alloc(PAGES * 4096, 4096);
s1.map(0x1_0000_0000, data, PAGES * 4096, s1LeafAttrs({ ap: 1 }));
const cdTable = guest.cdTable();
guest.writeCd(cdTable, 0, guest.cdFor(s1, 0x42));
const vste = encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cdTable }).subarray(0, 16);
drv.attach(dev, NO_PASID, viommu.allocNested(dev, 0, host.userData(IOMMU_HWPT_DATA_ARM_SMMUV3, vste)));
const smmu = drv.smmu;

let page = 0;
for (let i = 0; i < PAGES; i++) smmu.translate(dev.sid, NO_SSID, 0x1_0000_0000 + i * 4096, 0);
const hit = measure('IOTLB-hit translation', 1, () => {
  page = (page + 1) & (PAGES - 1);
  if (smmu.translate(dev.sid, NO_SSID, 0x1_0000_0000 + page * 4096 + 8, 0) < 0) throw new Error('fault');
});
const walk = measure('uncached nested walk (4-level S1, every table access and the output through 4-level S2)', 1, () => {
  page = (page + 1) & (PAGES - 1);
  smmu.tlb.invalidateAll();
  if (smmu.translate(dev.sid, NO_SSID, 0x1_0000_0000 + page * 4096 + 8, 0) < 0) throw new Error('fault');
});

// --- Guest invalidations: the same TLBI_NH_VA stream through each path.
const cmdBytes = (n: number) => Array.from({ length: n }, (_, i) => encodeCommand({ opcode: CMDQ_OP_TLBI_NH_VA, asid: 0x42, addr: 0x1_0000_0000 + (i % PAGES) * 4096, leaf: true }));
function hwptPath(batch: number) {
  const array = host.userArray(IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, 16, cmdBytes(batch));
  return () => {
    array.entryNum = batch;
    viommu.cacheInvalidate(array);
  };
}
const LOG2 = 12;
const qIpa = guest.alloc(16 << LOG2, 16 << LOG2);
viommu.hwQueueInit({ type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 0, id: 1, baseIova: BigInt(qIpa), basePa: guest.pa(qIpa), length: 16 << LOG2 });
const regs = viommu.vintf.regs;
Atomics.store(regs, VCMDQ_CONFIG >> 2, 1);
// Pre-fill the whole ring with commands, so the guest side of each batch is only the PROD store.
const ring = cmdBytes(1 << LOG2);
ring.forEach((c, i) => guest.write(qIpa + i * 16, c));
let prod = 0;
function vcmdqPath(batch: number) {
  return () => {
    prod = (prod + batch) & ((2 << LOG2) - 1);
    Atomics.store(regs, VCMDQ_PROD >> 2, prod);
    drv.cmdqv!.service(); // what the doorbell wake-up runs
  };
}
const hw1 = measure('HWPT_INVALIDATE, 1 command per call', 1, hwptPath(1));
const q1 = measure('VCMDQ, 1 command per PROD', 1, vcmdqPath(1));
const hw32 = measure('HWPT_INVALIDATE, 32 commands per call', 32, hwptPath(32));
const q32 = measure('VCMDQ, 32 commands per PROD', 32, vcmdqPath(32));

const results = [
  { ...hit, baseline: walk.name, ratio: hit.opsPerSec / walk.opsPerSec },
  { ...walk, baseline: walk.name, ratio: 1 },
  { ...q1, baseline: hw1.name, ratio: q1.opsPerSec / hw1.opsPerSec },
  { ...hw1, baseline: hw1.name, ratio: 1 },
  { ...q32, baseline: hw32.name, ratio: q32.opsPerSec / hw32.opsPerSec },
  { ...hw32, baseline: hw32.name, ratio: 1 },
];
for (const r of results) {
  console.log(`${r.name.padEnd(100)} ${Math.round(r.opsPerSec).toString().padStart(10)} /s   x${r.ratio.toFixed(2)} vs ${r.baseline === r.name ? '(baseline)' : r.baseline}`);
}
const out = join(dirname(fileURLToPath(import.meta.url)), '../../bench-results/smmu.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2));
console.log(`wrote ${out}`);
