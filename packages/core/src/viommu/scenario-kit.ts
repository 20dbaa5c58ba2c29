// Small helpers over the Process contract for the vIOMMU family's tests and benchmarks: one call
// per ioctl or selftest command, taking and returning plain numbers. They mirror the kernel
// selftest's iommufd_utils.h helpers (test_cmd_* / test_err_*), in our words; errors propagate
// as the SystemError the process throws, so a test asserts the errno with `expectErrno`.

import * as U from '@viommu/uapi';
import type { Process } from '@viommu/uapi';

export class Kit {
  constructor(
    readonly p: Process,
    readonly fd: number,
  ) {}

  /** Encodes `fields` into `codec`, runs the ioctl, and returns the struct as the kernel left it. */
  call<C extends U.StructCodec>(request: number, codec: C, fields: Partial<ReturnType<C['decode']>>): ReturnType<C['decode']> {
    const bytes = codec.encode(fields as never);
    this.p.ioctl(this.fd, request, bytes);
    return codec.decode(bytes) as ReturnType<C['decode']>;
  }

  /** Like `call` but returns the struct bytes even when the ioctl fails, with the error (HWPT_INVALIDATE). */
  callRaw(request: number, bytes: Uint8Array): unknown {
    try {
      this.p.ioctl(this.fd, request, bytes);
      return undefined;
    } catch (e) {
      return e;
    }
  }

  /** User memory holding `bytes` (or `length` zero bytes); returns its address. */
  buffer(bytesOrLength: Uint8Array | number): { addr: bigint; bytes: Uint8Array } {
    const len = typeof bytesOrLength === 'number' ? bytesOrLength : Math.max(bytesOrLength.length, 1);
    const m = this.p.memory.alloc(len);
    if (typeof bytesOrLength !== 'number') m.bytes.set(bytesOrLength);
    return m;
  }

  destroy(id: number): void {
    this.call(U.IOMMU_DESTROY, U.iommu_destroy, { id });
  }

  ioasAlloc(): number {
    return this.call(U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, {}).out_ioas_id;
  }

