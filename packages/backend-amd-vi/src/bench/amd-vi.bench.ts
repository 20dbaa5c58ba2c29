// Benchmarks of the AMD-Vi model, each a ratio against a baseline measured in the same run (the
// same three as the SMMUv3 and VT-d backends, so they can be reported side by side):
//   1. IOTLB-hit translations/s vs uncached nested walks/s (IOTLB dropped before every
//      translation: PASID 0 through GIoV, a one-level GCR3 table, a 4-level guest v2 table, every
//      guest address and the output through the 4-level host v1 table);
//   2. invalidations/s: upstream AMD has no guest invalidation uAPI (no HWPT_INVALIDATE), so these
//      are host-driver INVALIDATE_IOMMU_PAGES commands (GN, one page each) through the command
//      buffer, each submission ending in COMPLETION_WAIT: 1 per submission as the baseline, 32 per
//      submission, and a stage-2 IOAS unmap+map of one page (the flush fan-out to the hDomIDs).
// Run: `pnpm bench` in this package (tsc --build, then node dist/bench/amd-vi.bench.js).
import { against, measure, printRatios, writeBenchResults } from '@viommu/bench-kit';
import * as U from '@viommu/uapi';
import { CMD_INV_IOMMU_PAGES, type Command } from '../formats/commands.js';
import { NO_PASID } from '../hw/amd-vi.js';
import { PERM_R, PERM_W } from '../pgtable/table.js';
import { DEV_ID, createRig } from '../testing/rig.js';

const PAGES = 256;
const IOVA = 0x1_0000_0000;

const r = createRig({ nested: true, ramBytes: 8 << 20 });
const s2 = r.nestParent();
const v = r.viommu(s2);
const gt = r.guestTable();
const data = r.galloc(PAGES * 4096);
gt.map(IOVA, data, PAGES * 4096, PERM_R | PERM_W);
const gcr3 = r.gcr3([[0, gt.root]]);
r.attach(r.nested(v, { v: true, gv: true, giov: true, glx: 0, gcr3, domainId: 1 }));
const hw = r.drv.hw;
const hDomId = (r.drv.device(DEV_ID)!.domain as unknown as { hDomId: number }).hDomId;

let page = 0;
for (let i = 0; i < PAGES; i++) if (hw.translate(DEV_ID, NO_PASID, IOVA + i * 4096, false) < 0) throw new Error('fault');
const hit = measure('IOTLB-hit translation', 1, () => {
  page = (page + 1) & (PAGES - 1);
  if (hw.translate(DEV_ID, NO_PASID, IOVA + page * 4096 + 8, false) < 0) throw new Error('fault');
});
const walk = measure('uncached nested walk (GCR3 + 4-level v2, every guest access and the output through 4-level v1)', 1, () => {
  page = (page + 1) & (PAGES - 1);
  hw.dropIotlb();
  if (hw.translate(DEV_ID, NO_PASID, IOVA + page * 4096 + 8, false) < 0) throw new Error('fault');
});

const cmds = (n: number): Command[] => Array.from({ length: n }, (_, i) => ({
  op: CMD_INV_IOMMU_PAGES, domainId: hDomId, pasid: 0, s: false, pde: true, gn: true, address: BigInt(IOVA + (i % PAGES) * 4096),
}));
const c1 = cmds(1);
const c32 = cmds(32);
const inv1 = measure('INVALIDATE_IOMMU_PAGES, 1 per submission (+ COMPLETION_WAIT)', 1, () => r.drv.submit(c1));
const inv32 = measure('INVALIDATE_IOMMU_PAGES, 32 per submission (+ COMPLETION_WAIT)', 32, () => r.drv.submit(c32));
const buf = r.proc.memory.alloc(4096);
const unmap = U.iommu_ioas_unmap.encode({ ioas_id: r.ioas, iova: 0x2_0000_0000n, length: 4096n });
const map = U.iommu_ioas_map.encode({
  ioas_id: r.ioas, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, user_va: buf.addr, length: 4096n, iova: 0x2_0000_0000n,
});
r.proc.ioctl(r.fd, U.IOMMU_IOAS_MAP, map);
const s2flush = measure('stage-2 IOAS_UNMAP + IOAS_MAP of one page (flush to the parent and every hDomID)', 1, () => {
  r.proc.ioctl(r.fd, U.IOMMU_IOAS_UNMAP, unmap);
  r.proc.ioctl(r.fd, U.IOMMU_IOAS_MAP, map);
});

const results = [
  against(hit, walk),
  against(walk, walk),
  against(inv1, inv1),
  against(inv32, inv1),
  against(s2flush, inv1),
];
printRatios(results);
console.log(`wrote ${writeBenchResults(import.meta.url, 'amd-vi', { results })}`);
