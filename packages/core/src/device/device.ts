// The iommufd DEVICE object and attachment (the kernel's device.c): bind, attach / replace / detach
// of the RID or a PASID to a HWPT or an IOAS (automatic domains), unbind, and GET_HW_INFO.
//
// Each device is its own iommu_group here (one device per group), so the group's per-PASID
// attach table is the device's. Exported for the selftest (MOCK_DOMAIN binds mock devices with
// deviceBind / deviceAttach like the kernel's selftest.c) and the vIOMMU family (vDEVICE links).

import { IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IopfDevice, type IopfHandle, type PageRequest as FaultRequest } from '@viommu/fault';
import * as U from '@viommu/uapi';
import { SystemError, iommu_hw_info } from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import { NO_PASID, PAGE_RESP_INVALID, type PageRequest } from '../driver/driver.js';
import { HwptPaging, type AttachableHwpt } from '../hwpt/hwpt.js';
import { hwptPagingAlloc } from '../hwpt/paging.js';
import { vdeviceRemoveOnUnbind } from '../viommu/vdevice.js';
import type { Ioas } from '../iommufd/ioas.js';
import { registerIoctl } from '../ioctl/registry.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import { IommufdObject, OBJ, ref, unref } from '../object/object.js';
import type { SimDevice } from './sim-device.js';

export class IommufdDevice extends IommufdObject {
  readonly type = OBJ.DEVICE;
  /** The HWPT attached at each PASID (NO_PASID = the RID), holding a users reference on it. */
  readonly attached = new Map<number, AttachableHwpt>();
  /** The vDEVICE of this device, set and cleared by src/viommu/ (destroyed and tombstoned on unbind). */
  vdev: IommufdObject | undefined;
  /** Unbind has started: no new vDEVICE may link to it. */
  destroying = false;
  readonly enforceCacheCoherency: boolean;
  /** Page-request state (the kernel's iommu_fault_param) and the fault-capable attachments. */
  readonly iopf: IopfDevice<FaultRequest>;
  private readonly iopfHandles = new Map<number, IopfHandle>();
  private readonly waiting = new Map<FaultRequest, (code: number) => void>();

  constructor(
    readonly ctx: IommufdContext,
    readonly sim: SimDevice,
    /** The device holds the iommufd file (false for selftest mock devices, as in the kernel). */
    readonly holdsFile: boolean,
  ) {
    super();
    this.enforceCacheCoherency = sim.ddev.enforceCacheCoherency;
    this.iopf = new IopfDevice<FaultRequest>((request, code, group) => {
      const last = (request.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE) !== 0;
      // One page response per group reaches the driver (addressed by the group's last request)...
      this.sim.driver.pageResponse?.(this.sim.ddev, { pasid: request.pasid, addr: request.addr, perm: request.perm, grpid: request.grpid, last }, code);
      // ...and every request of the group settles with it: the device retries each access.
      if (group) for (const f of group.faults) this.settle(f, code);
      else this.settle(request, code);
    });
  }

  /** The driver-side device (what the vIOMMU family calls `dev`). */
  get ddev() {
    return this.sim.ddev;
  }

  get dev() {
    return this.sim.ddev;
  }

  /** The IOMMU instance the device sits behind. */
  get driver() {
    return this.sim.driver;
  }

  override preDestroy(): void {
    vdeviceRemoveOnUnbind({ ctx: this.ctx, memory: this.ctx.mm }, this);
  }

  destroy(): void {
    this.iopf.remove();
    // Requests still held back for a last page that will never come (their group is discarded):
    // the kernel sends no response, a real device would time out; here they fail at once.
    for (const done of this.waiting.values()) done(PAGE_RESP_INVALID);
    this.waiting.clear();
    this.sim.bound = undefined;
    this.sim.pageRequestRoute = undefined;
    if (this.holdsFile) this.ctx.putFile();
  }

  /**
   * A page request of this device (iommu_report_device_fault): goes to the FAULT queue of the
   * fault-capable HWPT attached at its PASID; settles with the response code of its group (a
   * request that is not the last of its group waits for the group's answer). Without such an
   * attachment it is answered INVALID at once.
   */
  routePageRequest(req: PageRequest): Promise<number> {
    const request: FaultRequest = {
      flags: (req.last ? IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE : 0) | (req.pasid !== NO_PASID ? IOMMU_FAULT_PAGE_REQUEST_PASID_VALID : 0),
      pasid: req.pasid,
      grpid: req.grpid,
      perm: req.perm,
      addr: req.addr,
    };
    const handle = this.faultHandle(req.pasid);
    return new Promise((resolve) => {
      this.waiting.set(request, resolve);
      this.iopf.report(request, handle);
    });
  }

