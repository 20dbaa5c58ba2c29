// IOMMU_TEST_CMD (selftest.c's iommufd_test): the kernel's test hook into iommufd internals, for the
// kernel selftest and the project's port of it. Every op of 7.2.13; each handler keeps the
// kernel's order of checks and its errnos. Mock devices are SELFTEST objects that own a mock device
// on the host and its DEVICE object, bound and attached as selftest.c does; accesses are fds.

import * as U from '@viommu/uapi';
import { SystemError, iommu_test_cmd } from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import { deviceAttach, deviceBind, deviceDetach, deviceReplace, deviceUnbind, getDevice, type IommufdDevice } from '../device/device.js';
import type { SimDevice } from '../device/sim-device.js';
import { NO_PASID, type DriverV1 } from '../driver/driver.js';
import type { SimDeviceSpec } from '../host/sim-host.js';
import type { AttachableHwpt as Hwpt } from '../hwpt/hwpt.js';
import { framePinCount } from '../ioas/pin-counts.js';
import { ACCESS_RW_WRITE, DmaBuf, dmaBufOf, type DmaBufFile, type IoasAccess } from '../ioas/index.js';
import { getIoas, type Ioas } from '../iommufd/ioas.js';
import { registerIoctl } from '../ioctl/registry.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { OpenFile } from '../process/file.js';
import { MockPagingDomain } from './mock-domain.js';
import { MockDevice, MockNestedDomain, isMockDriver } from './mock-driver.js';

const PAGE = U.PAGE_SIZE;
const U64_MAX = (1n << 64n) - 1n;
/** The kernel refuses ACCESS_PAGES / ACCESS_RW over 16 MiB (so syzkaller cannot make it WARN). */
const ACCESS_MAX = 16 * 1024 * 1024;

const fail = (code: U.ErrnoName, why: string): never => {
  throw new SystemError(code, 'ioctl', why);
};

/** What MOCK_DOMAIN needs of the host beyond HostCore: adding and removing devices (SimHost has them). */
interface DeviceHost {
  addDevice(spec: SimDeviceSpec, opts?: { cdev?: boolean }): SimDevice;
  removeDevice(name: string): void;
}

function deviceHost(ctx: IommufdContext): DeviceHost {
  const h = ctx.host as unknown as Partial<DeviceHost>;
  if (typeof h.addDevice !== 'function' || typeof h.removeDevice !== 'function') fail('ENODEV', 'the host cannot add mock devices');
  return h as DeviceHost;
}

function mockDriverOf(ctx: IommufdContext): DriverV1 {
  for (const d of ctx.host.drivers.values()) if (isMockDriver(d)) return d;
  return fail('ENODEV', 'no selftest mock driver on this host');
}

/** The header's `id` (offset 8); union members named `id` shadow it in the member codecs. */
function headerId(cmd: Uint8Array): number {
  return new DataView(cmd.buffer, cmd.byteOffset, cmd.byteLength).getUint32(8, true);
}

// ---- SELFTEST objects: a mock device and its DEVICE ----------------------------------------------

export class SelftestObj extends IommufdObject {
  readonly type = OBJ.SELFTEST;
  idev: IommufdDevice | undefined;
  sim: SimDevice | undefined;

  constructor(readonly ctx: IommufdContext) {
    super();
  }

  get mdev(): MockDevice {
    return this.sim!.ddev as MockDevice;
  }

  /** iommufd_selftest_destroy: detach the RID, unbind, and remove the mock device. */
  destroy(): void {
    if (this.idev) {
      deviceDetach(this.idev, NO_PASID);
      deviceUnbind(this.idev);
      this.idev = undefined;
    }
    if (this.sim) {
      deviceHost(this.ctx).removeDevice(this.sim.name);
      this.sim = undefined;
    }
  }
}

/** The lowest free mock device number on the host (mock_dev_ida). */
function mockDeviceName(ctx: IommufdContext): string {
  for (let i = 0; ; i++) {
    const name = `iommufd_mock${i}`;
    if (!ctx.host.devices.has(name)) return name;
  }
}

