// The vIOMMU of arm-smmu-v3-iommufd.c (type ARM_SMMUV3) and its Tegra241 CMDQV form (a VINTF
// with VCMDQs as HW queues, tegra241-cmdqv.c): nested domains from guest STEs, guest command
// invalidation through the host queue, vDEVICEs as vSID→pSID, and VCMDQ allocation.
import type {
  DriverDevice, DriverHwQueue, DriverVdevice, DriverViommu, HwQueueInitRequest, UserData, UserDataArray, ViommuCore,
} from '@viommu/core';
import { copyFullUserArray, copyUserData, copyUserDataOut } from '@viommu/core';
import {
  IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, SystemError, iommu_viommu_tegra241_cmdqv,
} from '@viommu/uapi';
import { CMDQV_PAGE_SIZE, VCMDQ_ADDR_MASK, type Vcmdq, type Vintf } from '../cmdqv/cmdqv.js';
import {
  CMDQ_OP_ATC_INV, CMDQ_OP_CFGI_CD, CMDQ_OP_CFGI_CD_ALL, CMDQ_OP_TLBI_NH_ALL, CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA,
  CMDQ_OP_TLBI_NH_VAA, CMDQ_OP_TLBI_NSNH_ALL,
} from '../formats/command.js';
import { NestedDomain, type NestParentDomain } from './domains.js';
import type { SmmuV3Driver } from './driver.js';
import type { SmmuMaster } from './master.js';

/** Guest STE bits the kernel lets through (STRTAB_STE_{0,1}_NESTING_ALLOWED), as 32-bit halves. */
// dword0: V [0], Config [3:1], S1Fmt [5:4], S1ContextPtr [51:6], S1CDMax [63:59]
const STE0_ALLOWED_LO = 0xffff_ffff;
const STE0_ALLOWED_HI = 0xf80f_ffff;
// dword1: S1DSS [1:0], S1CIR [3:2], S1COR [5:4], S1CSH [7:6], S1STALLD [27], EATS [29:28]
const STE1_ALLOWED_LO = 0x3800_00ff;
const STE1_ALLOWED_HI = 0;

/** Commands per host-queue batch: CMDQ_BATCH_ENTRIES - 1 on a 64-bit kernel (the SYNC makes 64). */
export const INVALIDATE_BATCH = 63;

export class Vsmmu implements DriverViommu {
  readonly vmid: number;
  /** The invalidation array, converted in place (grown on demand, never per call). */
  private cmds = new Uint8Array(16 * 64);
  private cmdWords = new Uint32Array(this.cmds.buffer);

  constructor(
    readonly driver: SmmuV3Driver,
    readonly core: ViommuCore,
    readonly parent: NestParentDomain,
  ) {
    this.vmid = parent.config.vmid;
  }

  destroy(): void {}

  allocNested(_dev: DriverDevice, flags: number, data: UserData): NestedDomain {
    if (flags) throw new SystemError('EOPNOTSUPP', 'ioctl', `nested domain flags 0x${flags.toString(16)}`);
    const bytes = copyUserData(data, IOMMU_HWPT_DATA_ARM_SMMUV3, 16, 16);
    const w = new Uint32Array(4);
    const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
    for (let i = 0; i < 4; i++) w[i] = view.getUint32(i * 4, true);
    let enableAts = false;
    if ((w[0]! & 1) === 0) {
      w.fill(0); // not valid: both words zeroed, installed as an abort STE
    } else {
      // EIO is the kernel's errno for STE data it will not take.
      if ((w[0]! & ~STE0_ALLOWED_LO) !== 0 || (w[1]! & ~STE0_ALLOWED_HI) !== 0 || (w[2]! & ~STE1_ALLOWED_LO) !== 0 || (w[3]! & ~STE1_ALLOWED_HI) !== 0) {
        throw new SystemError('EIO', 'ioctl', 'guest STE sets bits outside the nesting-allowed masks');
      }
      const cfg = (w[0]! >>> 1) & 7;
      if (cfg !== 0 && cfg !== 4 && cfg !== 5) throw new SystemError('EIO', 'ioctl', `guest STE Config ${cfg}`);
      const eats = (w[2]! >>> 28) & 3;
      w[2] = (w[2]! & ~(3 << 28)) >>> 0;
      if (eats !== 0 && eats !== 1) throw new SystemError('EIO', 'ioctl', `guest STE EATS ${eats}`);
      if (cfg === 5) enableAts = eats === 1;
    }
    return new NestedDomain(this, w, enableAts);
  }

