// Benchmarks of the SMMUv3 + CMDQV model, each reported as a ratio against a baseline measured in
// the same run (never compared with a stored number):
//   1. IOTLB-hit translations/s vs uncached nested walks/s (TLB flushed before every translation);
//   2. guest invalidation commands/s through a VCMDQ the hardware consumes directly (the guest's
//      PROD store in the mmapped VINTF page) vs through the IOMMU_HWPT_INVALIDATE ioctl of the
//      simulated host (dispatch, copy, convert, issue on the host queue with a CMD_SYNC), one
//      command per call and 32 per call.
// Run: `pnpm bench` in this package (tsc --build, then node dist/bench/smmu.bench.js).
import { against, measure, printRatios, writeBenchResults } from '@viommu/bench-kit';
import { createSimHost } from '@viommu/core';
import * as U from '@viommu/uapi';
import { VCMDQ_CONFIG, VCMDQ_PROD } from '../cmdqv/cmdqv.js';
import { smmuv3Cmdqv } from '../driver/driver.js';
import { CMDQ_OP_TLBI_NH_VA, encodeCommand } from '../formats/command.js';
import { STE_CFG_S1_TRANS, encodeSte } from '../formats/ste.js';
import { encodeCd } from '../formats/cd.js';
import { TableBuilder, s1LeafAttrs } from '../pgtable/builder.js';
import { NO_SSID } from '../smmu/smmu.js';
import { guestRam } from '../testing/guest-ram.js';

const RAM_IPA = 0x4000_0000;
const PAGES = 256;

// --- A Tegra241 guest through the simulated host and the iommufd uAPI (as src/e2e.test.ts).
const RAM_BYTES = 8 << 20;
const drv = smmuv3Cmdqv({ name: 'smmu0' });
const host = createSimHost({ iommus: [drv], devices: [{ name: 'nic0', iommu: 'smmu0', rid: 0x100, pasidBits: 0, ats: true }] });
const proc = host.spawn();
const fd = proc.open('/dev/iommu');
function call<C extends U.StructCodec>(req: number, codec: C, fields: Partial<ReturnType<C['decode']>>, target = fd) {
  const bytes = codec.encode(fields as never);
  proc.ioctl(target, req, bytes);
  return codec.decode(bytes) as ReturnType<C['decode']>;
}
const ram = proc.memory.alloc(RAM_BYTES);
const { alloc: galloc, tables } = guestRam(ram.bytes, RAM_IPA);
const s1 = new TableBuilder(tables, 12, 48, 0);
const ioas = call(U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, {}).out_ioas_id;
call(U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
  ioas_id: ioas, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
  user_va: ram.addr, length: BigInt(RAM_BYTES), iova: BigInt(RAM_IPA),
});
const dfd = proc.open(host.device('nic0').path);
const devId = call(U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }, dfd).out_devid;
const s2 = call(U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id;
const vdata = proc.memory.alloc(16);
const viommu = call(U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, {
  type: U.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, dev_id: devId, hwpt_id: s2, data_len: 16, data_uptr: vdata.addr,
}).out_viommu_id;
call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: viommu, dev_id: devId, virt_id: 1n });
const data = galloc(PAGES * 4096);
s1.map(0x1_0000_0000, data, PAGES * 4096, s1LeafAttrs({ ap: 1 }));
const cd = galloc(64, 64);
ram.bytes.set(encodeCd({ v: true, aa64: true, t0sz: 16, ips: 5, r: true, a: true, epd1: true, asid: 0x42, ttb0: s1.root }), cd - RAM_IPA);
const ste = proc.memory.alloc(16);
ste.bytes.set(encodeSte({ v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: cd }).subarray(0, 16));
const nested = call(U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: viommu, data_type: U.IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16, data_uptr: ste.addr }).out_hwpt_id;
call(U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: nested }, dfd);
const smmu = drv.smmu;
const SID = 0x100;

let page = 0;
for (let i = 0; i < PAGES; i++) smmu.translate(SID, NO_SSID, 0x1_0000_0000 + i * 4096, 0);
const hit = measure('IOTLB-hit translation', 1, () => {
  page = (page + 1) & (PAGES - 1);
  if (smmu.translate(SID, NO_SSID, 0x1_0000_0000 + page * 4096 + 8, 0) < 0) throw new Error('fault');
});
const walk = measure('uncached nested walk (4-level S1, every table access and the output through 4-level S2)', 1, () => {
  page = (page + 1) & (PAGES - 1);
  smmu.tlb.invalidateAll();
  if (smmu.translate(SID, NO_SSID, 0x1_0000_0000 + page * 4096 + 8, 0) < 0) throw new Error('fault');
});

// --- Guest invalidations: the same TLBI_NH_VA stream through each path.
const cmdBytes = (n: number) => Array.from({ length: n }, (_, i) => encodeCommand({ opcode: CMDQ_OP_TLBI_NH_VA, asid: 0x42, addr: 0x1_0000_0000 + (i % PAGES) * 4096, leaf: true }));
function hwptPath(batch: number) {
  const entries = proc.memory.alloc(16 * batch);
  cmdBytes(batch).forEach((c, i) => entries.bytes.set(c, i * 16));
  const inv = U.iommu_hwpt_invalidate.encode({ hwpt_id: viommu, data_uptr: entries.addr, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entry_len: 16, entry_num: batch });
  return () => {
    U.iommu_hwpt_invalidate.set(inv, 'entry_num', batch);
    proc.ioctl(fd, U.IOMMU_HWPT_INVALIDATE, inv);
  };
}
const LOG2 = 8; // 4 KiB: user memory is only page-aligned physically (a VMM would use a huge page)
const qIpa = galloc(16 << LOG2, 16 << LOG2);
call(U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, {
  viommu_id: viommu, type: U.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, index: 0, nesting_parent_iova: BigInt(qIpa), length: BigInt(16 << LOG2),
});
const pageMap = proc.mmap(fd, 0x10000, U.iommu_viommu_tegra241_cmdqv.decode(vdata.bytes).out_vintf_mmap_offset);
const regs = new Int32Array(pageMap.bytes.buffer, pageMap.bytes.byteOffset, 0x4000);
Atomics.store(regs, VCMDQ_CONFIG >> 2, 1);
// Pre-fill the whole ring with commands, so the guest side of each batch is only the PROD store.
cmdBytes(1 << LOG2).forEach((c, i) => ram.bytes.set(c, qIpa - RAM_IPA + i * 16));
let prod = 0;
function vcmdqPath(batch: number) {
  return () => {
    prod = (prod + batch) & ((2 << LOG2) - 1);
    Atomics.store(regs, VCMDQ_PROD >> 2, prod);
    drv.cmdqv!.service(); // what the doorbell wake-up runs
  };
}
const hw1 = measure('HWPT_INVALIDATE ioctl, 1 command per call', 1, hwptPath(1));
const q1 = measure('VCMDQ, 1 command per PROD', 1, vcmdqPath(1));
const hw32 = measure('HWPT_INVALIDATE ioctl, 32 commands per call', 32, hwptPath(32));
const q32 = measure('VCMDQ, 32 commands per PROD', 32, vcmdqPath(32));

const results = [
  against(hit, walk),
  against(walk, walk),
  against(q1, hw1),
  against(hw1, hw1),
  against(q32, hw32),
  against(hw32, hw32),
];
printRatios(results);
console.log(`wrote ${writeBenchResults(import.meta.url, 'smmu', { results })}`);
