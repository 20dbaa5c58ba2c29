// IOPF round trips: a device raises a one-request group, userspace reads its record, writes the
// page response, and the response reaches the device. Throughput and per-group latency (raise to
// response callback), one at a time and pipelined. Baseline: pushing and shifting a fresh request
// object on a bare array, the least any fault path must do.

import { iommu_hwpt_pgfault } from '@viommu/uapi';
import { IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE } from '../constants.js';
import { FaultQueue } from '../fault-queue.js';
import { IopfDevice, type IopfHandle, type PageRequest } from '../iopf.js';
import { percentile, rate, report, row } from './harness.js';

const REC = iommu_hwpt_pgfault.size;
const COOKIE = iommu_hwpt_pgfault.fields.cookie.offset;
const OPS = 20_000;

/** A bare queue of fresh request objects: the least any fault path must do. */
function baseline() {
  const arr: PageRequest[] = [];
  let sink = 0;
  const r = rate(OPS, () => {
    for (let i = 0; i < OPS; i++) {
      arr.push({ flags: IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, pasid: 0, grpid: i, perm: 3, addr: 0x1000n });
      sink += arr.shift()!.grpid;
    }
  });
  if (sink === 42) console.log(sink);
  return r;
}

/** Raises `batch` groups, reads them in one read, answers them in one write; latency per group. */
function roundTrips(batch: number, timeoutMs?: number) {
  const queue = new FaultQueue(timeoutMs === undefined ? {} : { responseTimeoutMs: timeoutMs });
  const raisedAt = new Float64Array(batch);
  const latencies = new Float64Array(64 * 1024);
  let nLat = 0;
  let answered = 0;
  const dev = new IopfDevice((r) => {
    answered++;
    if (nLat < latencies.length) latencies[nLat++] = performance.now() - raisedAt[r.grpid]!;
  });
  const handle: IopfHandle = { devId: 1, queue };
  const reqs: PageRequest[] = Array.from({ length: batch }, (_, i) => ({ flags: IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, pasid: 0, grpid: i, perm: 3, addr: BigInt(i) << 12n }));
  const buf = new Uint8Array(batch * REC);
  const resp = new Uint8Array(batch * 8);
  const rv = new DataView(resp.buffer);
  const bv = new DataView(buf.buffer);
  const once = () => {
    for (let i = 0; i < batch; i++) {
      raisedAt[i] = performance.now();
      dev.report(reqs[i]!, handle);
    }
    const n = queue.read(buf) / REC;
    for (let i = 0; i < n; i++) {
      rv.setUint32(i * 8, bv.getUint32(i * REC + COOKIE, true), true);
      rv.setUint32(i * 8 + 4, 0, true);
    }
    queue.write(resp.subarray(0, n * 8));
  };
  const rounds = Math.max(1, Math.floor(OPS / batch));
  const r = rate(rounds * batch, () => {
    nLat = 0; // keep the last sample's latencies: warm, steady state
    for (let k = 0; k < rounds; k++) once();
  });
  if (answered === 0) throw new Error('no responses');
  const lat = latencies.subarray(0, nLat);
  const us = (ms: number) => ms * 1000;
  return { r, p50us: us(percentile(lat, 50)), p99us: us(percentile(lat, 99)) };
}

const base = baseline();
const b = 'array push/shift of a new request';
const one = roundTrips(1);
const pipelined = roundTrips(64);
const withTimeout = roundTrips(1, 10_000);
report('iopf', [
  row('raise-read-respond, 1 in flight', one.r, b, base, { p50us: one.p50us, p99us: one.p99us }),
  row('raise-read-respond, 64 per read/write', pipelined.r, b, base, { p50us: pipelined.p50us, p99us: pipelined.p99us }),
  row('1 in flight, 10s response timeout armed', withTimeout.r, b, base, { p50us: withTimeout.p50us, p99us: withTimeout.p99us }),
]);