  /** The physical SID for a guest SID, via the vDEVICE table (EIO when there is none). */
  private vsidToSid(vsid: number): number {
    const dev = this.core.findDevice(BigInt(vsid)) as SmmuMaster | undefined;
    if (!dev) throw new SystemError('EIO', 'ioctl', `no vDEVICE with vSID 0x${vsid.toString(16)}`);
    return dev.sid;
  }

  /**
   * HWPT_INVALIDATE on the vIOMMU: copy the whole array, then convert and issue in batches of 63
   * with a CMD_SYNC each; entryNum reports how far it got (arm_vsmmu_cache_invalidate).
   */
  cacheInvalidate(array: UserDataArray): void {
    const n = array.entryNum;
    if (this.cmds.length < n * 16 && n > 0) {
      this.cmds = new Uint8Array(n * 16);
      this.cmdWords = new Uint32Array(this.cmds.buffer);
    }
    try {
      // Converted in place below, so copied out of the (read-only) user view.
      this.cmds.set(copyFullUserArray(array, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, 16));
    } catch (e) {
      array.entryNum = 0;
      throw e;
    }
    const w = this.cmdWords;
    let last = 0;
    let cur = 0;
    try {
      while (cur !== n) {
        this.convert(w, cur);
        cur++;
        if (cur !== n && cur - last !== INVALIDATE_BATCH) continue;
        this.driver.issueBatch(w, last, cur - last);
        last = cur;
      }
    } finally {
      array.entryNum = cur;
    }
  }

  /** arm_vsmmu_convert_user_cmd, on entry `i` in place. */
  private convert(w: Uint32Array, i: number): void {
    const o = i * 4;
    const op = w[o]! & 0xff;
    switch (op) {
      case CMDQ_OP_TLBI_NSNH_ALL:
        w[o] = CMDQ_OP_TLBI_NH_ALL;
        w[o + 1] = this.vmid;
        w[o + 2] = 0;
        w[o + 3] = 0;
        return;
      case CMDQ_OP_TLBI_NH_VA:
      case CMDQ_OP_TLBI_NH_VAA:
      case CMDQ_OP_TLBI_NH_ALL:
      case CMDQ_OP_TLBI_NH_ASID:
        w[o + 1] = ((w[o + 1]! & 0xffff_0000) | this.vmid) >>> 0;
        return;
      case CMDQ_OP_ATC_INV:
      case CMDQ_OP_CFGI_CD:
      case CMDQ_OP_CFGI_CD_ALL:
        w[o + 1] = this.vsidToSid(w[o + 1]!) >>> 0;
        return;
      default:
        throw new SystemError('EIO', 'ioctl', `guest command opcode 0x${op.toString(16)} is not accepted`);
    }
  }
}

/** A vDEVICE's SID_MATCH/SID_REPLACE slot on a VINTF. */
class VintfSid implements DriverVdevice {
  constructor(
    private readonly vintf: Vintf,
    private readonly slot: number,
  ) {}

  destroy(): void {
    this.vintf.sidMatch[this.slot] = 0;
    this.vintf.sidReplace[this.slot] = 0;
  }
}

/** An LVCMDQ as an iommufd HW queue. */
class VcmdqQueue implements DriverHwQueue {
  constructor(
    private readonly owner: TegraVsmmu,
    readonly q: Vcmdq,
  ) {}

  destroy(): void {
    this.owner.destroyQueue(this);
  }
}

/** The TEGRA241_CMDQV vIOMMU: a Vsmmu that owns a VINTF. */
export class TegraVsmmu extends Vsmmu {
  readonly vintf: Vintf;
  private readonly mmapOffset: bigint;
  private readonly queues: (VcmdqQueue | undefined)[];

  constructor(driver: SmmuV3Driver, core: ViommuCore, parent: NestParentDomain, data: UserData) {
    super(driver, core, parent);
    const cmdqv = driver.cmdqv!;
    // tegra241_cmdqv_init_vintf_user: data is required and exactly the struct.
    if (data.len === 0) throw new SystemError('EINVAL', 'ioctl', 'TEGRA241_CMDQV vIOMMU needs iommu_viommu_tegra241_cmdqv');
    copyUserData(data, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, iommu_viommu_tegra241_cmdqv.size, iommu_viommu_tegra241_cmdqv.size);
    const vintf = cmdqv.vintfs.find((v, i) => i > 0 && !driver.vintfInUse.has(v));
    if (!vintf) throw new SystemError('ENOSPC', 'ioctl', 'no free VINTF');
    driver.vintfInUse.add(vintf);
    this.vintf = vintf;
    this.queues = new Array<VcmdqQueue | undefined>(cmdqv.perVintf).fill(undefined);
    cmdqv.enableVintf(vintf, this.vmid, false);
    let offset: bigint | undefined;
    try {
      offset = core.registerMmap(vintf.page0Pa, CMDQV_PAGE_SIZE);
      const out = iommu_viommu_tegra241_cmdqv.encode({ out_vintf_mmap_offset: offset, out_vintf_mmap_length: BigInt(CMDQV_PAGE_SIZE) });
      copyUserDataOut(data, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, out, iommu_viommu_tegra241_cmdqv.size);
    } catch (e) {
      if (offset !== undefined) core.unregisterMmap(offset);
      cmdqv.disableVintf(vintf);
      driver.vintfInUse.delete(vintf);
      throw e;
    }
    this.mmapOffset = offset;
  }