function mockDomain(ucmd: Ucmd, op: number): void {
  const cmd = ucmd.cmd;
  const ptId = headerId(cmd);
  const devFlags = op === U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS ? U.iommu_test_cmd_mock_domain_flags.get(cmd, 'dev_flags') : 0;
  const ctx = ucmd.ctx;
  const sobj = new SelftestObj(ctx);
  ctx.objects.reserve(sobj);
  ucmd.newObject(sobj); // aborted (destroy() undoes what was done) if anything below fails
  const driver = mockDriverOf(ctx);
  ctx.host.failNth.point('selftest:mock_dev_create');
  const name = mockDeviceName(ctx);
  sobj.sim = deviceHost(ctx).addDevice(
    { name, iommu: driver.name, rid: Number(name.slice('iommufd_mock'.length)), pasidBits: devFlags & U.MOCK_FLAGS_DEVICE_PASID ? U.MOCK_PASID_WIDTH : 0, flags: devFlags },
    { cdev: false },
  );
  // Mock devices do not hold the iommufd file (the kernel binds them from inside the ioctl).
  const idev = deviceBind(ctx, sobj.sim, { holdsFile: false });
  sobj.idev = idev;
  const hwptId = deviceAttach(idev, NO_PASID, ptId);
  U.iommu_test_cmd_mock_domain.set(cmd, 'out_hwpt_id', hwptId);
  U.iommu_test_cmd_mock_domain.set(cmd, 'out_stdev_id', sobj.id);
  U.iommu_test_cmd_mock_domain.set(cmd, 'out_idev_id', idev.id);
  ucmd.respond();
}

function getSelftestObj(ctx: IommufdContext, id: number): SelftestObj {
  return ctx.objects.get<SelftestObj>(id, OBJ.SELFTEST);
}

function mockDomainReplace(ucmd: Ucmd): void {
  const sobj = getSelftestObj(ucmd.ctx, headerId(ucmd.cmd));
  const ptId = deviceReplace(sobj.idev!, NO_PASID, U.iommu_test_cmd_mock_domain_replace.get(ucmd.cmd, 'pt_id'));
  U.iommu_test_cmd_mock_domain_replace.set(ucmd.cmd, 'pt_id', ptId);
  ucmd.respond();
}

// ---- the IOAS and the mock domains ---------------------------------------------------------------

function addReserved(ucmd: Ucmd): void {
  const { start, length } = U.iommu_test_cmd_add_reserved.decode(ucmd.cmd);
  if (!length) fail('EINVAL', 'length 0');
  const last = start + length - 1n;
  if (last > U64_MAX) fail('EOVERFLOW', 'start + length overflows');
  getIoas(ucmd.ctx, headerId(ucmd.cmd)).iopt.reserve(start, last, null);
}

/** get_md_pagetable: a HWPT_PAGING whose domain is the mock's (EINVAL otherwise). */
function mockPaging(ctx: IommufdContext, id: number): MockPagingDomain {
  const hwpt = ctx.objects.get<Hwpt>(id, OBJ.HWPT_PAGING);
  const domain = hwpt.domain;
  if (!(domain instanceof MockPagingDomain)) fail('EINVAL', `HWPT ${id} is not a mock paging domain`);
  return domain as MockPagingDomain;
}

/** The physical frame behind user page `va` (get_user_pages_fast): EFAULT when not mapped. */
function userFrame(ucmd: Ucmd, va: bigint): number {
  const frame = ucmd.memory.frameOf(va, false);
  if (frame === undefined) fail('EFAULT', `user address 0x${va.toString(16)} is not mapped`);
  return frame!;
}

