// Seeded fuzzing over the whole ioctl table with the selftest mock driver (createSimHost()): mock
// devices from IOMMU_TEST_CMD, nest-parent and nested HWPTs, a selftest vIOMMU, vDEVICEs and
// queues, then random and mutated structs for every registered command including IOMMU_TEST_CMD.
// The same rules as fuzz.test.ts: errno errors only, invariants after every call, nothing left after
// exit. Knobs: FUZZ_MOCK_CALLS (default below), FUZZ_SEED.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from './host/sim-host.js';
import { checkAllReleased, checkInvariants } from './invariants.js';
import { registeredIoctls } from './ioctl/registry.js';
import { OBJ } from './object/object.js';
import { fuzzCall, fuzzKnob, fuzzer, type FuzzCounts } from './testing/fuzz.js';
import { call } from './testing/harness.js';

const CALLS = fuzzKnob('FUZZ_MOCK_CALLS', 10_000);
const SEED = fuzzKnob('FUZZ_SEED', 0x5eed);

describe('fuzz over the mock driver', () => {
  it(`${CALLS} random ioctls over every family keep every invariant (seed ${SEED})`, () => {
    const { rand, int, pick } = fuzzer(SEED ^ 0x9e3779b9);
    const counts: FuzzCounts = { ok: 0, err: 0 };
    const okBy = new Map<string, number>();
    // Epochs: a fresh host every EPOCH calls, so the population (and the cost of each call) stays
    // bounded and teardown of a random state is exercised many times.
    const EPOCH = 1500;
    for (let done = 0; done < CALLS; done += EPOCH) epoch(Math.min(EPOCH, CALLS - done), done);
    if (process.env.FUZZ_VERBOSE) console.log(counts, Object.fromEntries(okBy));
    expect(counts.ok).toBeGreaterThan(CALLS / 100);

    function epoch(calls: number, base: number): void {
    const host = createSimHost();
    const proc = host.spawn();
    const fd = proc.open('/dev/iommu');
    const buf = proc.memory.alloc(1 << 20);
    const side = proc.memory.alloc(64 * 1024);

    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioas, user_va: buf.addr, length: 1n << 19n, iova: BigInt(U.MOCK_APERTURE_START) });
    const md = call(proc, fd, U.IOMMU_TEST_CMD, U.iommu_test_cmd_mock_domain, { op: U.IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas });
    call(proc, fd, U.IOMMU_TEST_CMD, U.iommu_test_cmd_mock_domain, { op: U.IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas });
    const parent = call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: md.out_idev_id, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id;
    call(proc, fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { type: U.IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: md.out_idev_id, hwpt_id: parent });

    const ctx = [...host.contexts][0]!;
    const live = (type: number): number[] => ctx.objects.objects().filter((o) => o.type === type).map((o) => o.id);
    const idOf = (...types: number[]): number => {
      const ids = types.flatMap(live);
      return ids.length && rand() < 0.9 ? pick(ids) : int(32);
    };
    const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
    const APERTURE = BigInt(U.MOCK_APERTURE_START);
    const sideBytes = side.bytes;
    // Vendor data and invalidation arrays live in `side`.
    U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT }, sideBytes, 0);
    U.iommu_viommu_selftest.encode({ in_data: 0x1234 }, sideBytes, 64);
    for (let k = 0; k < 4; k++) U.iommu_hwpt_invalidate_selftest.encode({ iotlb_id: k }, sideBytes, 128 + 8 * k);
    for (let k = 0; k < 4; k++) U.iommu_viommu_invalidate_selftest.encode({ vdev_id: k, cache_id: k }, sideBytes, 256 + 12 * k);

    type Recipe = () => { request: number; codec: U.StructCodec; bytes: Uint8Array };
    const r = <F extends Record<string, U.FieldSpec>>(request: number, codec: U.StructCodec<F>, f: () => Partial<U.StructValue<F>>): Recipe => () => ({ request, codec, bytes: codec.encode(f()) });
    const test = (op: number, f: () => Record<string, number | bigint>): Recipe => () => {
      const bytes = U.iommu_test_cmd.encode({ op });
      const dv = new DataView(bytes.buffer);
      const v = f();
      if (v.id !== undefined) dv.setUint32(8, Number(v.id), true);
      let o = 16;
      for (const [k, x] of Object.entries(v)) {
        if (k === 'id') continue;
        if (typeof x === 'bigint') {
          o = (o + 7) & ~7;
          dv.setBigUint64(o, x, true);
          o += 8;
        } else {
          dv.setUint32(o, x, true);
          o += 4;
        }
      }
      return { request: U.IOMMU_TEST_CMD, codec: U.iommu_test_cmd, bytes };
    };
    const recipes: Recipe[] = [
      r(U.IOMMU_DESTROY, U.iommu_destroy, () => ({ id: rand() < 0.9 && ctx.objects.size ? pick(ctx.objects.objects()).id : int(32) })),
      r(U.IOMMU_DESTROY, U.iommu_destroy, () => ({ id: int(40) })),
      r(U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, () => ({})),
      r(U.IOMMU_IOAS_MAP, U.iommu_ioas_map, () => ({ flags: RW | (rand() < 0.5 ? U.IOMMU_IOAS_MAP_FIXED_IOVA : 0), ioas_id: idOf(OBJ.IOAS), user_va: buf.addr + BigInt(int(200) * 4096), length: BigInt((1 + int(16)) * 4096), iova: APERTURE + BigInt(int(1024) * 4096) })),
      r(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, () => (rand() < 0.3 ? { ioas_id: idOf(OBJ.IOAS), iova: 0n, length: (1n << 64n) - 1n } : { ioas_id: idOf(OBJ.IOAS), iova: APERTURE + BigInt(int(1024) * 4096), length: BigInt((1 + int(64)) * 4096) })),
      r(U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, () => ({ flags: RW, dst_ioas_id: idOf(OBJ.IOAS), src_ioas_id: idOf(OBJ.IOAS), length: 4096n * BigInt(1 + int(4)), src_iova: APERTURE + BigInt(int(128) * 4096) })),
      r(U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, () => ({ dev_id: idOf(OBJ.DEVICE), pt_id: idOf(OBJ.IOAS), flags: pick([0, U.IOMMU_HWPT_ALLOC_NEST_PARENT, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, U.IOMMU_HWPT_ALLOC_PASID]) })),
      r(U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, () => ({ dev_id: idOf(OBJ.DEVICE), pt_id: idOf(OBJ.HWPT_PAGING, OBJ.VIOMMU), data_type: U.IOMMU_HWPT_DATA_SELFTEST, data_len: 8, data_uptr: side.addr, flags: rand() < 0.2 ? U.IOMMU_HWPT_FAULT_ID_VALID : 0, fault_id: idOf(OBJ.FAULT) })),
      r(U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, () => ({ type: U.IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: idOf(OBJ.DEVICE), hwpt_id: idOf(OBJ.HWPT_PAGING), data_len: rand() < 0.5 ? 24 : 0, data_uptr: side.addr + 64n })),
      r(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, () => ({ viommu_id: idOf(OBJ.VIOMMU), dev_id: idOf(OBJ.DEVICE), virt_id: BigInt(int(4)) })),
      r(U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, () => ({ viommu_id: idOf(OBJ.VIOMMU), type: U.IOMMU_HW_QUEUE_TYPE_SELFTEST, index: int(3), nesting_parent_iova: APERTURE + BigInt(int(64) * 4096), length: 4096n })),
      r(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, () => ({ viommu_id: idOf(OBJ.VIOMMU), type: U.IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 1 + int(4) })),
      r(U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, () => ({})),
      r(U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, () => ({ hwpt_id: idOf(OBJ.HWPT_NESTED), data_type: U.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, entry_len: 8, entry_num: int(5), data_uptr: side.addr + 128n })),
      r(U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, () => ({ hwpt_id: idOf(OBJ.VIOMMU), data_type: U.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entry_len: 12, entry_num: int(5), data_uptr: side.addr + 256n })),
      r(U.IOMMU_GET_HW_INFO, U.iommu_hw_info, () => ({ dev_id: idOf(OBJ.DEVICE), data_len: 16, data_uptr: side.addr + 1024n })),
      r(U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, () => ({ hwpt_id: idOf(OBJ.HWPT_PAGING), flags: int(2) })),
      r(U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, () => ({ hwpt_id: idOf(OBJ.HWPT_PAGING), iova: APERTURE, length: 1n << 19n, page_size: 4096n, data: side.addr + 2048n })),
      test(U.IOMMU_TEST_OP_MOCK_DOMAIN, () => ({ id: idOf(OBJ.IOAS, OBJ.HWPT_PAGING) })),
      test(U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, () => ({ id: idOf(OBJ.SELFTEST), pt_id: idOf(OBJ.IOAS, OBJ.HWPT_PAGING, OBJ.HWPT_NESTED) })),
      test(U.IOMMU_TEST_OP_CREATE_ACCESS, () => ({ id: idOf(OBJ.IOAS), out_access_fd: 0, flags: int(2) })),
      test(U.IOMMU_TEST_OP_PASID_ATTACH, () => ({ id: idOf(OBJ.SELFTEST), pasid: 1 + int(3), pt_id: idOf(OBJ.HWPT_PAGING, OBJ.HWPT_NESTED) })),
      test(U.IOMMU_TEST_OP_PASID_DETACH, () => ({ id: idOf(OBJ.SELFTEST), pasid: 1 + int(3) })),
      test(U.IOMMU_TEST_OP_TRIGGER_VEVENT, () => ({ dev_id: idOf(OBJ.DEVICE) })),
      test(U.IOMMU_TEST_OP_TRIGGER_IOPF, () => ({ dev_id: idOf(OBJ.DEVICE), pasid: int(2), grpid: int(4), perm: 1, addr: APERTURE })),
    ];
    const ioctls = registeredIoctls();
    const fds: number[] = [];

    for (let i = base; i < base + calls; i++) {
      let request: number;
      let arg: Uint8Array;
      let name: string;
      if (rand() < 0.85) {
        const made = pick(recipes)();
        request = made.request;
        name = made.codec.name + (request === U.IOMMU_TEST_CMD ? `:${new DataView(made.bytes.buffer).getUint32(4, true)}` : '');
        arg = new Uint8Array(made.codec.size + 16);
        arg.set(made.bytes);
        // Mutate: sometimes one field, sometimes the size.
        if (rand() < 0.3) {
          const fields = Object.values(made.codec.fields).filter((f) => f.offset >= 4);
          const f = pick(fields);
          const at = f.offset + int(f.size);
          arg[at] = arg[at]! ^ (1 << int(8));
        }
        if (rand() < 0.1) new DataView(arg.buffer).setUint32(0, pick([made.codec.minSize - 1, made.codec.size + 8, made.codec.minSize]), true);
        if (rand() < 0.05) arg[made.codec.size + int(16)] = 1;
      } else {
        const def = pick(ioctls);
        request = def.request;
        name = def.name + ':random';
        arg = new Uint8Array(def.struct.size + 16);
        for (let k = 4; k < def.struct.size; k++) if (rand() < 0.2) arg[k] = int(256);
        new DataView(arg.buffer).setUint32(0, def.struct.size, true);
      }
      if (fuzzCall(counts, () => `call ${i} (${name})`, () => proc.ioctl(fd, request, arg))) {
        okBy.set(name, (okBy.get(name) ?? 0) + 1);
        // Event-queue allocations return an fd: keep some, close some later.
        if (request === U.IOMMU_VEVENTQ_ALLOC) fds.push(U.iommu_veventq_alloc.get(arg, 'out_veventq_fd'));
        if (request === U.IOMMU_FAULT_QUEUE_ALLOC) fds.push(U.iommu_fault_alloc.get(arg, 'out_fault_fd'));
      }
      if (fds.length && rand() < 0.05) proc.close(fds.splice(int(fds.length), 1)[0]!);
      checkInvariants(host);
    }
    proc.exit();
    checkAllReleased(host);
    }
  });
});