  private settle(request: FaultRequest, code: number): void {
    const done = this.waiting.get(request);
    if (!done) return;
    this.waiting.delete(request);
    done(code);
  }

  /**
   * The attachment a page request goes to (iommu_report_device_fault): the one at its PASID; for a
   * PASID with nothing attached, the RID's nested HWPT when the guest owns the PASID table.
   */
  private faultHandle(pasid: number): IopfHandle | undefined {
    if (pasid === NO_PASID || this.attached.has(pasid)) return this.iopfHandles.get(pasid);
    if (!this.sim.driver.userPasidTable || this.attached.get(NO_PASID)?.type !== OBJ.HWPT_NESTED) return undefined;
    return this.iopfHandles.get(NO_PASID);
  }

  /** Attachment at `pasid` now goes to `hwpt`: fault-capable ones get an IOPF handle. */
  setIopfHandle(pasid: number, hwpt: AttachableHwpt | undefined): void {
    if (hwpt?.fault) this.iopfHandles.set(pasid, { devId: this.id, queue: hwpt.fault.queue });
    else this.iopfHandles.delete(pasid);
  }

  /** iommufd_auto_response_faults for the attachment at `pasid` that is going away. */
  autoRespond(pasid: number): void {
    const h = this.iopfHandles.get(pasid);
    if (h) h.queue.autoRespond(h);
    this.iopfHandles.delete(pasid);
  }
}

/**
 * iommufd_device_bind: creates the DEVICE object for `sim` in `ctx` (EBUSY if it is bound
 * elsewhere). The binder holds a users reference until deviceUnbind.
 */
export function deviceBind(ctx: IommufdContext, sim: SimDevice, opts: { holdsFile?: boolean } = {}): IommufdDevice {
  if (sim.ddev.cacheCoherent === false) throw new SystemError('EINVAL', 'ioctl', `${sim.name}: DMA is not cache coherent`);
  if (sim.bound) throw new SystemError('EBUSY', 'ioctl', `${sim.name} is already bound`);
  const idev = new IommufdDevice(ctx, sim, opts.holdsFile ?? true);
  ctx.objects.reserve(idev);
  if (idev.holdsFile) ctx.holdFile();
  ref(idev);
  sim.bound = idev;
  sim.pageRequestRoute = (req) => idev.routePageRequest(req);
  ctx.objects.finalize(idev);
  return idev;
}

/** iommufd_device_unbind (spec 4.7): PASIDs detached in ascending order, then the RID; vDEVICE tombstoned; DEVICE destroyed. */
export function deviceUnbind(idev: IommufdDevice): void {
  const pasids = [...idev.attached.keys()].filter((p) => p !== NO_PASID).sort((a, b) => a - b);
  for (const p of pasids) deviceDetach(idev, p);
  if (idev.attached.has(NO_PASID)) deviceDetach(idev, NO_PASID);
  unref(idev);
  idev.ctx.objects.remove(idev);
}

function pasidCompat(hwpt: AttachableHwpt, idev: IommufdDevice, pasid: number): void {
  if (pasid === NO_PASID) {
    if (!hwpt.pasidCompat && [...idev.attached.keys()].some((p) => p !== NO_PASID)) throw new SystemError('EINVAL', 'ioctl', 'PASIDs attached: the RID needs a PASID-compatible HWPT');
  } else {
    if (!hwpt.pasidCompat) throw new SystemError('EINVAL', 'ioctl', 'HWPT not allocated with IOMMU_HWPT_ALLOC_PASID');
    const rid = idev.attached.get(NO_PASID);
    if (rid && !rid.pasidCompat) throw new SystemError('EINVAL', 'ioctl', 'the RID is attached to a HWPT that is not PASID compatible');
  }
}

function reservedRegions(idev: IommufdDevice) {
  return idev.ddev
    .reservedRegions()
    .filter((r) => r.kind !== 'direct-relaxable')
    .map((r) => ({ start: r.start, last: r.last }));
}

/** iommufd_hw_pagetable_attach: attaches `hwpt` at `pasid` of a device not attached there. */
export function hwptAttach(hwpt: AttachableHwpt, idev: IommufdDevice, pasid: number): void {
  if (idev.attached.has(pasid)) throw new SystemError('EBUSY', 'ioctl', `PASID ${pasid} already attached`);
  const paging = hwpt instanceof HwptPaging ? hwpt : undefined;
  driverAttach(hwpt, idev, pasid, pasid === NO_PASID ? paging : undefined);
  idev.attached.set(pasid, ref(hwpt));
  idev.setIopfHandle(pasid, hwpt);
}

/**
 * What attach and replace share: reserve the device's regions in `reserveIn` (a paging HWPT's IOAS
 * the RID moves into), check the PASID, then the driver's attach; the reservation is taken back if
 * any of that fails. A HWPT without a domain is EINVAL before anything is reserved.
 */