/** MD_CHECK_MAP: every mock page under [iova, iova+length) maps the user page under uptr. */
function checkMap(ucmd: Ucmd): void {
  let { iova, length, uptr } = U.iommu_test_cmd_check_map.decode(ucmd.cmd);
  const domain = mockPaging(ucmd.ctx, headerId(ucmd.cmd));
  const bitmap = domain.geometry.pgsizeBitmap;
  const pageSize = bitmap & -bitmap;
  if (iova % pageSize || length % pageSize || uptr % pageSize || uptr + length > U64_MAX) fail('EINVAL', 'CHECK_MAP arguments not aligned');
  for (; length; length -= pageSize) {
    const frame = userFrame(ucmd, uptr - (uptr % BigInt(PAGE)));
    const want = BigInt(frame * PAGE) + (uptr % BigInt(PAGE));
    if (domain.iovaToPhys(iova) !== want) fail('EINVAL', `IOVA 0x${iova.toString(16)} does not map the user page`);
    iova += pageSize;
    uptr += pageSize;
  }
}

/** MD_CHECK_REFS: every user page of [uptr, uptr+length) is pinned exactly `refs` times. */
function checkRefs(ucmd: Ucmd): void {
  let { length, uptr } = U.iommu_test_cmd_check_refs.decode(ucmd.cmd);
  const refs = U.iommu_test_cmd_check_refs.get(ucmd.cmd, 'refs');
  const P = BigInt(PAGE);
  if (length % P || uptr % P || uptr + length > U64_MAX) fail('EINVAL', 'CHECK_REFS arguments not page aligned');
  for (; length; length -= P) {
    const count = framePinCount(ucmd.ctx.host.physical, userFrame(ucmd, uptr));
    if (count !== refs) fail('EIO', `page at 0x${uptr.toString(16)} has ${count} pins, not ${refs}`);
    uptr += P;
  }
}

function checkIotlb(ucmd: Ucmd): void {
  const hwpt = ucmd.ctx.objects.get<Hwpt>(headerId(ucmd.cmd), OBJ.HWPT_NESTED);
  const domain = hwpt.domain;
  if (!(domain instanceof MockNestedDomain)) fail('EINVAL', 'not a mock nested domain');
  const { id: iotlbId, iotlb } = U.iommu_test_cmd_check_iotlb.decode(ucmd.cmd);
  if (iotlbId > U.MOCK_NESTED_DOMAIN_IOTLB_ID_MAX || (domain as MockNestedDomain).iotlb[iotlbId] !== iotlb) fail('EINVAL', `IOTLB ${iotlbId} mismatch`);
}

function mockDeviceOf(idev: IommufdDevice): MockDevice {
  if (!(idev.ddev instanceof MockDevice)) fail('EINVAL', 'not a mock device');
  return idev.ddev as MockDevice;
}

function devCheckCache(ucmd: Ucmd): void {
  const mdev = mockDeviceOf(getDevice(ucmd.ctx, headerId(ucmd.cmd)));
  const { id: cacheId, cache } = U.iommu_test_cmd_check_dev_cache.decode(ucmd.cmd);
  if (cacheId > U.MOCK_DEV_CACHE_ID_MAX || mdev.cache[cacheId] !== cache) fail('EINVAL', `device cache ${cacheId} mismatch`);
}

function dirty(ucmd: Ucmd): void {
  const c = U.iommu_test_cmd_dirty.decode(ucmd.cmd);
  if (!c.page_size || !c.length || c.iova % c.page_size || c.length % c.page_size || !c.uptr) fail('EINVAL', 'DIRTY arguments');
  const max = Number(c.length / c.page_size);
  if (max > 16 * 1024 * 1024 * 8) fail('EOVERFLOW', 'DIRTY range too long');
  const domain = mockPaging(ucmd.ctx, headerId(ucmd.cmd));
  if (!domain.dirty?.enabled) fail('EINVAL', 'dirty tracking is not enabled');
  ucmd.ctx.host.failNth.point('selftest:dirty_bitmap');
  const bits = ucmd.memory.read(c.uptr, Math.ceil(max / 8));
  const iova = Number(c.iova);
  const ps = Number(c.page_size);
  let count = 0;
  for (let i = 0; i < max; i++) {
    if (!((bits[i >> 3]! >> (i & 7)) & 1)) continue;
    domain.setDirty(iova + i * ps);
    count++;
  }
  U.iommu_test_cmd_dirty.set(ucmd.cmd, 'out_nr_dirty', BigInt(count));
  ucmd.respond();
}

