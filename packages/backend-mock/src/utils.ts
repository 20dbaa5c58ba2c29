// The port of tools/testing/selftests/iommu/iommufd_utils.h: the `self` of a case and one method
// per helper macro. `testX` methods assert success (ASSERT_EQ(0, ...)); `errX` methods assert the
// call fails with the given errno (EXPECT_ERRNO). Everything goes through the `Process` contract.
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_DMABUF_GET,
  IOMMU_TEST_OP_DMABUF_REVOKE,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMUFD_PAGE_RESP_SUCCESS,
  MOCK_DEV_CACHE_NUM,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
  O_CLOEXEC,
  O_RDWR,
  POLLIN,
  iommu_destroy,
  iommu_fault_alloc,
  iommu_hw_info,
  iommu_hw_queue_alloc,
  iommu_hwpt_alloc,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_invalidate,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
  iommu_hwpt_selftest,
  iommu_hwpt_set_dirty_tracking,
  iommu_ioas_alloc,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_unmap,
  iommu_test_cmd_access_replace_ioas,
  iommu_test_cmd_check_dev_cache,
  iommu_test_cmd_check_iotlb,
  iommu_test_cmd_check_map,
  iommu_test_cmd_check_refs,
  iommu_test_cmd_create_access,
  iommu_test_cmd_destroy_access_pages,
  iommu_test_cmd_dirty,
  iommu_test_cmd_dmabuf_get,
  iommu_test_cmd_dmabuf_revoke,
  iommu_test_cmd_memory_limit,
  iommu_test_cmd_mock_domain,
  iommu_test_cmd_mock_domain_flags,
  iommu_test_cmd_mock_domain_replace,
  iommu_test_cmd_pasid_attach,
  iommu_test_cmd_pasid_check,
  iommu_test_cmd_pasid_detach,
  iommu_test_cmd_pasid_replace,
  iommu_test_cmd_trigger_iopf,
  iommu_test_cmd_trigger_vevent,
  iommu_test_hw_info,
  iommu_vdevice_alloc,
  iommu_veventq_alloc,
  iommu_viommu_alloc,
  iommu_viommu_event_selftest,
  iommufd_vevent_header,
  type IoctlArg,
  type Process,
  type StructCodec,
} from '@viommu/uapi';
import { CaseFailure, CaseSkip } from './harness.js';

export const PAGE_SIZE = 4096;
/** The PMD huge page size of x86-64 and arm64 with 4K pages (what hpage_pmd_size reports). */
export const HUGEPAGE_SIZE = 2 * 1024 * 1024;
export const BUFFER_SIZE = PAGE_SIZE * 16;
export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
export const UINT32_MAX = 0xffff_ffff;

export type N = number | bigint;

/** A piece of user memory: its address in the process and a live view of its bytes. */
export interface UserBuf {
  readonly addr: bigint;
  readonly bytes: Uint8Array;
  /** The start of the whole allocation when `addr` is inside it (aligned allocations); what munmap frees. */
  readonly base?: bigint;
}

/** `buf + off` in C. */
export function at(buf: UserBuf, off: N): UserBuf {
  return { addr: buf.addr + BigInt(off), bytes: buf.bytes.subarray(Number(off)) };
}

/** Encodes a struct from plain numbers (u64 fields take numbers or bigints). */
export function enc(codec: StructCodec, values: Record<string, N | undefined>): Uint8Array {
  const v: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(values)) {
    if (x === undefined) continue;
    const f = codec.fields[k];
    if (!f) throw new Error(`${codec.name} has no field ${k}`);
    v[k] = f.kind === 'u64' ? BigInt(x) : Number(x);
  }
  return codec.encode(v as never);
}

/** A u64 field as a number (IDs, lengths and IOVAs in these tests stay below 2^53). */
export function num(codec: StructCodec, bytes: Uint8Array, field: string): number {
  return Number(codec.get(bytes, field as never));
}

export function big(codec: StructCodec, bytes: Uint8Array, field: string): bigint {
  return BigInt(codec.get(bytes, field as never) as number | bigint);
}

function show(x: unknown): string {
  return typeof x === 'bigint' ? `${x} (0x${x.toString(16)})` : String(x);
}