  /** IOAS_MAP of `length` bytes of user memory at a kernel-chosen (or fixed) IOVA; returns the IOVA. */
  ioasMap(ioasId: number, userVa: bigint, length: number, iova?: bigint): bigint {
    const flags = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE | (iova === undefined ? 0 : U.IOMMU_IOAS_MAP_FIXED_IOVA);
    return this.call(U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
      ioas_id: ioasId,
      flags,
      user_va: userVa,
      length: BigInt(length),
      iova: iova ?? 0n,
    }).iova;
  }

  ioasUnmap(ioasId: number, iova: bigint, length: number): void {
    this.call(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, { ioas_id: ioasId, iova, length: BigInt(length) });
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN: a mock device attached to `ioasId`. */
  mockDomain(ioasId: number, devFlags = 0): { stdevId: number; hwptId: number; idevId: number } {
    const r = this.call(U.IOMMU_TEST_CMD, U.iommu_test_cmd_mock_domain_flags, {
      op: devFlags ? U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS : U.IOMMU_TEST_OP_MOCK_DOMAIN,
      id: ioasId,
      dev_flags: devFlags,
    });
    return { stdevId: r.out_stdev_id, hwptId: r.out_hwpt_id, idevId: r.out_idev_id };
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: re-attach the mock device `stdevId` to `ptId`; returns the HWPT attached. */
  mockDomainReplace(stdevId: number, ptId: number): number {
    return this.call(U.IOMMU_TEST_CMD, U.iommu_test_cmd_mock_domain_replace, {
      op: U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
      id: stdevId,
      pt_id: ptId,
    }).pt_id;
  }

  hwptAlloc(devId: number, ptId: number, flags = 0, opts: { dataType?: number; data?: Uint8Array; dataLen?: number; faultId?: number; uptr?: bigint } = {}): number {
    let uptr = opts.uptr ?? 0n;
    if (opts.data && opts.uptr === undefined) uptr = this.buffer(opts.data).addr;
    return this.call(U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
      flags,
      dev_id: devId,
      pt_id: ptId,
      data_type: opts.dataType ?? U.IOMMU_HWPT_DATA_NONE,
      data_len: opts.dataLen ?? opts.data?.length ?? 0,
      data_uptr: uptr,
      fault_id: opts.faultId ?? 0,
    }).out_hwpt_id;
  }

  /** A selftest nested HWPT (iommu_hwpt_selftest with the default IOTLB value) under `ptId`. */
  hwptAllocNested(devId: number, ptId: number, flags = 0, faultId = 0): number {
    const data = U.iommu_hwpt_selftest.encode({ iotlb: U.IOMMU_TEST_IOTLB_DEFAULT });
    return this.hwptAlloc(devId, ptId, flags, { dataType: U.IOMMU_HWPT_DATA_SELFTEST, data, faultId });
  }

  viommuAlloc(devId: number, hwptId: number, type = U.IOMMU_VIOMMU_TYPE_SELFTEST, data?: { uptr: bigint; len: number }, flags = 0): number {
    return this.call(U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, {
      flags,
      type,
      dev_id: devId,
      hwpt_id: hwptId,
      data_uptr: data?.uptr ?? 0n,
      data_len: data?.len ?? 0,
    }).out_viommu_id;
  }

  vdeviceAlloc(viommuId: number, devId: number, virtId: bigint | number): number {
    return this.call(U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, {
      viommu_id: viommuId,
      dev_id: devId,
      virt_id: BigInt(virtId),
    }).out_vdevice_id;
  }

  veventqAlloc(viommuId: number, depth: number, type = U.IOMMU_VEVENTQ_TYPE_SELFTEST, extra: { flags?: number; reserved?: number } = {}): { id: number; fd: number } {
    const r = this.call(U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, {
      flags: extra.flags ?? 0,
      viommu_id: viommuId,
      type,
      veventq_depth: depth,
      __reserved: extra.reserved ?? 0,
    });
    return { id: r.out_veventq_id, fd: r.out_veventq_fd };
  }

  hwQueueAlloc(viommuId: number, index: number, iova: bigint, length: bigint | number, type = U.IOMMU_HW_QUEUE_TYPE_SELFTEST): number {
    return this.call(U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, {
      viommu_id: viommuId,
      type,
      index,
      nesting_parent_iova: iova,
      length: BigInt(length),
    }).out_hw_queue_id;
  }

  faultAlloc(flags = 0): { id: number; fd: number } {
    const r = this.call(U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, { flags });
    return { id: r.out_fault_id, fd: r.out_fault_fd };
  }

  /**
   * HWPT_INVALIDATE with `entries` laid out at `entryLen` stride; returns the entry_num the kernel
   * wrote back and the error, if any (the struct is written back on failure too).
   */
  invalidate(
    id: number,
    dataType: number,
    entryLen: number,
    entryNum: number,
    entries: Uint8Array | null,
  ): { done: number; error: unknown } {
    const uptr = entries ? this.buffer(entries).addr : 0n;
    const bytes = U.iommu_hwpt_invalidate.encode({ hwpt_id: id, data_uptr: uptr, data_type: dataType, entry_len: entryLen, entry_num: entryNum });
    const error = this.callRaw(U.IOMMU_HWPT_INVALIDATE, bytes);
    return { done: U.iommu_hwpt_invalidate.get(bytes, 'entry_num'), error };
  }

  triggerVevent(devId: number): void {
    this.call(U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_vevent, { op: U.IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: devId });
  }

  triggerIopf(devId: number, pasid = 1, grpid = 2, perm = U.IOMMU_PGFAULT_PERM_READ | U.IOMMU_PGFAULT_PERM_WRITE, addr = 0xdeadbeafn): void {
    this.call(U.IOMMU_TEST_CMD, U.iommu_test_cmd_trigger_iopf, { op: U.IOMMU_TEST_OP_TRIGGER_IOPF, dev_id: devId, pasid, grpid, perm, addr });
  }

  /** IOMMU_TEST_OP_MD_CHECK_IOTLB: EINVAL unless IOTLB entry `iotlbId` of nested HWPT `hwptId` holds `value`. */
  checkIotlb(hwptId: number, iotlbId: number, value: number): void {
    this.testCmdWithId(U.IOMMU_TEST_OP_MD_CHECK_IOTLB, hwptId, iotlbId, value);
  }

  /** IOMMU_TEST_OP_DEV_CHECK_CACHE: EINVAL unless cache entry `cacheId` of device `devId` holds `value`. */
  checkDevCache(devId: number, cacheId: number, value: number): void {
    this.testCmdWithId(U.IOMMU_TEST_OP_DEV_CHECK_CACHE, devId, cacheId, value);
  }

  // check_iotlb and check_dev_cache carry a member named `id` at 16 besides the header's `id` at 8,
  // which one flat codec cannot name twice: lay the command out by hand.
  private testCmdWithId(op: number, headerId: number, memberId: number, value: number): void {
    const bytes = U.iommu_test_cmd.encode({ op, id: headerId });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    dv.setUint32(16, memberId, true);
    dv.setUint32(20, value, true);
    this.p.ioctl(this.fd, U.IOMMU_TEST_CMD, bytes);
  }
}

/** Runs `fn` and returns the errno name it threw (a test then asserts it), or undefined if it did not throw. */
export function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
}