// ---- accesses ------------------------------------------------------------------------------------

interface AccessItem {
  readonly iova: bigint;
  readonly length: bigint;
  readonly id: number;
}

/** The ACCESS object an emulated in-kernel user (like a mdev driver) reads and pins IOAS memory through. */
class SelftestAccess extends IommufdObject implements IoasAccess {
  readonly type = OBJ.ACCESS;
  readonly internal = false;
  readonly iovaAlignment: number;
  ioas: Ioas | undefined;
  readonly items: AccessItem[] = [];
  nextId = 0;

  constructor(
    readonly ctx: IommufdContext,
    readonly needsPinPages: boolean,
  ) {
    super();
    this.iovaAlignment = needsPinPages ? PAGE : 1;
  }

  /** The access ops' unmap: unpins every item intersecting [iova, iova+length). */
  unmap(iova: bigint, length: bigint): void {
    const last = iova + length - 1n;
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i]!;
      if (iova > item.iova + item.length - 1n || last < item.iova) continue;
      this.items.splice(i, 1);
      this.ioas!.iopt.unpinPages(this, item.iova, item.length);
    }
  }

  /** iommufd_access_change_ioas. */
  changeIoas(next: Ioas | undefined): void {
    const cur = this.ioas;
    if (cur === next) return;
    if (next) next.iopt.addAccess(this);
    if (cur) {
      this.unmap(0n, U64_MAX + 1n);
      cur.iopt.removeAccess(this);
      unref(cur);
    }
    this.ioas = next ? ref(next) : undefined;
  }

  destroy(): void {
    this.changeIoas(undefined);
    this.ctx.putFile();
  }
}

/** The fd CREATE_ACCESS returns; closing it destroys the access. */
class AccessFile implements OpenFile {
  readonly kind = 'selftest-access';
  constructor(readonly access: SelftestAccess) {}

  release(): void {
    const a = this.access;
    unref(a);
    a.ctx.objects.remove(a);
  }
}

function accessOf(ucmd: Ucmd, fd: number): SelftestAccess {
  const file = ucmd.process.fileOf?.(fd);
  if (!(file instanceof AccessFile)) fail('EBADFD', `fd ${fd} is not a selftest access`);
  return (file as AccessFile).access;
}