export function assertEq(expected: unknown, actual: unknown, what = 'value'): void {
  const norm = (x: unknown) => (typeof x === 'number' && Number.isInteger(x) ? BigInt(x) : typeof x === 'boolean' ? BigInt(x ? 1 : 0) : x);
  if (norm(expected) !== norm(actual)) throw new CaseFailure(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

export function assertNe(unexpected: unknown, actual: unknown, what = 'value'): void {
  const norm = (x: unknown) => (typeof x === 'number' && Number.isInteger(x) ? BigInt(x) : x);
  if (norm(unexpected) === norm(actual)) throw new CaseFailure(`${what}: expected anything but ${show(unexpected)}`);
}

export function assertTrue(cond: boolean, what: string): void {
  if (!cond) throw new CaseFailure(what);
}

export function skip(reason: string): never {
  throw new CaseSkip(reason);
}

/** The errno name an error carries, or undefined for success. */
function codeOf(e: unknown): string {
  if (e instanceof CaseFailure || e instanceof CaseSkip) throw e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') throw e;
  return code;
}

/** EXPECT_ERRNO(errno, call): the call must fail with exactly that errno. */
export function expectErrno(expected: string, call: () => unknown, what = 'call'): void {
  try {
    call();
  } catch (e) {
    const code = codeOf(e);
    if (code !== expected) throw new CaseFailure(`${what}: expected ${expected}, got ${code}`);
    return;
  }
  throw new CaseFailure(`${what}: expected ${expected}, but it succeeded`);
}

export async function expectErrnoAsync(expected: string, call: () => Promise<unknown>, what = 'call'): Promise<void> {
  try {
    await call();
  } catch (e) {
    const code = codeOf(e);
    if (code !== expected) throw new CaseFailure(`${what}: expected ${expected}, got ${code}`);
    return;
  }
  throw new CaseFailure(`${what}: expected ${expected}, but it succeeded`);
}

/** Runs `call`, returning its errno name on failure and undefined on success (the C `rc`/`errno` pair). */
export function errnoOf(call: () => unknown): string | undefined {
  try {
    call();
    return undefined;
  } catch (e) {
    return codeOf(e);
  }
}

/**
 * memfd_create(2) and ftruncate(2): not in the Process contract, but targets that have them (the
 * simulator's SimProcess does) let the IOMMU_IOAS_MAP_FILE cases run; elsewhere those cases skip.
 */
export interface MemfdProcess {
  memfdCreate(name?: string): number;
  ftruncate(fd: number, size: number): void;
}

export function memfdOf(process: Process): MemfdProcess | undefined {
  const p = process as Partial<MemfdProcess>;
  return typeof p.memfdCreate === 'function' && typeof p.ftruncate === 'function' ? (p as MemfdProcess) : undefined;
}

export const NO_MEMFD = 'needs memfd_create and ftruncate, which this target does not offer (they are not in the Process contract)';

export const NO_FORK = 'needs fork and exit, which this target does not offer (optional in the Process contract)';

/** Skips the case on a target without fork (before it makes anything a skip would leave open). */
export function requireFork(process: Process): void {
  if (!process.fork || !process.exit) skip(NO_FORK);
}

/**
 * fork(): the child as a Self over the same fd numbers and IDs (fds are inherited), seeing the
 * parent's memory at the same addresses. Skips the case on a target without fork.
 */
export function forkSelf(self: Self): Self {
  requireFork(self.process);
  const child = new Self(self.process.fork!(), self.buffer);
  child.fd = self.fd;
  child.ioas_id = self.ioas_id;
  child.stdev_id = self.stdev_id;
  child.hwpt_id = self.hwpt_id;
  child.device_id = self.device_id;
  child.idev_id = self.idev_id;
  child.base_iova = self.base_iova;
  child.device_pasid_id = self.device_pasid_id;
  child.mfdCache = self.mfdCache;
  return child;
}

/** exit() of a child made by forkSelf (its fds close, its mm is gone); waitpid has nothing more to do. */
export function exitChild(child: Self): void {
  child.process.exit!();
}

/** get_vm_pinned / get_vm_locked: VmPin / VmLck of the process's /proc/<pid>/status, in kB. */
export function getVmPinned(process: Process): number {
  if (!process.procStatus) skip('needs /proc/<pid>/status (procStatus), which this target does not offer');
  return process.procStatus!().VmPin;
}

export function getVmLocked(process: Process): number {
  if (!process.procStatus) skip('needs /proc/<pid>/status (procStatus), which this target does not offer');
  return process.procStatus!().VmLck;
}

export interface MockDomain {
  stdevId: number;
  hwptId: number;
  idevId: number;
}

export interface HwptAllocOpts {
  faultId?: number;
  dataType?: number;
  /** Vendor data in user memory, or null for a NULL pointer. */
  data?: UserBuf | null;
  dataLen?: number;
}

/**
 * The `self` of every fixture, and the helper macros over it. Fixture-specific fields are all here
 * (zero when a fixture does not set them), as the macros only ever read `self->fd` and `self->ioas_id`.
 */
export class Self {
  fd = -1;
  ioas_id = 0;
  stdev_id = 0;
  hwpt_id = 0;
  device_id = 0;
  idev_id = 0;
  base_iova = 0;
  device_pasid_id = 0;
  /** The C file's global `buffer`: BUFFER_SIZE bytes aligned to HUGEPAGE_SIZE, shared anonymous memory. */
  buffer: UserBuf;

  constructor(
    readonly process: Process,
    buffer?: UserBuf,
  ) {
    this.buffer = buffer ?? this.mmapAligned(BUFFER_SIZE, HUGEPAGE_SIZE);
  }

  // ---- memory --------------------------------------------------------------------------------

  /** User memory of `length` bytes (page-aligned, zeroed), like a C stack variable or mmap. */
  mem(length: number): UserBuf {
    return this.process.memory.alloc(Math.max(length, 1));
  }

  /** User memory holding `bytes` (a struct passed by pointer). */
  put(bytes: Uint8Array): UserBuf {
    const m = this.mem(bytes.length);
    m.bytes.set(bytes);
    return m;
  }

  /** `length` bytes whose address is a multiple of `align` (posix_memalign / a MAP_HUGETLB mapping). */
  mmapAligned(length: number, align: number): UserBuf {
    const raw = this.process.memory.alloc(length + align);
    const pad = Number((BigInt(align) - (raw.addr % BigInt(align))) % BigInt(align));
    return { ...at({ addr: raw.addr, bytes: raw.bytes.subarray(0, pad + length) }, pad), base: raw.addr };
  }

  /** munmap of a whole allocation made by mem / put / mmapAligned. */
  munmap(buf: UserBuf): void {
    this.process.memory.free(buf.base ?? buf.addr);
  }

  /** The memfd behind `mfd` / `mfd_buffer`, made on first use (a fixture may provide its own). */
  mfdCache: { fd: number; buf: UserBuf } | undefined;

  /** memfd_mmap: a memfd of `length` bytes and a shared mapping of it (skips the case without memfd). */
  memfdMmap(length: number): { fd: number; buf: UserBuf } {
    const m = memfdOf(this.process);
    if (!m) skip(NO_MEMFD);
    const fd = m!.memfdCreate('buffer');
    m!.ftruncate(fd, length);
    return { fd, buf: this.process.mmap(fd, length, 0n) };
  }

  /** The C file's global `mfd` and `mfd_buffer`: a BUFFER_SIZE memfd and its mapping. */
  get mfd(): number {
    return (this.mfdCache ??= this.memfdMmap(BUFFER_SIZE)).fd;
  }

  get mfd_buffer(): UserBuf {
    return (this.mfdCache ??= this.memfdMmap(BUFFER_SIZE)).buf;
  }

  ftruncate(fd: number, size: number): void {
    const m = memfdOf(this.process);
    if (!m) skip(NO_MEMFD);
    m!.ftruncate(fd, size);
  }

  // ---- raw ioctls ----------------------------------------------------------------------------

  ioctl(request: number, arg: IoctlArg): number {
    return this.process.ioctl(this.fd, request, arg);
  }

  testCmd(bytes: Uint8Array): number {
    return this.process.ioctl(this.fd, IOMMU_TEST_CMD, bytes);
  }

  // ---- objects -------------------------------------------------------------------------------

  _destroy(id: number): void {
    this.ioctl(IOMMU_DESTROY, enc(iommu_destroy, { id }));
  }

  testIoctlDestroy(id: number): void {
    this._destroy(id);
  }

  errDestroy(errno: string, id: number): void {
    expectErrno(errno, () => this._destroy(id), `IOMMU_DESTROY(${id})`);
  }

  testIoctlIoasAlloc(): number {
    const cmd = enc(iommu_ioas_alloc, {});
    this.ioctl(IOMMU_IOAS_ALLOC, cmd);
    const id = num(iommu_ioas_alloc, cmd, 'out_ioas_id');
    assertNe(0, id, 'out_ioas_id');
    return id;
  }

  // ---- map / unmap ---------------------------------------------------------------------------

  /** _test_ioctl_ioas_map: returns the IOVA the kernel wrote back (also on failure, like C). */
  _ioasMap(ioasId: number, va: N, length: N, iova: N, flags: number): { iova: number; errno: string | undefined } {
    const cmd = enc(iommu_ioas_map, {
      flags,
      ioas_id: ioasId,
      user_va: va,
      length,
      iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : 0,
    });
    const errno = errnoOf(() => this.ioctl(IOMMU_IOAS_MAP, cmd));
    return { iova: num(iommu_ioas_map, cmd, 'iova'), errno };
  }

  private okMap(r: { iova: number; errno: string | undefined }, what: string): number {
    if (r.errno) throw new CaseFailure(`${what}: failed with ${r.errno}`);
    return r.iova;
  }

  testIoctlIoasMap(buf: UserBuf | N, length: N): number {
    return this.testIoctlIoasMapId(this.ioas_id, buf, length);
  }

  testIoctlIoasMapId(ioasId: number, buf: UserBuf | N, length: N): number {
    const va = typeof buf === 'object' ? buf.addr : buf;
    return this.okMap(this._ioasMap(ioasId, va, length, 0, RW), 'IOMMU_IOAS_MAP');
  }

  errIoctlIoasMap(errno: string, buf: UserBuf | N, length: N): void {
    const va = typeof buf === 'object' ? buf.addr : buf;
    const r = this._ioasMap(this.ioas_id, va, length, 0, RW);
    assertEq(errno, r.errno ?? 'success', 'IOMMU_IOAS_MAP errno');
  }

  testIoctlIoasMapFixed(buf: UserBuf | N, length: N, iova: N): void {
    this.testIoctlIoasMapFixedId(this.ioas_id, buf, length, iova);
  }

  testIoctlIoasMapFixedId(ioasId: number, buf: UserBuf | N, length: N, iova: N): void {
    const va = typeof buf === 'object' ? buf.addr : buf;
    this.okMap(this._ioasMap(ioasId, va, length, iova, IOMMU_IOAS_MAP_FIXED_IOVA | RW), `IOMMU_IOAS_MAP fixed at ${iova}`);
  }

  errIoctlIoasMapFixed(errno: string, buf: UserBuf | N, length: N, iova: N): void {
    const va = typeof buf === 'object' ? buf.addr : buf;
    const r = this._ioasMap(this.ioas_id, va, length, iova, IOMMU_IOAS_MAP_FIXED_IOVA | RW);
    assertEq(errno, r.errno ?? 'success', `IOMMU_IOAS_MAP fixed at ${iova} errno`);
  }

  /** _test_ioctl_ioas_unmap: returns the unmapped length the kernel wrote back. */
  _ioasUnmap(ioasId: number, iova: N, length: N): bigint {
    const cmd = enc(iommu_ioas_unmap, { ioas_id: ioasId, iova, length });
    this.ioctl(IOMMU_IOAS_UNMAP, cmd);
    return big(iommu_ioas_unmap, cmd, 'length');
  }

  testIoctlIoasUnmap(iova: N, length: N): bigint {
    return this._ioasUnmap(this.ioas_id, iova, length);
  }

  testIoctlIoasUnmapId(ioasId: number, iova: N, length: N): bigint {
    return this._ioasUnmap(ioasId, iova, length);
  }

  errIoctlIoasUnmap(errno: string, iova: N, length: N): void {
    expectErrno(errno, () => this._ioasUnmap(this.ioas_id, iova, length), `IOMMU_IOAS_UNMAP(${iova}, ${length})`);
  }

  _ioasMapFile(ioasId: number, mfd: number, start: N, length: N, iova: N, flags: number): { iova: number; errno: string | undefined } {
    const cmd = enc(iommu_ioas_map_file, {
      flags,
      ioas_id: ioasId,
      fd: mfd >>> 0,
      start,
      length,
      iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : 0,
    });
    const errno = errnoOf(() => this.ioctl(IOMMU_IOAS_MAP_FILE, cmd));
    return { iova: num(iommu_ioas_map_file, cmd, 'iova'), errno };
  }

  testIoctlIoasMapFile(mfd: number, start: N, length: N): number {
    return this.okMap(this._ioasMapFile(this.ioas_id, mfd, start, length, 0, RW), 'IOMMU_IOAS_MAP_FILE');
  }

  testIoctlIoasMapIdFile(ioasId: number, mfd: number, start: N, length: N): number {
    return this.okMap(this._ioasMapFile(ioasId, mfd, start, length, 0, RW), 'IOMMU_IOAS_MAP_FILE');
  }

  errIoctlIoasMapFile(errno: string, mfd: number, start: N, length: N): void {
    const r = this._ioasMapFile(this.ioas_id, mfd, start, length, 0, RW);
    assertEq(errno, r.errno ?? 'success', 'IOMMU_IOAS_MAP_FILE errno');
  }

  testIoctlIoasMapFixedFile(mfd: number, start: N, length: N, iova: N): void {
    this.okMap(this._ioasMapFile(this.ioas_id, mfd, start, length, iova, IOMMU_IOAS_MAP_FIXED_IOVA | RW), 'IOMMU_IOAS_MAP_FILE fixed');
  }

  // ---- mock devices and domains --------------------------------------------------------------

  _mockDomain(ioasId: number): MockDomain {
    const cmd = enc(iommu_test_cmd_mock_domain, { op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ioasId });
    this.testCmd(cmd);
    return {
      stdevId: num(iommu_test_cmd_mock_domain, cmd, 'out_stdev_id'),
      hwptId: num(iommu_test_cmd_mock_domain, cmd, 'out_hwpt_id'),
      idevId: num(iommu_test_cmd_mock_domain, cmd, 'out_idev_id'),
    };
  }

  testCmdMockDomain(ioasId: number): MockDomain {
    return this._mockDomain(ioasId);
  }

  errMockDomain(errno: string, ioasId: number): void {
    expectErrno(errno, () => this._mockDomain(ioasId), `MOCK_DOMAIN(${ioasId})`);
  }

  _mockDomainFlags(ioasId: number, devFlags: number): MockDomain {
    const cmd = enc(iommu_test_cmd_mock_domain_flags, { op: IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, id: ioasId, dev_flags: devFlags });
    this.testCmd(cmd);
    return {
      stdevId: num(iommu_test_cmd_mock_domain_flags, cmd, 'out_stdev_id'),
      hwptId: num(iommu_test_cmd_mock_domain_flags, cmd, 'out_hwpt_id'),
      idevId: num(iommu_test_cmd_mock_domain_flags, cmd, 'out_idev_id'),
    };
  }

  testCmdMockDomainFlags(ioasId: number, devFlags: number): MockDomain {
    return this._mockDomainFlags(ioasId, devFlags);
  }

  errMockDomainFlags(errno: string, ioasId: number, devFlags: number): void {
    expectErrno(errno, () => this._mockDomainFlags(ioasId, devFlags), `MOCK_DOMAIN_FLAGS(${ioasId}, ${devFlags})`);
  }

  _mockDomainReplace(stdevId: number, ptId: number): number {
    const cmd = enc(iommu_test_cmd_mock_domain_replace, { op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, id: stdevId, pt_id: ptId });
    this.testCmd(cmd);
    return num(iommu_test_cmd_mock_domain_replace, cmd, 'pt_id');
  }

  testCmdMockDomainReplace(stdevId: number, ptId: number): number {
    return this._mockDomainReplace(stdevId, ptId);
  }

  errMockDomainReplace(errno: string, stdevId: number, ptId: number): void {
    expectErrno(errno, () => this._mockDomainReplace(stdevId, ptId), `MOCK_DOMAIN_REPLACE(${stdevId}, ${ptId})`);
  }

  // ---- HWPTs ---------------------------------------------------------------------------------

  _hwptAlloc(deviceId: number, ptId: number, flags: number, opts: HwptAllocOpts = {}): number {
    const cmd = enc(iommu_hwpt_alloc, {
      flags,
      dev_id: deviceId,
      pt_id: ptId,
      data_type: opts.dataType ?? IOMMU_HWPT_DATA_NONE,
      data_len: opts.dataLen ?? 0,
      data_uptr: opts.data ? opts.data.addr : 0,
      fault_id: opts.faultId ?? 0,
    });
    this.ioctl(IOMMU_HWPT_ALLOC, cmd);
    return num(iommu_hwpt_alloc, cmd, 'out_hwpt_id');
  }

  testCmdHwptAlloc(deviceId: number, ptId: number, flags: number): number {
    return this._hwptAlloc(deviceId, ptId, flags);
  }

  errHwptAlloc(errno: string, deviceId: number, ptId: number, flags: number): void {
    expectErrno(errno, () => this._hwptAlloc(deviceId, ptId, flags), `HWPT_ALLOC(dev ${deviceId}, pt ${ptId}, flags ${flags})`);
  }

  testCmdHwptAllocIommupt(deviceId: number, ptId: number, flags: number, pagetableType: number): number {
    const data = this.put(enc(iommu_hwpt_selftest, { pagetable_type: pagetableType }));
    return this._hwptAlloc(deviceId, ptId, flags, { dataType: IOMMU_HWPT_DATA_SELFTEST, data, dataLen: iommu_hwpt_selftest.size });
  }

  testCmdHwptAllocNested(deviceId: number, ptId: number, flags: number, dataType: number, data: UserBuf | null, dataLen: number): number {
    return this._hwptAlloc(deviceId, ptId, flags, { dataType, data, dataLen });
  }

  errHwptAllocNested(errno: string, deviceId: number, ptId: number, flags: number, dataType: number, data: UserBuf | null, dataLen: number): void {
    expectErrno(errno, () => this._hwptAlloc(deviceId, ptId, flags, { dataType, data, dataLen }), `HWPT_ALLOC nested(pt ${ptId}, type ${dataType})`);
  }

  testCmdHwptAllocIopf(deviceId: number, ptId: number, faultId: number, flags: number, dataType: number, data: UserBuf | null, dataLen: number): number {
    return this._hwptAlloc(deviceId, ptId, flags, { faultId, dataType, data, dataLen });
  }

  errHwptAllocIopf(errno: string, deviceId: number, ptId: number, faultId: number, flags: number, dataType: number, data: UserBuf | null, dataLen: number): void {
    expectErrno(errno, () => this._hwptAlloc(deviceId, ptId, flags, { faultId, dataType, data, dataLen }), `HWPT_ALLOC iopf(fault ${faultId})`);
  }

  testCmdHwptCheckIotlb(hwptId: number, iotlbId: number, expected: number): void {
    // The union member's `id` (the IOTLB slot, at 16) shadows the header's `id` (at 8) in the codec.
    const cmd = enc(iommu_test_cmd_check_iotlb, { op: IOMMU_TEST_OP_MD_CHECK_IOTLB, id: iotlbId, iotlb: expected });
    setHeaderId(cmd, hwptId);
    this.testCmd(cmd);
  }

  testCmdHwptCheckIotlbAll(hwptId: number, expected: number): void {
    for (let i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) this.testCmdHwptCheckIotlb(hwptId, i, expected);
  }

  testCmdDevCheckCache(deviceId: number, cacheId: number, expected: number): void {
    const cmd = enc(iommu_test_cmd_check_dev_cache, { op: IOMMU_TEST_OP_DEV_CHECK_CACHE, id: cacheId, cache: expected });
    setHeaderId(cmd, deviceId);
    this.testCmd(cmd);
  }

  testCmdDevCheckCacheAll(deviceId: number, expected: number): void {
    for (let c = 0; c < MOCK_DEV_CACHE_NUM; c++) this.testCmdDevCheckCache(deviceId, c, expected);
  }

  /** _test_cmd_hwpt_invalidate / _test_cmd_viommu_invalidate: returns the entry_num written back, and the errno. */
  _hwptInvalidate(id: number, reqs: UserBuf | null, dataType: number, entryLen: number, entryNum: number): { num: number; errno: string | undefined } {
    const cmd = enc(iommu_hwpt_invalidate, { hwpt_id: id, data_type: dataType, data_uptr: reqs ? reqs.addr : 0, entry_len: entryLen, entry_num: entryNum });
    const errno = errnoOf(() => this.ioctl(IOMMU_HWPT_INVALIDATE, cmd));
    return { num: num(iommu_hwpt_invalidate, cmd, 'entry_num'), errno };
  }

  testCmdHwptInvalidate(hwptId: number, reqs: UserBuf | null, dataType: number, entryLen: number, entryNum: number): number {
    const r = this._hwptInvalidate(hwptId, reqs, dataType, entryLen, entryNum);
    if (r.errno) throw new CaseFailure(`IOMMU_HWPT_INVALIDATE(${hwptId}): failed with ${r.errno}`);
    return r.num;
  }

  /** Returns entry_num written back. */
  errHwptInvalidate(errno: string, hwptId: number, reqs: UserBuf | null, dataType: number, entryLen: number, entryNum: number): number {
    const r = this._hwptInvalidate(hwptId, reqs, dataType, entryLen, entryNum);
    assertEq(errno, r.errno ?? 'success', `IOMMU_HWPT_INVALIDATE(${hwptId}) errno`);
    return r.num;
  }

  testCmdViommuInvalidate(viommuId: number, reqs: UserBuf | null, entryLen: number, entryNum: number): number {
    return this.testCmdHwptInvalidate(viommuId, reqs, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST, entryLen, entryNum);
  }

  errViommuInvalidate(errno: string, viommuId: number, reqs: UserBuf | null, dataType: number, entryLen: number, entryNum: number): number {
    return this.errHwptInvalidate(errno, viommuId, reqs, dataType, entryLen, entryNum);
  }

  // ---- accesses ------------------------------------------------------------------------------

  testCmdAccessReplaceIoas(accessId: number, ioasId: number): void {
    this.testCmd(enc(iommu_test_cmd_access_replace_ioas, { op: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, id: accessId, ioas_id: ioasId }));
  }

  _createAccess(ioasId: number, flags: number): number {
    const cmd = enc(iommu_test_cmd_create_access, { op: IOMMU_TEST_OP_CREATE_ACCESS, id: ioasId, flags });
    this.testCmd(cmd);
    return num(iommu_test_cmd_create_access, cmd, 'out_access_fd');
  }

  testCmdCreateAccess(ioasId: number, flags: number): number {
    return this._createAccess(ioasId, flags);
  }

  /** The access is an fd: destroying it is close(). */
  testCmdDestroyAccess(accessId: number): void {
    this.process.close(accessId);
  }

  _destroyAccessPages(accessId: number, accessPagesId: number): void {
    this.testCmd(enc(iommu_test_cmd_destroy_access_pages, { op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, id: accessId, access_pages_id: accessPagesId }));
  }

  testCmdDestroyAccessPages(accessId: number, accessPagesId: number): void {
    this._destroyAccessPages(accessId, accessPagesId);
  }

  errDestroyAccessPages(errno: string, accessId: number, accessPagesId: number): void {
    expectErrno(errno, () => this._destroyAccessPages(accessId, accessPagesId), 'DESTROY_ACCESS_PAGES');
  }

  // ---- dma-buf -------------------------------------------------------------------------------

  testCmdGetDmabuf(length: number): number {
    return this.testCmd(enc(iommu_test_cmd_dmabuf_get, { op: IOMMU_TEST_OP_DMABUF_GET, length, open_flags: O_CLOEXEC }));
  }

  testCmdRevokeDmabuf(dmabufFd: number, revoked: boolean): void {
    this.testCmd(enc(iommu_test_cmd_dmabuf_revoke, { op: IOMMU_TEST_OP_DMABUF_REVOKE, dmabuf_fd: dmabufFd >>> 0, revoked: revoked ? 1 : 0 }));
  }

  // ---- memory limit --------------------------------------------------------------------------

  testIoctlSetTempMemoryLimit(limit: number): void {
    this.testCmd(enc(iommu_test_cmd_memory_limit, { op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, limit }));
  }

  testIoctlSetDefaultMemoryLimit(): void {
    this.testIoctlSetTempMemoryLimit(65536);
  }

  // ---- refs and maps -------------------------------------------------------------------------

  /** check_refs: the kernel checks every page of [ptr, ptr+length) has `refs` pins. */
  checkRefs(ptr: UserBuf | N, length: N, refs: number): void {
    const uptr = typeof ptr === 'object' ? ptr.addr : ptr;
    this.testCmd(enc(iommu_test_cmd_check_refs, { op: IOMMU_TEST_OP_MD_CHECK_REFS, length, uptr, refs }));
  }

  /** MD_CHECK_MAP on `hwptId`: the domain maps [iova, iova+length) onto the user pages at ptr. */
  checkMap(hwptId: number, iova: N, length: N, ptr: UserBuf | N): void {
    const uptr = typeof ptr === 'object' ? ptr.addr : ptr;
    this.testCmd(enc(iommu_test_cmd_check_map, { op: IOMMU_TEST_OP_MD_CHECK_MAP, id: hwptId, iova, length, uptr }));
  }

  // ---- dirty tracking ------------------------------------------------------------------------

  _setDirtyTracking(hwptId: number, enabled: boolean): void {
    this.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, enc(iommu_hwpt_set_dirty_tracking, { flags: enabled ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id: hwptId }));
  }

  testCmdSetDirtyTracking(hwptId: number, enabled: boolean): void {
    this._setDirtyTracking(hwptId, enabled);
  }

  _getDirtyBitmap(fd: number, hwptId: number, length: N, iova: N, pageSize: N, bitmap: UserBuf | N, flags: number): void {
    const data = typeof bitmap === 'object' ? bitmap.addr : bitmap;
    const cmd = enc(iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwptId, flags, iova, length, page_size: pageSize, data });
    this.process.ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, cmd);
  }

  testCmdGetDirtyBitmap(fd: number, hwptId: number, length: N, iova: N, pageSize: N, bitmap: UserBuf | N, flags: number): void {
    this._getDirtyBitmap(fd, hwptId, length, iova, pageSize, bitmap, flags);
  }

  /** IOMMU_TEST_OP_DIRTY: marks the pages set in `bitmap` dirty in the mock domain; returns out_nr_dirty. */
  testCmdMockDomainSetDirty(fd: number, hwptId: number, length: N, iova: N, pageSize: N, bitmap: UserBuf): bigint {
    const cmd = enc(iommu_test_cmd_dirty, { op: IOMMU_TEST_OP_DIRTY, id: hwptId, iova, length, page_size: pageSize, uptr: bitmap.addr });
    this.process.ioctl(fd, IOMMU_TEST_CMD, cmd);
    return big(iommu_test_cmd_dirty, cmd, 'out_nr_dirty');
  }

  /** _test_mock_dirty_bitmaps: marks every other PTE dirty, reads the bitmap back twice. */
  testMockDirtyBitmaps(hwptId: number, length: N, iova: N, pageSize: number, pteSize: number, bitmap: UserBuf, nbits: number, flags: number): void {
    const npte = pteSize / pageSize;
    const pteset = 2 * npte;
    const nr = Math.floor(nbits / pteset) || 1;
    const bitmapSize = Math.ceil(nbits / 8);
    const bits = bitmap.bytes;

    bits.fill(0, 0, bitmapSize);
    for (let i = 0; i < nbits; i += pteset) setBit(i, bits);
    const outDirty = this.testCmdMockDomainSetDirty(this.fd, hwptId, length, iova, pageSize, bitmap);
    assertEq(nr, outDirty, 'out_nr_dirty');

    bits.fill(0, 0, bitmapSize);
    this.testCmdGetDirtyBitmap(this.fd, hwptId, length, iova, pageSize, bitmap, flags);
    for (let i = 0; i < nbits; i += pteset) {
      for (let j = 0; j < pteset; j++) assertEq(j < npte, testBit(i + j, bits), `dirty bit ${i + j}`);
      assertEq(!(i % pteset), testBit(i, bits), `dirty bit ${i}`);
    }

    bits.fill(0, 0, bitmapSize);
    this.testCmdGetDirtyBitmap(this.fd, hwptId, length, iova, pageSize, bitmap, flags);
    const noClear = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
    for (let i = 0; i < nbits; i += pteset) {
      for (let j = 0; j < pteset; j++) assertEq(j < npte && noClear, testBit(i + j, bits), `dirty bit ${i + j} after read`);
    }
  }

  // ---- hw_info -------------------------------------------------------------------------------

  /** _test_cmd_get_hw_info with its checks of the returned selftest info. */
  _getHwInfo(deviceId: number, dataType: number, data: UserBuf | null, dataLen: number): { capabilities: bigint; maxPasid: number } {
    const cmd = enc(iommu_hw_info, {
      flags: dataType !== IOMMU_HW_INFO_TYPE_DEFAULT ? IOMMU_HW_INFO_FLAG_INPUT_TYPE : 0,
      dev_id: deviceId,
      data_len: dataLen,
      in_data_type: dataType,
      data_uptr: data ? data.addr : 0,
    });
    this.ioctl(IOMMU_GET_HW_INFO, cmd);
    assertEq(IOMMU_HW_INFO_TYPE_SELFTEST, num(iommu_hw_info, cmd, 'out_data_type'), 'out_data_type');
    const outLen = num(iommu_hw_info, cmd, 'data_len');
    assertEq(iommu_test_hw_info.size, outLen, 'hw_info data_len');
    if (data && dataLen > outLen) {
      for (let i = outLen; i < dataLen; i++) assertEq(0, data.bytes[i], `hw_info trailing byte ${i}`);
    }
    if (data) {
      const dv = new DataView(data.bytes.buffer, data.bytes.byteOffset);
      if (dataLen >= 8) assertEq(IOMMU_HW_INFO_SELFTEST_REGVAL, dv.getUint32(4, true), 'test_reg');
      if (dataLen >= 4) assertEq(0, dv.getUint32(0, true), 'hw_info flags');
    }
    return { capabilities: big(iommu_hw_info, cmd, 'out_capabilities'), maxPasid: num(iommu_hw_info, cmd, 'out_max_pasid_log2') };
  }

  testCmdGetHwInfo(deviceId: number, dataType: number, data: UserBuf | null, dataLen: number): void {
    this._getHwInfo(deviceId, dataType, data, dataLen);
  }

  errGetHwInfo(errno: string, deviceId: number, dataType: number, data: UserBuf | null, dataLen: number): void {
    expectErrno(errno, () => this._getHwInfo(deviceId, dataType, data, dataLen), `GET_HW_INFO(${deviceId})`);
  }

  testCmdGetHwCapabilities(deviceId: number): bigint {
    return this._getHwInfo(deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, null, 0).capabilities;
  }

  testCmdGetHwInfoPasid(deviceId: number): number {
    return this._getHwInfo(deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, null, 0).maxPasid;
  }

  // ---- faults --------------------------------------------------------------------------------

  testIoctlFaultAlloc(): { faultId: number; faultFd: number } {
    const cmd = enc(iommu_fault_alloc, {});
    this.ioctl(IOMMU_FAULT_QUEUE_ALLOC, cmd);
    const faultId = num(iommu_fault_alloc, cmd, 'out_fault_id');
    const faultFd = num(iommu_fault_alloc, cmd, 'out_fault_fd');
    assertNe(0, faultId, 'out_fault_id');
    assertNe(0, faultFd, 'out_fault_fd');
    return { faultId, faultFd };
  }

  /** Triggers an IOPF, reads it from the fault fd and answers it with success. */
  _triggerIopf(deviceId: number, pasid: number, faultFd: number): void {
    this.testCmd(
      enc(iommu_test_cmd_trigger_iopf, {
        op: IOMMU_TEST_OP_TRIGGER_IOPF,
        dev_id: deviceId,
        pasid,
        grpid: 0x2,
        perm: IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE,
        addr: 0xdeadbeaf,
      }),
    );
    const fault = new Uint8Array(iommu_hwpt_pgfault.size);
    const got = this.process.read(faultFd, fault);
    if (got <= 0) throw new CaseFailure('reading the fault fd returned nothing');
    const response = enc(iommu_hwpt_page_response, { cookie: num(iommu_hwpt_pgfault, fault, 'cookie'), code: IOMMUFD_PAGE_RESP_SUCCESS });
    const put = this.process.write(faultFd, response);
    if (put <= 0) throw new CaseFailure('writing the page response returned nothing');
  }

  testCmdTriggerIopf(deviceId: number, faultFd: number): void {
    this._triggerIopf(deviceId, 0x1, faultFd);
  }

  testCmdTriggerIopfPasid(deviceId: number, pasid: number, faultFd: number): void {
    this._triggerIopf(deviceId, pasid, faultFd);
  }

  // ---- vIOMMU family -------------------------------------------------------------------------

  _viommuAlloc(deviceId: number, hwptId: number, flags: number, type: number, data: UserBuf | null, dataLen: number): number {
    const cmd = enc(iommu_viommu_alloc, { flags, type, dev_id: deviceId, hwpt_id: hwptId, data_uptr: data ? data.addr : 0, data_len: dataLen });
    this.ioctl(IOMMU_VIOMMU_ALLOC, cmd);
    return num(iommu_viommu_alloc, cmd, 'out_viommu_id');
  }

  testCmdViommuAlloc(deviceId: number, hwptId: number, type: number, data: UserBuf | null, dataLen: number): number {
    return this._viommuAlloc(deviceId, hwptId, 0, type, data, dataLen);
  }

  errViommuAlloc(errno: string, deviceId: number, hwptId: number, type: number, data: UserBuf | null, dataLen: number): void {
    expectErrno(errno, () => this._viommuAlloc(deviceId, hwptId, 0, type, data, dataLen), `VIOMMU_ALLOC(dev ${deviceId}, hwpt ${hwptId})`);
  }

  _vdeviceAlloc(viommuId: number, idevId: number, virtId: N): number {
    const cmd = enc(iommu_vdevice_alloc, { viommu_id: viommuId, dev_id: idevId, virt_id: virtId });
    this.ioctl(IOMMU_VDEVICE_ALLOC, cmd);
    return num(iommu_vdevice_alloc, cmd, 'out_vdevice_id');
  }

  testCmdVdeviceAlloc(viommuId: number, idevId: number, virtId: N): number {
    return this._vdeviceAlloc(viommuId, idevId, virtId);
  }

  errVdeviceAlloc(errno: string, viommuId: number, idevId: number, virtId: N): void {
    expectErrno(errno, () => this._vdeviceAlloc(viommuId, idevId, virtId), `VDEVICE_ALLOC(viommu ${viommuId}, dev ${idevId})`);
  }

  _hwQueueAlloc(viommuId: number, type: number, idx: number, baseAddr: N, length: N): number {
    const cmd = enc(iommu_hw_queue_alloc, { viommu_id: viommuId, type, index: idx, nesting_parent_iova: baseAddr, length });
    this.ioctl(IOMMU_HW_QUEUE_ALLOC, cmd);
    return num(iommu_hw_queue_alloc, cmd, 'out_hw_queue_id');
  }

  testCmdHwQueueAlloc(viommuId: number, type: number, idx: number, baseAddr: N, length: N): number {
    return this._hwQueueAlloc(viommuId, type, idx, baseAddr, length);
  }

  errHwQueueAlloc(errno: string, viommuId: number, type: number, idx: number, baseAddr: N, length: N): void {
    expectErrno(errno, () => this._hwQueueAlloc(viommuId, type, idx, baseAddr, length), `HW_QUEUE_ALLOC(index ${idx})`);
  }

  _veventqAlloc(viommuId: number, type: number, depth: number): { veventqId: number; veventqFd: number } {
    const cmd = enc(iommu_veventq_alloc, { type, veventq_depth: depth, viommu_id: viommuId });
    this.ioctl(IOMMU_VEVENTQ_ALLOC, cmd);
    return { veventqId: num(iommu_veventq_alloc, cmd, 'out_veventq_id'), veventqFd: num(iommu_veventq_alloc, cmd, 'out_veventq_fd') };
  }

  testCmdVeventqAlloc(viommuId: number, type: number, depth: number): { veventqId: number; veventqFd: number } {
    return this._veventqAlloc(viommuId, type, depth);
  }

  errVeventqAlloc(errno: string, viommuId: number, type: number, depth: number): void {
    expectErrno(errno, () => this._veventqAlloc(viommuId, type, depth), `VEVENTQ_ALLOC(type ${type})`);
  }

  testCmdTriggerVevents(devId: number, nvevents: number): void {
    const cmd = enc(iommu_test_cmd_trigger_vevent, { op: IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: devId });
    for (let i = 0; i < nvevents; i++) this.testCmd(cmd);
  }

  /**
   * _test_cmd_read_vevents: polls, reads `nvevents` records and checks each one's sequence and
   * virt_id. Throws an errno-carrying error (EOVERFLOW on a lost event, EINVAL on a wrong virt_id).
   */
  async _readVevents(eventFd: number, nvevents: number, virtId: number, seq: { prev: number }): Promise<void> {
    await this.process.poll(eventFd, POLLIN, 1000);
    const rec = iommufd_vevent_header.size + iommu_viommu_event_selftest.size;
    const data = new Uint8Array(nvevents * rec);
    let bytes: number;
    try {
      bytes = this.process.read(eventFd, data);
    } catch {
      bytes = 0;
    }
    if (bytes <= 0) throw errnoError('EFAULT');
    for (let i = 0; i < nvevents; i++) {
      const flags = iommufd_vevent_header.get(data, 'flags', i * rec);
      const sequence = iommufd_vevent_header.get(data, 'sequence', i * rec);
      if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS || sequence - seq.prev > 1) {
        seq.prev = sequence;
        throw errnoError('EOVERFLOW');
      }
      seq.prev = sequence;
      // The C helper reads the payload of the first record each time; so do we.
      if (iommu_viommu_event_selftest.get(data, 'virt_id', iommufd_vevent_header.size) !== virtId) throw errnoError('EINVAL');
    }
  }

  async testCmdReadVevents(eventFd: number, nvevents: number, virtId: number, seq: { prev: number }): Promise<void> {
    await this._readVevents(eventFd, nvevents, virtId, seq);
  }

  async errReadVevents(errno: string, eventFd: number, nvevents: number, virtId: number, seq: { prev: number }): Promise<void> {
    await expectErrnoAsync(errno, () => this._readVevents(eventFd, nvevents, virtId, seq), 'read vevents');
  }

  // ---- PASID ---------------------------------------------------------------------------------

  _pasidAttach(stdevId: number, pasid: number, ptId: number): void {
    this.testCmd(enc(iommu_test_cmd_pasid_attach, { op: IOMMU_TEST_OP_PASID_ATTACH, id: stdevId, pasid, pt_id: ptId }));
  }

  testCmdPasidAttach(pasid: number, hwptId: number): void {
    this._pasidAttach(this.stdev_id, pasid, hwptId);
  }

  errPasidAttach(errno: string, pasid: number, hwptId: number): void {
    expectErrno(errno, () => this._pasidAttach(this.stdev_id, pasid, hwptId), `PASID_ATTACH(${pasid}, ${hwptId})`);
  }

  _pasidReplace(stdevId: number, pasid: number, ptId: number): void {
    this.testCmd(enc(iommu_test_cmd_pasid_replace, { op: IOMMU_TEST_OP_PASID_REPLACE, id: stdevId, pasid, pt_id: ptId }));
  }

  testCmdPasidReplace(pasid: number, hwptId: number): void {
    this._pasidReplace(this.stdev_id, pasid, hwptId);
  }

  errPasidReplace(errno: string, pasid: number, hwptId: number): void {
    expectErrno(errno, () => this._pasidReplace(this.stdev_id, pasid, hwptId), `PASID_REPLACE(${pasid}, ${hwptId})`);
  }

  testCmdPasidDetach(pasid: number): void {
    this.testCmd(enc(iommu_test_cmd_pasid_detach, { op: IOMMU_TEST_OP_PASID_DETACH, id: this.stdev_id, pasid }));
  }

  /** test_cmd_pasid_check_hwpt: returns the errno name, or undefined when the check passed. */
  pasidCheckHwpt(stdevId: number, pasid: number, hwptId: number): string | undefined {
    return errnoOf(() => this.testCmd(enc(iommu_test_cmd_pasid_check, { op: IOMMU_TEST_OP_PASID_CHECK_HWPT, id: stdevId, pasid, hwpt_id: hwptId })));
  }

  // ---- teardown ------------------------------------------------------------------------------

  /** teardown_iommufd: close the context, then check from a fresh one that no page of `buffer` is still pinned. */
  teardownIommufd(): void {
    if (this.fd === -1) return;
    this.process.close(this.fd);
    const fd = this.process.open('/dev/iommu', O_RDWR);
    assertNe(-1, fd, 'open /dev/iommu');
    this.process.ioctl(fd, IOMMU_TEST_CMD, enc(iommu_test_cmd_check_refs, { op: IOMMU_TEST_OP_MD_CHECK_REFS, length: this.buffer.bytes.length, uptr: this.buffer.addr }));
    this.process.close(fd);
    this.fd = -1;
  }
}

const RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** Sets the test command header's `id` (offset 8), which a union member named `id` shadows in the codec. */
export function setHeaderId(cmd: Uint8Array, id: number): void {
  new DataView(cmd.buffer, cmd.byteOffset, cmd.byteLength).setUint32(8, id, true);
}

export function setBit(nr: number, bits: Uint8Array): void {
  bits[nr >> 3]! |= 1 << (nr & 7);
}

export function testBit(nr: number, bits: Uint8Array): boolean {
  return ((bits[nr >> 3]! >> (nr & 7)) & 1) === 1;
}

/** An error shaped like a failed syscall, for helpers that report an errno the way the C helpers set errno. */
export function errnoError(code: string): Error {
  return Object.assign(new Error(code), { code, errno: 0 });
}

/** ffs(3): the 1-based index of the lowest set bit. */
export function ffs(x: number): number {
  for (let i = 0; i < 53; i++) if (Math.floor(x / 2 ** i) % 2 === 1) return i + 1;
  return 0;
}