  override destroy(): void {
    const cmdqv = this.driver.cmdqv!;
    this.core.unregisterMmap(this.mmapOffset);
    for (let i = this.queues.length - 1; i >= 0; i--) {
      const q = this.queues[i];
      if (q) cmdqv.unmapQueue(q.q);
    }
    cmdqv.disableVintf(this.vintf);
    this.driver.vintfInUse.delete(this.vintf);
  }

  vdeviceInit(req: { readonly dev: DriverDevice; readonly virtId: bigint }): DriverVdevice {
    if (req.virtId > 0xfffffn) throw new SystemError('EINVAL', 'ioctl', 'vSID beyond the 20-bit SID_MATCH field');
    const v = this.vintf;
    const slot = v.sidMatch.findIndex((m) => (m & 1) === 0);
    if (slot < 0) throw new SystemError('ENOSPC', 'ioctl', 'no free SID_MATCH slot');
    v.sidReplace[slot] = (req.dev as SmmuMaster).sid;
    v.sidMatch[slot] = ((Number(req.virtId) << 1) | 1) >>> 0;
    return new VintfSid(v, slot);
  }

  hwQueueSupported(type: number): boolean {
    return type === IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV;
  }

  /** tegra241_vintf_alloc_lvcmdq_user, in the kernel's order of checks. */
  hwQueueInit(req: HwQueueInitRequest): DriverHwQueue {
    const cmdqv = this.driver.cmdqv!;
    if (req.type !== IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV) throw new SystemError('EOPNOTSUPP', 'ioctl', 'HW queue type');
    const lidx = req.index;
    if (lidx >= cmdqv.perVintf) throw new SystemError('EINVAL', 'ioctl', `LVCMDQ index ${lidx} >= ${cmdqv.perVintf}`);
    if (this.queues[lidx]) throw new SystemError('EEXIST', 'ioctl', `LVCMDQ ${lidx} exists`);
    const prev = lidx > 0 ? this.queues[lidx - 1] : undefined;
    if (lidx > 0 && !prev) throw new SystemError('EIO', 'ioctl', 'LVCMDQs must be allocated in ascending order');
    const maxShift = (this.driver.smmu.idr[1]! >>> 21) & 0x1f;
    const len = req.length;
    if ((len & (len - 1)) !== 0 || len < 32 || len > 2 ** (maxShift + 4)) {
      throw new SystemError('EINVAL', 'ioctl', `queue length ${len}`);
    }
    const base = req.basePa;
    if (base % 32 !== 0 || base > VCMDQ_ADDR_MASK || base % len !== 0) {
      throw new SystemError('EINVAL', 'ioctl', 'queue base not within ADDR [47:5] or not aligned to its length');
    }
    if (prev) req.dependOn(prev);
    const q = cmdqv.mapQueue(this.vintf, lidx, base, Math.log2(len) - 4);
    const hwq = new VcmdqQueue(this, q);
    this.queues[lidx] = hwq;
    return hwq;
  }

  destroyQueue(hwq: VcmdqQueue): void {
    const cmdqv = this.driver.cmdqv!;
    // The kernel issues a CMD_SYNC on the host queue to flush a pending ATC_INV before reset.
    this.driver.sync();
    cmdqv.unmapQueue(hwq.q);
    this.queues[hwq.q.lidx] = undefined;
  }

  /** The host's CMDQV interrupt for this VINTF: post the 128-bit LVCMDQ error map as a vEVENT. */
  reportError(): void {
    const payload = new Uint8Array(16);
    const view = new DataView(payload.buffer);
    for (let i = 0; i < 4; i++) view.setUint32(i * 4, this.vintf.errMap[i]!, true);
    this.core.reportEvent(IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV, payload);
  }
}
