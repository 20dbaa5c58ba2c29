// Benchmarks of the vIOMMU family (issue 4). Run from packages/core:
//   tsc -b src/viommu/tsconfig.bench.json && node dist/viommu/viommu.bench.js
// 1. Invalidation entries per second through IOMMU_HWPT_INVALIDATE on a vIOMMU (the selftest
//    vIOMMU's cache invalidation), batches of 1, 64 and 4096 entries; baseline: the same arrays
//    handed straight to the driver's invalidator, so the ratio is what the ioctl path costs.
// 2. vEVENTs produced (by the driver, through the vIOMMU) and read (through the vEVENTQ fd, 64 per
//    read) per second; baseline: the same through a bare @viommu/fault VeventQueue.
// 3. IOPF round trips per second — page request raised by the driver, read from the FAULT fd,
//    answered by a write, response delivered — with p50/p99 latency; baseline: the same with a
//    bare FaultQueue and IopfDevice (no core, no fds).
// Results go to bench-results/viommu.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import { FaultQueue, IopfDevice, VeventQueue, type FaultGroup, type PageRequest as FaultRequest } from '@viommu/fault';
import * as U from '@viommu/uapi';
import type { DriverHost, UserDataArray } from '../driver/driver.js';
import { createSimHost } from '../host/sim-host.js';
import { OBJ } from '../object/object.js';
import { mockIommu } from '../selftest/index.js';
import { Kit } from './scenario-kit.js';
import type { Viommu } from './viommu.js';

/** Runs `op` (which does `per` units of work) for about `ms` ms after a warm-up; returns units per second. */
function rate(op: () => void, per: number, ms = 700): number {
  for (let i = 0; i < 5; i++) op();
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    op();
    n += per;
    elapsed = process.hrtime.bigint() - start;
  }
  return (n * 1e9) / Number(elapsed);
}

/**
 * Measures `a` and `b` alternately three times and keeps each one's best rate: on a shared,
 * loaded machine the best of interleaved rounds is the fairest ratio.
 */
function pair(a: () => void, b: () => void, per: number): [number, number] {
  let ra = 0;
  let rb = 0;
  for (let round = 0; round < 3; round++) {
    ra = Math.max(ra, rate(a, per, 300));
    rb = Math.max(rb, rate(b, per, 300));
  }
  return [ra, rb];
}

function world() {
  const host = createSimHost({ iommus: [mockIommu({ name: 'mock0' })], devices: [{ name: 'dev0', iommu: 'mock0', rid: 0x10, pri: true }] });
  const p = host.spawn();
  const fd = p.open('/dev/iommu');
  const k = new Kit(p, fd);
  const dfd = p.open(host.device('dev0').path);
  const bind = U.vfio_device_bind_iommufd.encode({ argsz: U.vfio_device_bind_iommufd.size, iommufd: fd });
  p.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bind);
  const devId = U.vfio_device_bind_iommufd.get(bind, 'out_devid');
  const attach = (ptId: number) => p.ioctl(dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt.encode({ argsz: 16, pt_id: ptId }));
  const ioas = k.ioasAlloc();
  attach(ioas);
  const s2 = k.hwptAlloc(devId, ioas, U.IOMMU_HWPT_ALLOC_NEST_PARENT);
  const vid = k.viommuAlloc(devId, s2);
  k.vdeviceAlloc(vid, devId, 0x99);
  const ctx = [...host.contexts][0]!;
  const viommu = ctx.objects.get<Viommu>(vid, OBJ.VIOMMU);
  return { host, p, fd, k, devId, attach, ioas, s2, vid, viommu };
}

function invalidation() {
  const w = world();
  const E = U.iommu_viommu_invalidate_selftest;
  const out: { batch: number; entriesPerSec: number; baselinePerSec: number; ratio: number }[] = [];
  for (const batch of [1, 64, 4096]) {
    const mem = w.p.memory.alloc(batch * E.size);
    for (let i = 0; i < batch; i++) E.encode({ flags: 0, vdev_id: 0x99, cache_id: i & 3 }, mem.bytes, i * E.size);
    const cmd = U.iommu_hwpt_invalidate.encode({ hwpt_id: w.vid, data_uptr: mem.addr, data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entry_len: E.size, entry_num: batch });
    const impl = w.viommu.impl!;
    const array: UserDataArray = { type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, uptr: mem.addr, entryLen: E.size, entryNum: batch, memory: w.p.memory as never };
    const [viaIoctl, direct] = pair(
      () => {
        U.iommu_hwpt_invalidate.set(cmd, 'entry_num', batch);
        w.p.ioctl(w.fd, U.IOMMU_HWPT_INVALIDATE, cmd);
      },
      () => {
        array.entryNum = batch;
        impl.cacheInvalidate!(array);
      },
      batch,
    );
    if (U.iommu_hwpt_invalidate.get(cmd, 'entry_num') !== batch) throw new Error('invalidation did not handle every entry');
    out.push({ batch, entriesPerSec: Math.round(viaIoctl), baselinePerSec: Math.round(direct), ratio: +(viaIoctl / direct).toFixed(3) });
  }
  return out;
}