function driverAttach(hwpt: AttachableHwpt, idev: IommufdDevice, pasid: number, reserveIn: HwptPaging | undefined): void {
  const domain = hwpt.domain;
  if (!domain) throw new SystemError('EINVAL', 'ioctl', 'HWPT has no domain');
  if (reserveIn) reserveIn.ioas.iopt.reserveAll(reservedRegions(idev), idev);
  try {
    pasidCompat(hwpt, idev, pasid);
    checkPasidRange(idev, pasid);
    idev.ctx.host.failNth.point('attach-handle');
    idev.ctx.host.failNth.point('driver:attach');
    idev.sim.driver.attach(idev.ddev, pasid, domain);
  } catch (e) {
    if (reserveIn) reserveIn.ioas.iopt.unreserve(idev);
    throw e;
  }
}

/** The IOMMU core refuses a PASID beyond what the device supports (when it supports any). */
function checkPasidRange(idev: IommufdDevice, pasid: number): void {
  const log2 = idev.ddev.maxPasidLog2;
  if (pasid !== NO_PASID && log2 > 0 && pasid >= 2 ** log2) throw new SystemError('EINVAL', 'ioctl', `PASID ${pasid} beyond the device's ${log2} bits`);
}

/** iommufd_hw_pagetable_detach: returns the HWPT that was attached (its reference not yet dropped), or undefined. */
function hwptDetach(idev: IommufdDevice, pasid: number): AttachableHwpt | undefined {
  const hwpt = idev.attached.get(pasid);
  if (!hwpt) return undefined;
  idev.attached.delete(pasid);
  idev.sim.driver.attach(idev.ddev, pasid, null);
  idev.autoRespond(pasid);
  if (hwpt instanceof HwptPaging && pasid === NO_PASID) hwpt.ioas.iopt.unreserve(idev);
  return hwpt;
}

/** Drops an attachment's reference; an automatic domain goes away with its last device. */
export function hwptPut(hwpt: AttachableHwpt): void {
  unref(hwpt);
  if (hwpt instanceof HwptPaging && hwpt.autoDomain && hwpt.users === 1) hwpt.ctx.objects.remove(hwpt);
}

/** iommufd_device_do_replace: returns the old HWPT (to put) or undefined when it was the same. */
function hwptReplace(hwpt: AttachableHwpt, idev: IommufdDevice, pasid: number): AttachableHwpt | undefined {
  const old = idev.attached.get(pasid);
  if (!old) throw new SystemError('EINVAL', 'ioctl', `PASID ${pasid} is not attached`);
  if (old === hwpt) return undefined;
  const paging = hwpt instanceof HwptPaging ? hwpt : undefined;
  const oldPaging = old instanceof HwptPaging ? old : undefined;
  const sameIoas = paging !== undefined && oldPaging !== undefined && paging.ioas === oldPaging.ioas;
  driverAttach(hwpt, idev, pasid, pasid === NO_PASID && !sameIoas ? paging : undefined);
  idev.autoRespond(pasid);
  if (oldPaging && pasid === NO_PASID && !sameIoas) oldPaging.ioas.iopt.unreserve(idev);
  idev.attached.set(pasid, ref(hwpt));
  idev.setIopfHandle(pasid, hwpt);
  return old;
}

type Mode = 'attach' | 'replace';

function doAttach(mode: Mode, idev: IommufdDevice, pasid: number, hwpt: AttachableHwpt): AttachableHwpt | undefined {
  if (mode === 'attach') {
    hwptAttach(hwpt, idev, pasid);
    return undefined;
  }
  return hwptReplace(hwpt, idev, pasid);
}

/** iommufd_device_auto_get_domain: reuse a compatible automatic HWPT of the IOAS, or make one. */
function autoGetDomain(mode: Mode, idev: IommufdDevice, pasid: number, ioas: Ioas): { id: number; old: AttachableHwpt | undefined } {
  for (const h of [...ioas.hwpts]) {
    if (!(h instanceof HwptPaging) || !h.autoDomain) continue;
    try {
      return { id: h.id, old: doAttach(mode, idev, pasid, h) };
    } catch (e) {
      if (e instanceof SystemError && e.code === 'EINVAL') continue; // incompatible: try the next
      throw e;
    }
  }
  const immediate = mode === 'attach';
  const hwpt = hwptPagingAlloc(idev.ctx, ioas, idev, pasid, 0, immediate, undefined);
  let old: AttachableHwpt | undefined;
  if (!immediate) {
    try {
      old = doAttach(mode, idev, pasid, hwpt);
    } catch (e) {
      idev.ctx.objects.abort(hwpt);
      throw e;
    }
  }
  hwpt.autoDomain = true;
  idev.ctx.objects.finalize(hwpt);
  return { id: hwpt.id, old };
}