function createAccess(ucmd: Ucmd): void {
  const flags = U.iommu_test_cmd_create_access.get(ucmd.cmd, 'flags');
  if (flags & ~U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) fail('EOPNOTSUPP', 'CREATE_ACCESS flags');
  const ctx = ucmd.ctx;
  ctx.host.failNth.point('selftest:alloc_access');
  const access = new SelftestAccess(ctx, (flags & U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0);
  ctx.objects.reserve(access);
  ctx.holdFile();
  ref(access); // the file's reference
  ctx.objects.finalize(access);
  try {
    access.changeIoas(getIoas(ctx, headerId(ucmd.cmd)));
  } catch (e) {
    unref(access);
    ctx.objects.remove(access);
    throw e;
  }
  const fd = ucmd.installFd(new AccessFile(access));
  U.iommu_test_cmd_create_access.set(ucmd.cmd, 'out_access_fd', fd);
  ucmd.respond();
}

function accessReplaceIoas(ucmd: Ucmd): void {
  const access = accessOf(ucmd, headerId(ucmd.cmd));
  access.changeIoas(getIoas(ucmd.ctx, U.iommu_test_cmd_access_replace_ioas.get(ucmd.cmd, 'ioas_id')));
}

function accessPages(ucmd: Ucmd): void {
  const c = U.iommu_test_cmd_access_pages.decode(ucmd.cmd);
  if (c.length > BigInt(ACCESS_MAX)) fail('ENOMEM', 'ACCESS_PAGES over 16 MiB');
  if (c.flags & ~(U.MOCK_FLAGS_ACCESS_WRITE | U.MOCK_FLAGS_ACCESS_SYZ)) fail('EOPNOTSUPP', 'ACCESS_PAGES flags');
  const access = accessOf(ucmd, headerId(ucmd.cmd));
  if (!access.needsPinPages) fail('EOPNOTSUPP', 'the access was created without NEEDS_PIN_PAGES');
  // MOCK_FLAGS_ACCESS_SYZ converts a syzkaller IOVA; the port never sets it. TODO: model it.
  if (!access.ioas) fail('ENOENT', 'the access has no IOAS');
  const iopt = access.ioas!.iopt;
  ucmd.ctx.host.failNth.point('selftest:access_pages_array');
  const frames = iopt.pinPages(access, c.iova, c.length, c.flags & U.MOCK_FLAGS_ACCESS_WRITE ? ACCESS_RW_WRITE : 0);
  try {
    if (c.uptr) {
      // iommufd_test_check_pages: the pinned pages are the user's pages
      const first = c.uptr - (c.iova % BigInt(PAGE));
      for (let i = 0; i < frames.length; i++) {
        if (userFrame(ucmd, first + BigInt(i * PAGE)) !== frames[i]) fail('EBADE', `pinned page ${i} is not the user's page`);
      }
    }
    ucmd.ctx.host.failNth.point('selftest:access_item');
  } catch (e) {
    iopt.unpinPages(access, c.iova, c.length);
    throw e;
  }
  const item = { iova: c.iova, length: c.length, id: access.nextId++ };
  access.items.push(item);
  U.iommu_test_cmd_access_pages.set(ucmd.cmd, 'out_access_pages_id', item.id);
  ucmd.respond();
}

function destroyAccessPages(ucmd: Ucmd): void {
  const access = accessOf(ucmd, headerId(ucmd.cmd));
  const id = U.iommu_test_cmd_destroy_access_pages.get(ucmd.cmd, 'access_pages_id');
  const i = access.items.findIndex((it) => it.id === id);
  if (i < 0) fail('ENOENT', `no access pages ${id}`);
  const [item] = access.items.splice(i, 1);
  access.ioas!.iopt.unpinPages(access, item!.iova, item!.length);
}

function accessRw(ucmd: Ucmd): void {
  const c = U.iommu_test_cmd_access_rw.decode(ucmd.cmd);
  if (c.length > BigInt(ACCESS_MAX)) fail('ENOMEM', 'ACCESS_RW over 16 MiB');
  if (c.flags & ~(U.MOCK_ACCESS_RW_WRITE | U.MOCK_ACCESS_RW_SLOW_PATH | U.MOCK_FLAGS_ACCESS_SYZ)) fail('EOPNOTSUPP', 'ACCESS_RW flags');
  const access = accessOf(ucmd, headerId(ucmd.cmd));
  const write = (c.flags & U.MOCK_ACCESS_RW_WRITE) !== 0;
  ucmd.ctx.host.failNth.point('selftest:access_rw_buffer');
  const tmp = write ? ucmd.memory.read(c.uptr, Number(c.length)) : new Uint8Array(Number(c.length));
  if (!access.ioas) fail('ENOENT', 'the access has no IOAS');
  // SLOW_PATH picks the kernel's page-by-page copy; the result is the same here.
  access.ioas!.iopt.rw(access, c.iova, tmp, write ? ACCESS_RW_WRITE : 0);
  if (!write) ucmd.memory.write(c.uptr, tmp);
}

// ---- faults and events ---------------------------------------------------------------------------

function triggerIopf(ucmd: Ucmd): void {
  const c = U.iommu_test_cmd_trigger_iopf.decode(ucmd.cmd);
  const idev = getDevice(ucmd.ctx, c.dev_id);
  mockDeviceOf(idev);
  const driver = idev.sim.driver;
  const host = isMockDriver(driver) ? driver.host : undefined;
  if (!host) fail('ENODEV', 'not a probed mock driver');
  // Recorded synchronously in the fault queue; the response is read by userspace later.
  host!.reportPageRequest(idev.ddev, { pasid: c.pasid, addr: c.addr, perm: c.perm, grpid: c.grpid, last: true }).catch(() => {});
}

function triggerVevent(ucmd: Ucmd): void {
  const idev = getDevice(ucmd.ctx, U.iommu_test_cmd_trigger_vevent.get(ucmd.cmd, 'dev_id'));
  const mdev = mockDeviceOf(idev);
  if (!mdev.viommu || !mdev.vdevId) fail('ENOENT', 'the device is not behind a vIOMMU with a vDEVICE');
  const payload = U.iommu_viommu_event_selftest.encode({ virt_id: Number(mdev.vdevId) });
  const errno = mdev.viommu!.core.reportEvent(U.IOMMU_VEVENTQ_TYPE_SELFTEST, payload);
  if (errno) fail(errno, 'vEVENT not queued');
}

// ---- PASIDs --------------------------------------------------------------------------------------

function pasidAttach(ucmd: Ucmd, replace: boolean): void {
  const sobj = getSelftestObj(ucmd.ctx, headerId(ucmd.cmd));
  const { pasid, pt_id } = U.iommu_test_cmd_pasid_attach.decode(ucmd.cmd);
  const id = replace ? deviceReplace(sobj.idev!, pasid, pt_id) : deviceAttach(sobj.idev!, pasid, pt_id);
  U.iommu_test_cmd_pasid_attach.set(ucmd.cmd, 'pt_id', id);
  ucmd.respond();
}

function pasidDetach(ucmd: Ucmd): void {
  const sobj = getSelftestObj(ucmd.ctx, headerId(ucmd.cmd));
  deviceDetach(sobj.idev!, U.iommu_test_cmd_pasid_detach.get(ucmd.cmd, 'pasid'));
}

function pasidCheckHwpt(ucmd: Ucmd): void {
  const sobj = getSelftestObj(ucmd.ctx, headerId(ucmd.cmd));
  const { pasid, hwpt_id } = U.iommu_test_cmd_pasid_check.decode(ucmd.cmd);
  const attached = sobj.mdev.domains.get(pasid);
  // hwpt_id 0 checks that the PASID is detached
  if (!hwpt_id) {
    if (attached) fail('EINVAL', `PASID ${pasid} is attached`);
    return;
  }
  const pt = ucmd.ctx.objects.get(hwpt_id, OBJ.ANY);
  if (pt.type !== OBJ.HWPT_NESTED && pt.type !== OBJ.HWPT_PAGING) fail('EINVAL', `${hwpt_id} is not a HWPT`);
  if (attached !== (pt as Hwpt).domain) fail('EINVAL', `PASID ${pasid} is not attached to HWPT ${hwpt_id}`);
}

// ---- dma-buf -----------------------------------------------------------------------------------

/**
 * The selftest's dma-buf exporter: `length` zeroed bytes of physically contiguous memory that
 * IOMMU_IOAS_MAP_FILE maps through a dma-buf attachment (ADR 0030). It has no mmap op.
 */
class TestDmabufFile implements DmaBufFile {
  readonly kind = 'dmabuf';
  constructor(readonly dmabuf: DmaBuf) {}

  mmap(): never {
    // dma_buf_mmap_internal without an exporter mmap op.
    return fail('EINVAL', 'the selftest dma-buf cannot be mmapped');
  }

  release(): void {
    this.dmabuf.put();
  }
}

function dmabufGet(ucmd: Ucmd): number {
  const { length, open_flags: openFlags } = U.iommu_test_cmd_dmabuf_get.decode(ucmd.cmd);
  const len = Math.ceil(length / PAGE) * PAGE;
  if (len === 0 || len > PAGE * 512) fail('EINVAL', `dma-buf length ${length}`);
  ucmd.ctx.host.failNth.point('selftest:dmabuf_memory');
  const physical = ucmd.ctx.host.physical;
  const run = physical.allocRun(len / PAGE);
  run.bytes.fill(0, 0, len);
  void openFlags; // O_CLOEXEC: the simulator has no exec
  return ucmd.installFd(new TestDmabufFile(new DmaBuf(physical, run, len)));
}

function dmabufRevoke(ucmd: Ucmd): void {
  const { dmabuf_fd: fd, revoked } = U.iommu_test_cmd_dmabuf_revoke.decode(ucmd.cmd);
  const file = ucmd.process.fileOf?.(fd);
  if (!file) fail('EBADF', `fd ${fd} is not open`);
  const dmabuf = dmaBufOf(file);
  // dma_buf_get refuses a file that is not a dma-buf; every dma-buf here is the selftest's.
  if (!dmabuf) return fail('EINVAL', `fd ${fd} is not a dma-buf`);
  dmabuf.revoked = revoked !== 0;
  // Either way the importers drop their mappings: iommufd's are then revoked for good, and only
  // new MAP_FILEs (allowed again once `revoked` is false) map the buffer.
  dmabuf.invalidateMappings();
}

// ---- the command ---------------------------------------------------------------------------------

/** The temporary memory limit (iommufd_test_memory_limit); the simulator's page batches do not use it. */
export let testMemoryLimit = 65536;

function iommufdTest(ucmd: Ucmd): number | void {
  const op = iommu_test_cmd.get(ucmd.cmd, 'op');
  switch (op) {
    case U.IOMMU_TEST_OP_ADD_RESERVED:
      return addReserved(ucmd);
    case U.IOMMU_TEST_OP_MOCK_DOMAIN:
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      return mockDomain(ucmd, op);
    case U.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
      return mockDomainReplace(ucmd);
    case U.IOMMU_TEST_OP_MD_CHECK_MAP:
      return checkMap(ucmd);
    case U.IOMMU_TEST_OP_MD_CHECK_REFS:
      return checkRefs(ucmd);
    case U.IOMMU_TEST_OP_MD_CHECK_IOTLB:
      return checkIotlb(ucmd);
    case U.IOMMU_TEST_OP_DEV_CHECK_CACHE:
      return devCheckCache(ucmd);
    case U.IOMMU_TEST_OP_CREATE_ACCESS:
      return createAccess(ucmd);
    case U.IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
      return accessReplaceIoas(ucmd);
    case U.IOMMU_TEST_OP_ACCESS_PAGES:
      return accessPages(ucmd);
    case U.IOMMU_TEST_OP_ACCESS_RW:
      return accessRw(ucmd);
    case U.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
      return destroyAccessPages(ucmd);
    case U.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: {
      // Must hold at least one batch element (unsigned long + u32) in the kernel.
      const limit = U.iommu_test_cmd_memory_limit.get(ucmd.cmd, 'limit');
      if (limit < 12) fail('EINVAL', 'memory limit below one batch element');
      testMemoryLimit = limit;
      return;
    }
    case U.IOMMU_TEST_OP_DIRTY:
      return dirty(ucmd);
    case U.IOMMU_TEST_OP_TRIGGER_IOPF:
      return triggerIopf(ucmd);
    case U.IOMMU_TEST_OP_TRIGGER_VEVENT:
      return triggerVevent(ucmd);
    case U.IOMMU_TEST_OP_PASID_ATTACH:
      return pasidAttach(ucmd, false);
    case U.IOMMU_TEST_OP_PASID_REPLACE:
      return pasidAttach(ucmd, true);
    case U.IOMMU_TEST_OP_PASID_DETACH:
      return pasidDetach(ucmd);
    case U.IOMMU_TEST_OP_PASID_CHECK_HWPT:
      return pasidCheckHwpt(ucmd);
    case U.IOMMU_TEST_OP_DMABUF_GET:
      return dmabufGet(ucmd);
    case U.IOMMU_TEST_OP_DMABUF_REVOKE:
      return dmabufRevoke(ucmd);
    default:
      return fail('EOPNOTSUPP', `unknown test op ${op}`);
  }
}

registerIoctl({ name: 'IOMMU_TEST_CMD', request: U.IOMMU_TEST_CMD, struct: iommu_test_cmd, handler: iommufdTest });