function vevents() {
  const w = world();
  const q = w.k.veventqAlloc(w.vid, 1024);
  const payload = U.iommu_viommu_event_selftest.encode({ virt_id: 0x99 });
  const BATCH = 64;
  const buf = new Uint8Array(BATCH * 12);
  const core = w.viommu.core;
  const bare = new VeventQueue({ depth: 1024 });
  const [viaFd, direct] = pair(
    () => {
      for (let i = 0; i < BATCH; i++) core.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, payload);
      if (w.p.read(q.fd, buf) !== buf.length) throw new Error('short vEVENT read');
    },
    () => {
      for (let i = 0; i < BATCH; i++) bare.report(payload);
      if (bare.read(buf) !== buf.length) throw new Error('short vEVENT read');
    },
    BATCH,
  );
  return { batch: BATCH, eventsPerSec: Math.round(viaFd), baselinePerSec: Math.round(direct), ratio: +(viaFd / direct).toFixed(3) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function iopf() {
  const w = world();
  const f = w.k.faultAlloc();
  const hwpt = w.k.hwptAlloc(w.devId, w.ioas, U.IOMMU_HWPT_FAULT_ID_VALID, { faultId: f.id });
  w.attach(hwpt);
  const ddev = w.host.device('dev0').ddev;
  const host = w.host as unknown as DriverHost;
  const rec = new Uint8Array(40);
  const resp = new Uint8Array(8);
  const req = { pasid: 0, addr: 0x1000n, perm: U.IOMMU_PGFAULT_PERM_READ, grpid: 1, last: true };
  const N = 20000;

  const roundTrip = async () => {
    const answered = host.reportPageRequest(ddev, req);
    if (w.p.read(f.fd, rec) !== 40) throw new Error('no fault record');
    U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.get(rec, 'cookie'), code: 0 }, resp);
    w.p.write(f.fd, resp);
    if ((await answered) !== 0) throw new Error('bad page response');
  };
  const lat: number[] = [];
  for (let i = 0; i < 200; i++) await roundTrip();
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    await roundTrip();
    lat.push(Number(process.hrtime.bigint() - t0));
  }
  const total = Number(process.hrtime.bigint() - start);

  // Baseline: the queue machinery alone.
  const queue = new FaultQueue();
  let settle: ((code: number) => void) | undefined;
  const dev = new IopfDevice<FaultRequest>((_r, code, _g: FaultGroup | undefined) => settle?.(code));
  const handle = { devId: 1, queue };
  const freq: FaultRequest = { flags: 2, pasid: 0, grpid: 1, perm: 1, addr: 0x1000n };
  const bareTrip = async () => {
    const answered = new Promise<number>((r) => (settle = r));
    dev.report(freq, handle);
    queue.read(rec);
    U.iommu_hwpt_page_response.encode({ cookie: U.iommu_hwpt_pgfault.get(rec, 'cookie'), code: 0 }, resp);
    queue.write(resp);
    await answered;
  };
  for (let i = 0; i < 200; i++) await bareTrip();
  const bstart = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await bareTrip();
  const btotal = Number(process.hrtime.bigint() - bstart);

  lat.sort((a, b) => a - b);
  const perSec = (N * 1e9) / total;
  const basePerSec = (N * 1e9) / btotal;
  return {
    roundTripsPerSec: Math.round(perSec),
    p50us: +(percentile(lat, 50) / 1000).toFixed(2),
    p99us: +(percentile(lat, 99) / 1000).toFixed(2),
    baselinePerSec: Math.round(basePerSec),
    ratio: +(perSec / basePerSec).toFixed(3),
  };
}

const results = { invalidation: invalidation(), vevents: vevents(), iopf: await iopf() };
for (const r of results.invalidation) {
  console.log(`HWPT_INVALIDATE batch ${String(r.batch).padStart(4)}: ${r.entriesPerSec.toLocaleString()} entries/s (driver alone ${r.baselinePerSec.toLocaleString()}/s, ratio ${r.ratio})`);
}
const v = results.vevents;
console.log(`vEVENT produce+read via fd: ${v.eventsPerSec.toLocaleString()} events/s (bare queue ${v.baselinePerSec.toLocaleString()}/s, ratio ${v.ratio})`);
const i = results.iopf;
console.log(`IOPF raise->read->respond: ${i.roundTripsPerSec.toLocaleString()} round trips/s, p50 ${i.p50us} us, p99 ${i.p99us} us (bare queue ${i.baselinePerSec.toLocaleString()}/s, ratio ${i.ratio})`);
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/viommu.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, ...results }, null, 2) + '\n');