/** iommufd_device_change_pt: returns the pt_id actually used (the automatic HWPT for an IOAS). */
function changePt(mode: Mode, idev: IommufdDevice, pasid: number, ptId: number): number {
  const pt = idev.ctx.objects.get(ptId, OBJ.ANY);
  let old: AttachableHwpt | undefined;
  let id = ptId;
  if (pt.type === OBJ.HWPT_PAGING || pt.type === OBJ.HWPT_NESTED) {
    old = doAttach(mode, idev, pasid, pt as AttachableHwpt);
  } else if (pt.type === OBJ.IOAS) {
    ({ id, old } = autoGetDomain(mode, idev, pasid, pt as Ioas));
  } else {
    throw new SystemError('EINVAL', 'ioctl', `object ${ptId} is neither an IOAS nor a HWPT`);
  }
  if (old) hwptPut(old);
  return id;
}

/** iommufd_device_attach: returns the pt_id used. The device gains a users reference per attachment. */
export function deviceAttach(idev: IommufdDevice, pasid: number, ptId: number): number {
  const id = changePt('attach', idev, pasid, ptId);
  ref(idev);
  return id;
}

/** iommufd_device_replace. */
export function deviceReplace(idev: IommufdDevice, pasid: number, ptId: number): number {
  return changePt('replace', idev, pasid, ptId);
}

/** iommufd_device_detach: a no-op when nothing is attached at `pasid`. */
export function deviceDetach(idev: IommufdDevice, pasid: number): void {
  const hwpt = hwptDetach(idev, pasid);
  if (!hwpt) return;
  hwptPut(hwpt);
  unref(idev);
}

export function getDevice(ctx: IommufdContext, id: number): IommufdDevice {
  return ctx.objects.get<IommufdDevice>(id, OBJ.DEVICE);
}

// --- IOMMU_GET_HW_INFO (spec 5.12) ------------------------------------------------------------

function getHwInfo(ucmd: Ucmd): void {
  const cmd = iommu_hw_info.decode(ucmd.cmd);
  if (cmd.flags & ~U.IOMMU_HW_INFO_FLAG_INPUT_TYPE) throw new SystemError('EOPNOTSUPP', 'ioctl', 'GET_HW_INFO flags');
  if (cmd.__reserved.some((b) => b !== 0)) throw new SystemError('EOPNOTSUPP', 'ioctl', 'GET_HW_INFO __reserved');
  const inType = cmd.flags & U.IOMMU_HW_INFO_FLAG_INPUT_TYPE ? cmd.in_data_type : U.IOMMU_HW_INFO_TYPE_DEFAULT;
  const idev = getDevice(ucmd.ctx, cmd.dev_id);
  const driver = idev.sim.driver;
  let type: number = U.IOMMU_HW_INFO_TYPE_NONE;
  let data: Uint8Array = new Uint8Array(0);
  if (driver.hwInfo) {
    ucmd.ctx.host.failNth.point('driver:hwInfo');
    const info = driver.hwInfo(idev.ddev, inType);
    if (info.type === U.IOMMU_HW_INFO_TYPE_NONE) throw new SystemError('EOPNOTSUPP', 'ioctl', 'driver answered type NONE');
    type = info.type;
    data = info.data;
  }
  const copyLen = Math.min(cmd.data_len, data.length);
  if (copyLen > 0) ucmd.memory.write(cmd.data_uptr, data.subarray(0, copyLen));
  if (copyLen < cmd.data_len) ucmd.memory.write(cmd.data_uptr + BigInt(copyLen), new Uint8Array(cmd.data_len - copyLen));
  let caps = 0n;
  const d = idev.ddev;
  if (d.dirtyTracking) caps |= BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING);
  if (!d.atsUsable) caps |= BigInt(U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
  // PASID_EXEC / PASID_PRIV mirror the PCI PASID control register of a PASID-capable PCI device.
  if (d.maxPasidLog2 > 0 && d.pci) {
    if (d.info.pasidExec) caps |= BigInt(U.IOMMU_HW_CAP_PCI_PASID_EXEC);
    if (d.info.pasidPriv) caps |= BigInt(U.IOMMU_HW_CAP_PCI_PASID_PRIV);
  }
  iommu_hw_info.set(ucmd.cmd, 'out_data_type', type);
  iommu_hw_info.set(ucmd.cmd, 'data_len', data.length);
  iommu_hw_info.set(ucmd.cmd, 'out_capabilities', caps);
  iommu_hw_info.set(ucmd.cmd, 'out_max_pasid_log2', d.maxPasidLog2);
  ucmd.respond();
}

registerIoctl({ name: 'IOMMU_GET_HW_INFO', request: U.IOMMU_GET_HW_INFO, struct: iommu_hw_info, handler: getHwInfo });
