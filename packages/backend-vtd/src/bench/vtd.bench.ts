// Benchmarks of the VT-d model, each a ratio against a baseline measured in the same run (the same
// three as the SMMUv3 backend, so they can be reported side by side):
//   1. IOTLB-hit translations/s vs uncached nested walks/s (IOTLB dropped before every translation:
//      4-level first stage in guest RAM, every table fetch and the output through the 4-level
//      second stage);
//   2. guest invalidations/s through IOMMU_HWPT_INVALIDATE on the nested HWPT (dispatch, copy,
//      checks, P_IOTLB + wait descriptor through the invalidation queue), 1 entry per call as the
//      baseline, 32 per call, and the same P_IOTLB descriptors submitted by the host driver
//      directly (what the ioctl costs on top of the queue).
// Run: `pnpm bench` in this package (tsc --build, then node dist/bench/vtd.bench.js).
import { against, measure, printRatios, writeBenchResults } from '@viommu/bench-kit';
import * as U from '@viommu/uapi';
import { QI_EIOTLB_TYPE, type QiDescriptor } from '../formats/descriptors.js';
import { NO_PASID } from '../hw/vtd.js';
import { GUEST_RW, createRig } from '../testing/rig.js';

const PAGES = 256;
const SID = 0x0310;
const IOVA = 0x1_0000_0000;

const r = createRig({ ramBytes: 8 << 20 });
const s2 = r.nestParent();
const gt = r.guestTable();
const data = r.galloc(PAGES * 4096);
gt.map(IOVA, data, PAGES * 4096, GUEST_RW);
const nested = r.nested(s2, { pgtbl_addr: BigInt(gt.root) });
r.attach(nested);
const hw = r.drv.hw;

let page = 0;
for (let i = 0; i < PAGES; i++) if (hw.translate(SID, NO_PASID, IOVA + i * 4096, false) < 0) throw new Error('fault');
const hit = measure('IOTLB-hit translation', 1, () => {
  page = (page + 1) & (PAGES - 1);
  if (hw.translate(SID, NO_PASID, IOVA + page * 4096 + 8, false) < 0) throw new Error('fault');
});
const walk = measure('uncached nested walk (4-level FS, every table access and the output through 4-level SS)', 1, () => {
  page = (page + 1) & (PAGES - 1);
  hw.dropIotlb();
  if (hw.translate(SID, NO_PASID, IOVA + page * 4096 + 8, false) < 0) throw new Error('fault');
});

// Guest invalidations: one page each, cycling through the mapped range.
function hwptPath(batch: number) {
  const entries = r.proc.memory.alloc(24 * batch);
  for (let i = 0; i < batch; i++) {
    entries.bytes.set(U.iommu_hwpt_vtd_s1_invalidate.encode({ addr: BigInt(IOVA + (i % PAGES) * 4096), npages: 1n, flags: U.IOMMU_VTD_INV_FLAGS_LEAF, __reserved: 0 }), i * 24);
  }
  const inv = U.iommu_hwpt_invalidate.encode({ hwpt_id: nested, data_uptr: entries.addr, data_type: U.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, entry_len: 24, entry_num: batch });
  return () => {
    U.iommu_hwpt_invalidate.set(inv, 'entry_num', batch);
    r.proc.ioctl(r.fd, U.IOMMU_HWPT_INVALIDATE, inv);
  };
}
const did = r.drv.device(SID)!.domains.get(0)!.did;
const descs: QiDescriptor[] = Array.from({ length: 32 }, (_, i) => ({ type: QI_EIOTLB_TYPE, gran: 3, did, pasid: 0, am: 0, ih: true, addr: BigInt(IOVA + i * 4096) }));
const hw1 = measure('HWPT_INVALIDATE ioctl, 1 entry per call', 1, hwptPath(1));
const hw32 = measure('HWPT_INVALIDATE ioctl, 32 entries per call', 32, hwptPath(32));
const q32 = measure('host driver P_IOTLB descriptors, 32 per queue submission', 32, () => r.drv.submit(descs));

const results = [
  against(hit, walk),
  against(walk, walk),
  against(hw1, hw1),
  against(hw32, hw1),
  against(q32, hw32),
];
printRatios(results);
console.log(`wrote ${writeBenchResults(import.meta.url, 'vtd', { results })}`);
