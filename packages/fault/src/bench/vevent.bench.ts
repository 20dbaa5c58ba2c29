// vEVENT produce + read throughput: a driver reports events, a reader drains them in batches
// through read(2)'s byte format. Baseline: the same number of pushes and shifts on a bare array.

import { iommu_vevent_arm_smmuv3, iommu_viommu_event_selftest, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IOMMU_VEVENTQ_TYPE_SELFTEST } from '@viommu/uapi';
import { VeventQueue } from '../veventq.js';
import { rate, report, row } from './harness.js';

const BATCH = 64;
const ROUNDS_PER_SAMPLE = 200;
const OPS = BATCH * ROUNDS_PER_SAMPLE; // events produced and read per sample

function baseline() {
  const arr: Uint8Array[] = [];
  const payload = new Uint8Array(4);
  let sink = 0;
  const r = rate(OPS, () => {
    for (let k = 0; k < ROUNDS_PER_SAMPLE; k++) {
      for (let i = 0; i < BATCH; i++) arr.push(payload);
      for (let i = 0; i < BATCH; i++) sink += arr.shift()!.length;
    }
  });
  if (sink === 42) console.log(sink);
  return r;
}

function ours(type: number, payload: Uint8Array, depth: number, batch: number) {
  const q = new VeventQueue({ depth, type });
  const buf = new Uint8Array(batch * (8 + payload.length));
  const rounds = OPS / batch;
  return rate(OPS, () => {
    for (let k = 0; k < rounds; k++) {
      for (let i = 0; i < batch; i++) q.report(payload);
      q.read(buf);
    }
  });
}

function overflowing(payload: Uint8Array) {
  // depth 16, 64 reports per read: three quarters become lost (one header per run of drops)
  const q = new VeventQueue({ depth: 16, type: IOMMU_VEVENTQ_TYPE_SELFTEST });
  const buf = new Uint8Array(BATCH * 12);
  return rate(OPS, () => {
    for (let k = 0; k < ROUNDS_PER_SAMPLE; k++) {
      for (let i = 0; i < BATCH; i++) q.report(payload);
      q.read(buf);
    }
  });
}

const base = baseline();
const selftest = iommu_viommu_event_selftest.encode({ virt_id: 0x99 });
const smmu = iommu_vevent_arm_smmuv3.encode({ evt: [0x0000_0099_0000_0010n, 0n, 0xdead_b000n, 0n] });
const b = 'array push/shift';
report('vevent', [
  row('selftest 4B, batch 64, depth 1024', ours(IOMMU_VEVENTQ_TYPE_SELFTEST, selftest, 1024, BATCH), b, base),
  row('arm-smmuv3 32B, batch 64, depth 1024', ours(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, smmu, 1024, BATCH), b, base),
  row('selftest 4B, batch 1 (report, read)', ours(IOMMU_VEVENTQ_TYPE_SELFTEST, selftest, 1024, 1), b, base),
  row('selftest 4B, depth 2^19, batch 64', ours(IOMMU_VEVENTQ_TYPE_SELFTEST, selftest, 1 << 19, BATCH), b, base),
  row('selftest 4B, overflowing (depth 16, batch 64)', overflowing(selftest), b, base),
]);
