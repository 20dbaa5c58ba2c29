// The AMD-Vi backend: a DriverV1 over the hardware model. It programs the model as Linux's amd
// driver programs the hardware — DTEs in the device table, invalidations through the command
// buffer ending in COMPLETION_WAIT, faults from the event log, page requests from the PPR log — and
// applies at the iommufd boundary what Linux 7.2.13 does (iommu.c, iommufd.c), with two options:
//   iommufd (default true): CONFIG_AMD_IOMMU_IOMMUFD. Off: GET_HW_INFO reports NONE, no vIOMMU.
//   nested (default false): install the dormant nested.c allocator on the vIOMMU (ADR 0100), so
//     IOMMU_HWPT_DATA_AMD_GUEST is accepted with exactly its checks. Upstream never installs it.
import {
  DMA_WRITE, NO_PASID, PAGE_RESP_INVALID, bytesToQwords, copyUserData, qwordsToBytes, TRANSLATE_FAULT, TRANSLATE_OK, TRANSLATE_PAGE_REQUEST,
  type DeviceInfo, type DriverDevice, type DriverDomain, type DriverHost, type DriverV1, type DriverViommu, type HwInfo, type PageRequest,
  type Translation, type UserData, type ViommuInitRequest,
} from '@viommu/core';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_AMD_GUEST, IOMMU_HW_INFO_TYPE_AMD,
  IOMMU_HW_INFO_TYPE_DEFAULT, SystemError, iommu_hw_info_amd,
} from '@viommu/uapi';
import {
  CMD_COMPL_WAIT, CMD_COMPLETE_PPR, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES, CMD_SIZE, type Command, INV_ALL_PAGES_ADDRESS,
  buildInvAddress, commandWords,
} from '../formats/commands.js';
import {
  DTE_FLAG_GIOV, DTE_FLAG_GV, DTE_FLAG_PPR, DTE_FLAG_V, DTE_GCR3_14_12, DTE_GCR3_30_15, DTE_GCR3_51_31, DTE_GLX, DTE_GPT_LEVEL_MASK,
  DTE_HOST_TRP, DTE_MODE_MASK, DTE_SIZE, encodeDteQwords,
} from '../formats/dte.js';
import { LOG_ENTRY_SIZE, decodeEvent, decodePpr } from '../formats/logs.js';
import {
  type AmdViFeatures, MMIO_CMD_BUF_OFFSET, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET, MMIO_DEV_TABLE_OFFSET, MMIO_EVT_BUF_OFFSET,
  MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET, MMIO_PPR_HEAD_OFFSET, MMIO_PPR_LOG_OFFSET, MMIO_PPR_TAIL_OFFSET,
} from '../hw/regs.js';
import { AmdViHardware, NO_PASID as HW_NO_PASID } from '../hw/amd-vi.js';
import { AmdViDevice } from './device.js';
import { AmdViommu } from './viommu.js';
import { EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD, HwViommu } from './hw-viommu.js';
import { type AmdViDomain, NestedDomain, type PagingDomainBase, V1Domain, V2Domain } from './domains.js';

export interface AmdViOptions {
  /** Instance name devices refer to ({ iommu: 'ivhd0' }). */
  name: string;
  features?: Partial<AmdViFeatures>;
  /** CONFIG_AMD_IOMMU_IOMMUFD (experimental in the kernel): hw_info and the vIOMMU. Default true. */
  iommufd?: boolean;
  /**
   * Not upstream behaviour: accept IOMMU_HWPT_DATA_AMD_GUEST on a vIOMMU with the checks and host
   * DTE composition of the kernel's dormant nested.c (ADR 0100). Default false (upstream).
   */
  nested?: boolean;
  /**
   * EXPERIMENTAL, NOT UPSTREAM (vendors.md section 6, ADR 0101): VIOMMU_ALLOC type 3 creates a
   * reduced model of AMD's out-of-tree hardware vIOMMU (guest command buffer and event log).
   * Needs `nested: true`. Default false.
   */
  experimentalHwViommu?: boolean;
}

/** MAX_DOMAIN_ID: domain IDs are 16 bits; 0 is reserved. */
const MAX_DOMAIN_ID = 1 << 16;
const CMD_ENTRIES = 512;
const LOG_ENTRIES = 512;
/** The kernel's PPR response codes (PPR_SUCCESS / PPR_INVALID / PPR_FAILURE). */
export const PPR_SUCCESS = 0;
export const PPR_INVALID = 1;
export const PPR_FAILURE = 2;

export class AmdViDriver implements DriverV1 {
  readonly apiVersion = 1 as const;
  readonly name: string;
  readonly userPasidTable = true;
  host!: DriverHost;
  hw!: AmdViHardware;
  /** What the kernel would only print (event log entries), bounded. */
  readonly hostLog: string[] = [];
  /** COMPLETE_PPR_REQUESTs the devices received: [devId, pasid or -1, tag, status]. */
  readonly pprResponses: [number, number, number, number][] = [];

  private readonly options: AmdViOptions;
  private devTable = 0;
  private cmdBase = 0;
  private cmdTail = 0;
  private semaphore = 0;
  private semSeq = 0;
  private readonly devices = new Map<number, AmdViDevice>();
  private readonly usedIds = new Set<number>();
  private readonly words = new Uint32Array(4);
  /** Experimental hardware vIOMMUs (their devices' events go to the guest's log). */
  readonly hwViommus = new Set<AmdViommu>();

  constructor(options: AmdViOptions) {
    this.options = options;
    this.name = options.name;
    if (options.iommufd ?? true) this.hwInfo = this.amdHwInfo;
  }

  get features(): AmdViFeatures {
    return this.hw.features;
  }

  private get iommufd(): boolean {
    return this.options.iommufd ?? true;
  }

  // ---------------------------------------------------------------------------------------------
  // Probe: device table (all 64 Ki DeviceIDs), command buffer, event and PPR logs (init.c).

  probe(host: DriverHost): void {
    this.host = host;
    this.hw = new AmdViHardware(host.physical, this.options.features, {
      event: () => this.drainEvents(),
      ppr: () => this.drainPpr(),
      pprComplete: (devId, pasid, gn, tag, status) => this.pprResponses.push([devId, gn ? pasid : -1, tag, status]),
    });
    this.devTable = this.allocFrames((MAX_DOMAIN_ID * DTE_SIZE) / 4096);
    this.hw.writeReg64(MMIO_DEV_TABLE_OFFSET, BigInt(this.devTable) | 0x1ffn);
    this.cmdBase = this.allocFrames((CMD_ENTRIES * CMD_SIZE) / 4096);
    this.hw.writeReg64(MMIO_CMD_BUF_OFFSET, BigInt(this.cmdBase) | (BigInt(Math.log2(CMD_ENTRIES)) << 56n));
    this.hw.writeReg64(MMIO_EVT_BUF_OFFSET, BigInt(this.allocFrames((LOG_ENTRIES * LOG_ENTRY_SIZE) / 4096)) | (BigInt(Math.log2(LOG_ENTRIES)) << 56n));
    this.hw.writeReg64(MMIO_PPR_LOG_OFFSET, BigInt(this.allocFrames((LOG_ENTRIES * LOG_ENTRY_SIZE) / 4096)) | (BigInt(Math.log2(LOG_ENTRIES)) << 56n));
    this.semaphore = this.allocFrames(1);
  }

  private allocFrames(n: number): number {
    return this.host.physical.allocRun(n).firstFrame * 4096;
  }

  // ---------------------------------------------------------------------------------------------
  // Devices: each gets a cleared DTE (amd_iommu_make_clear_dte: V only, so DMA is blocked) until
  // something is attached.

  probeDevice(info: DeviceInfo): AmdViDevice {
    const devId = info.rid;
    if (!Number.isInteger(devId) || devId < 0 || devId > 0xffff) throw new SystemError('ENODEV', 'probe', `device ID ${devId}`);
    if (this.devices.has(devId)) throw new SystemError('EBUSY', 'probe', `device ID 0x${devId.toString(16)} in use`);
    const f = this.features;
    const pasidLog2 = f.gt && info.pasidBits > 0 ? Math.min(info.pasidBits, f.pasMax + 1) : 0;
    const dev = new AmdViDevice(info, pasidLog2, info.ats, f.hd);
    this.devices.set(devId, dev);
    this.writeDte(dev, encodeDteQwords({ v: true }));
    return dev;
  }

  releaseDevice(d: DriverDevice): void {
    const dev = d as AmdViDevice;
    this.detach(dev);
    this.writeDte(dev, [0n, 0n, 0n, 0n]);
    this.devices.delete(dev.devId);
  }

  /** The device table entry of a device as it is in memory (tests). */
  readDte(devId: number): bigint[] {
    return bytesToQwords(this.host.physical.read(this.devTable + devId * DTE_SIZE, new Uint8Array(DTE_SIZE)));
  }

  /** amd_iommu_update_dte: write the entry, then INVALIDATE_DEVTAB_ENTRY and wait. */
  private writeDte(dev: AmdViDevice, q: readonly bigint[]): void {
    this.host.physical.write(this.devTable + dev.devId * DTE_SIZE, qwordsToBytes(q));
    this.submit([{ op: CMD_INV_DEV_ENTRY, devId: dev.devId }]);
  }

  // ---------------------------------------------------------------------------------------------
  // GET_HW_INFO (amd_iommufd_hw_info): raw EFR / EFR2.

  // Without CONFIG_AMD_IOMMU_IOMMUFD the driver has no hw_info op (the core then reports type NONE,
  // no data, whatever was asked): the constructor removes it.
  hwInfo?(dev: DriverDevice, requestedType: number): HwInfo;

  private amdHwInfo(_dev: DriverDevice, requestedType: number): HwInfo {
    if (requestedType !== IOMMU_HW_INFO_TYPE_DEFAULT && requestedType !== IOMMU_HW_INFO_TYPE_AMD) {
      throw new SystemError('EOPNOTSUPP', 'ioctl', `hw_info type ${requestedType}`);
    }
    this.host.failPoint('amd_iommufd_hw_info');
    return { type: IOMMU_HW_INFO_TYPE_AMD, data: iommu_hw_info_amd.encode({ efr: this.hw.efr, efr2: this.hw.efr2 }) };
  }

  // ---------------------------------------------------------------------------------------------
  // Domains (amd_iommu_domain_alloc_paging_flags)

  allocPagingDomain(_dev: DriverDevice, flags: number, data?: UserData): V1Domain | V2Domain {
    const supported = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_NEST_PARENT;
    if ((flags & ~supported) !== 0 || data) throw new SystemError('EOPNOTSUPP', 'ioctl', `paging flags 0x${flags.toString(16)} or vendor data`);
    const f = this.features;
    const dirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
    const parent = (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0;
    if ((flags & IOMMU_HWPT_ALLOC_PASID) !== 0) {
      // PASID alone selects v2 and needs PASID support; combined with anything else it is refused.
      if (flags !== IOMMU_HWPT_ALLOC_PASID || !this.pasidSupported) throw new SystemError('EOPNOTSUPP', 'ioctl', 'PASID paging domain');
      return new V2Domain(this.host.physical, this, this.allocDomainId());
    }
    if (dirty && !f.hd) throw new SystemError('EOPNOTSUPP', 'ioctl', 'no host dirty-bit support (EFR HDSup)');
    if (parent && !(f.gt && f.gio && f.gcr3trp)) throw new SystemError('EOPNOTSUPP', 'ioctl', 'nest parent needs GTSup, GIoSup and GCR3TRPMode');
    // flags 0: the kernel's configured default, v1 (amd_iommu_pgtable = PD_MODE_V1).
    return new V1Domain(this.host.physical, this, this.allocDomainId(), parent, dirty);
  }

  private get pasidSupported(): boolean {
    return this.features.gt && this.features.ppr;
  }

  /** amd_iommu_pdom_id_alloc: the lowest free ID in [1, MAX_DOMAIN_ID - 1]. */
  allocDomainId(): number {
    this.host.failPoint('amd_iommu_pdom_id_alloc');
    for (let id = 1; id < MAX_DOMAIN_ID; id++) {
      if (!this.usedIds.has(id)) {
        this.usedIds.add(id);
        return id;
      }
    }
    throw new SystemError('ENOSPC', 'ioctl', 'out of domain IDs');
  }

  releaseDomainId(id: number): void {
    // Nothing may stay cached under an ID that is handed out again.
    this.submit([this.invPagesCmd(id, 0n, INV_ALL_PAGES_ADDRESS + 0xfffn, false, 0)]);
    this.usedIds.delete(id);
  }

  // ---------------------------------------------------------------------------------------------
  // vIOMMU (amd_iommufd_viommu_init) and the dormant nested allocator (nested.c)

  /** amd_iommufd_get_viommu_size: every type (the type is not examined), when built with the option. */
  viommuSupported(_dev: DriverDevice, _type: number): boolean {
    return this.iommufd;
  }

  viommuInit(req: ViommuInitRequest): DriverViommu {
    if (!this.iommufd) throw new SystemError('EOPNOTSUPP', 'ioctl', 'kernel built without CONFIG_AMD_IOMMU_IOMMUFD');
    // The type is not examined and data is ignored (iommufd.c).
    const parent = req.parent;
    if (!(parent instanceof V1Domain) || !this.owns(parent)) throw new SystemError('EINVAL', 'ioctl', 'parent is not a v1 domain of this IOMMU');
    const v = this.options.experimentalHwViommu && this.options.nested && req.type === EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD
      ? new HwViommu(this, parent, req.core, req.data)
      : new AmdViommu(this, parent);
    if (v instanceof HwViommu) this.hwViommus.add(v);
    if (this.options.nested) v.allocNested = (dev, flags, data) => this.allocGuestDomain(v, dev, flags, data);
    return v;
  }

  /** amd_iommu_alloc_domain_nested + validate_gdte_nested, in the kernel's order. */
  private allocGuestDomain(v: AmdViommu, _dev: DriverDevice, _flags: number, data: UserData): NestedDomain {
    if (data.type !== IOMMU_HWPT_DATA_AMD_GUEST) throw new SystemError('EOPNOTSUPP', 'ioctl', `nested data type ${data.type}`);
    this.host.failPoint('amd_iommu_alloc_domain_nested');
    // iommu_copy_struct_from_user up to dte[3]: any other length is EINVAL.
    const g = bytesToQwords(copyUserData(data, IOMMU_HWPT_DATA_AMD_GUEST, DTE_SIZE, DTE_SIZE));
    validateGuestDte(g, this.features.guest5Level);
    const gDomId = Number(g[1]! & 0xffffn);
    let info = v.gdom.get(gDomId);
    if (info) {
      info.users++;
    } else {
      info = { hDomId: this.allocDomainId(), users: 1 };
      v.gdom.set(gDomId, info);
    }
    const held = info;
    return new NestedDomain(g, v.parent, gDomId, held.hDomId, () => {
      if (--held.users === 0) {
        v.gdom.delete(gDomId);
        this.releaseDomainId(held.hDomId);
      }
    });
  }

  private owns(d: AmdViDomain): boolean {
    return d instanceof NestedDomain ? d.parent.owner === this : d.owner === this;
  }

  // ---------------------------------------------------------------------------------------------
  // Attach: compose the DTE, write it, flush.

  attach(d: DriverDevice, pasid: number, domain: DriverDomain | null): void {
    const dev = d as AmdViDevice;
    if (pasid !== NO_PASID) {
      // TODO: PASID attach of v2 domains into the device's host GCR3 table is not modelled.
      if (domain === null) return;
      throw new SystemError('EOPNOTSUPP', 'ioctl', 'PASID attach is not modelled');
    }
    if (domain === null) {
      this.detach(dev);
      return;
    }
    const dom = domain as AmdViDomain;
    if (!this.owns(dom)) throw new SystemError('EINVAL', 'ioctl', 'domain of another IOMMU');
    const q = this.composeDte(dev, dom);
    this.host.failPoint('amd_iommu_attach_device');
    dev.domain?.attached.delete(dev);
    this.writeDte(dev, q);
    dev.domain = dom;
    dom.attached.add(dev);
    // nested_attach_device is amd_iommu_update_dte alone: the DTE is flushed, no IOTLB. What the
    // IOMMU cached under the hDomID (shared by every nested domain of the gDomID) stays.
    if (dom instanceof NestedDomain) return;
    // amd_iommu_attach_device: detach_device flushes dev_data->domain, which a nested attach never
    // changed. (Upstream also returns early, DTE untouched, when that is the domain being attached
    // again after a nested one; the model rewrites the DTE: README, not modelled.)
    const old = dev.pagingDomain;
    dev.pagingDomain = dom;
    this.flushDevice(dev, old);
  }

  private detach(dev: AmdViDevice): void {
    const old = dev.pagingDomain;
    if (!dev.domain) return;
    // blocked_domain_attach_device: detach_device on dev_data->domain, then the cleared DTE.
    this.writeDte(dev, encodeDteQwords({ v: true }));
    dev.domain.attached.delete(dev);
    dev.domain = undefined;
    dev.pagingDomain = undefined;
    this.flushDevice(dev, old);
  }

  /** After a DTE change: the old domain's IOTLB entries of this device and its device IOTLB. */
  private flushDevice(dev: AmdViDevice, old: AmdViDomain | undefined): void {
    const cmds: Command[] = [];
    if (old) cmds.push(this.invPagesCmd(old instanceof NestedDomain ? old.hDomId : old.domainId, 0n, INV_ALL_PAGES_ADDRESS + 0xfffn, false, 0));
    if (dev.atsUsable) cmds.push(this.invIotlbCmd(dev, 0n, INV_ALL_PAGES_ADDRESS + 0xfffn, HW_NO_PASID));
    if (cmds.length) this.submit(cmds);
  }

  /** The host DTE for `dom` on `dev` (amd_iommu_set_dte_v1 / set_dte_gcr3_table / set_dte_nested). */
  private composeDte(dev: AmdViDevice, dom: AmdViDomain): bigint[] {
    const ats = dev.atsUsable;
    if (dom instanceof V1Domain) {
      return encodeDteQwords({ v: true, tv: true, ir: true, iw: true, mode: dom.table.levels, hostRoot: dom.table.root, domainId: dom.domainId, i: ats, had: dom.dirtyTracking ? 3 : 0 });
    }
    if (dom instanceof V2Domain) {
      return encodeDteQwords({ v: true, tv: true, ir: true, iw: true, gv: true, giov: true, glx: 0, gcr3: dom.gcr3Table, domainId: dom.domainId, i: ats });
    }
    // nested_attach_device refuses a device with PASID enabled (EINVAL); the model never enables
    // PASID on a device (no PASID attach), so that check cannot fire here.
    const p = dom.parent;
    const g = dom.gdte;
    const q = encodeDteQwords({ v: true, tv: true, ir: true, iw: true, mode: p.table.levels, hostRoot: p.table.root, domainId: dom.hDomId, i: ats, had: p.dirtyTracking ? 3 : 0 });
    q[0] = q[0]! | DTE_FLAG_GV | (g[0]! & (DTE_FLAG_PPR | DTE_GLX | DTE_FLAG_GIOV | DTE_GCR3_14_12));
    q[1] = q[1]! | (g[1]! & (DTE_GCR3_30_15 | DTE_GCR3_51_31));
    q[2] = q[2]! | (g[2]! & DTE_GPT_LEVEL_MASK);
    return q;
  }

  // ---------------------------------------------------------------------------------------------
  // Cache maintenance (amd_iommu_domain_flush_pages and the vIOMMU hDomID fan-out)

  flushRange(d: PagingDomainBase, start: bigint, last: bigint): void {
    const cmds: Command[] = [];
    const v2 = d instanceof V2Domain;
    cmds.push(this.invPagesCmd(d.domainId, start, last, v2, 0));
    if (d instanceof V1Domain) for (const v of d.viommus) for (const h of v.hostDomainIds()) cmds.push(this.invPagesCmd(h, start, last, false, 0));
    for (const dev of d.attached) if (dev.atsUsable) cmds.push(this.invIotlbCmd(dev, start, last, v2 ? 0 : HW_NO_PASID));
    if (d instanceof V1Domain) {
      // Devices behind nested domains on this parent: their device IOTLBs cache guest addresses.
      for (const dev of this.devices.values()) {
        if (dev.atsUsable && dev.domain instanceof NestedDomain && dev.domain.parent === d) cmds.push(this.invIotlbCmd(dev, 0n, INV_ALL_PAGES_ADDRESS + 0xfffn, HW_NO_PASID));
      }
    }
    this.submit(cmds);
  }

  private invPagesCmd(domainId: number, start: bigint, last: bigint, gn: boolean, pasid: number): Command {
    const { address, s } = buildInvAddress(start, last);
    return { op: CMD_INV_IOMMU_PAGES, domainId, pasid, s, pde: true, gn, address };
  }

  private invIotlbCmd(dev: AmdViDevice, start: bigint, last: bigint, pasid: number): Command {
    const { address, s } = buildInvAddress(start, last);
    const gn = pasid !== HW_NO_PASID;
    return { op: CMD_INV_IOTLB_PAGES, devId: dev.devId, pasid: gn ? pasid : 0, maxPend: 0, queueId: dev.devId, s, gn, address };
  }

  // ---------------------------------------------------------------------------------------------
  // The command buffer: commands, then COMPLETION_WAIT storing a sequence number we check.

  submit(cmds: readonly Command[]): void {
    const seq = (this.semSeq = (this.semSeq + 1) >>> 0);
    for (const c of cmds) this.push(c);
    this.push({ op: CMD_COMPL_WAIT, s: true, i: false, f: false, storeAddr: BigInt(this.semaphore), storeData: BigInt(seq) });
    this.hw.writeReg64(MMIO_CMD_TAIL_OFFSET, BigInt(this.cmdTail));
    if (this.host.physical.readU32(this.semaphore) !== seq) {
      this.skipStuckCommand();
      throw new SystemError('EIO', 'ioctl', 'command buffer: completion wait did not complete');
    }
  }

  /** One raw 16-byte command (tests: what a buggy or hostile driver could issue). Throws EIO when the hardware refused it. */
  submitRaw(bytes: Uint8Array): void {
    this.host.physical.write(this.cmdBase + this.cmdTail, bytes.subarray(0, CMD_SIZE));
    this.cmdTail = (this.cmdTail + CMD_SIZE) % (CMD_ENTRIES * CMD_SIZE);
    this.hw.writeReg64(MMIO_CMD_TAIL_OFFSET, BigInt(this.cmdTail));
    if (Number(this.hw.readReg64(MMIO_CMD_HEAD_OFFSET)) !== this.cmdTail) {
      this.skipStuckCommand();
      throw new SystemError('EIO', 'ioctl', 'illegal command');
    }
  }

  private push(c: Command): void {
    const w = commandWords(c, this.words);
    const at = this.cmdBase + this.cmdTail;
    for (let i = 0; i < 4; i++) this.host.physical.writeU32(at + i * 4, w[i]!);
    this.cmdTail = (this.cmdTail + CMD_SIZE) % (CMD_ENTRIES * CMD_SIZE);
    if (this.cmdTail === Number(this.hw.readReg64(MMIO_CMD_HEAD_OFFSET))) throw new SystemError('EIO', 'ioctl', 'command buffer full');
  }

  /** The hardware stopped on an illegal command: step over it and run the rest. */
  private skipStuckCommand(): void {
    const size = CMD_ENTRIES * CMD_SIZE;
    let head = Number(this.hw.readReg64(MMIO_CMD_HEAD_OFFSET));
    while (head !== this.cmdTail) {
      head = (head + CMD_SIZE) % size;
      this.hw.writeReg64(MMIO_CMD_HEAD_OFFSET, BigInt(head));
      this.hw.writeReg64(MMIO_CMD_TAIL_OFFSET, BigInt(this.cmdTail));
      head = Number(this.hw.readReg64(MMIO_CMD_HEAD_OFFSET));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // DMA

  translate(d: DriverDevice, pasid: number, iova: number, access: number, out: Translation): number {
    const dev = d as AmdViDevice;
    const pa = this.hw.translate(dev.devId, pasid === NO_PASID ? HW_NO_PASID : pasid, iova, (access & DMA_WRITE) !== 0);
    if (pa >= 0) {
      out.pa = pa;
      out.length = 4096 - (iova % 4096);
      return TRANSLATE_OK;
    }
    out.reason = this.hw.lastFault;
    const dom = dev.domain;
    // Only PASID-tagged requests become page requests: the kernel refuses PPRs for PASID 0 or
    // beyond the device's PASID range (ppr.c), so they could never reach a fault queue.
    const pprPasid = pasid !== NO_PASID && pasid > 0 && pasid < 2 ** dev.maxPasidLog2;
    if (this.hw.lastFault === 'IO_PAGE_FAULT' && pprPasid && dev.info.pri && dom instanceof NestedDomain && dom.faultCapable && this.hw.pprEnabled(dev.devId)) {
      return TRANSLATE_PAGE_REQUEST;
    }
    return TRANSLATE_FAULT;
  }

  // ---------------------------------------------------------------------------------------------
  // Event log: amd_iommu_int_thread → iommu_poll_events; printed, zeroed, never sent to iommufd.

  private drainEvents(): void {
    const { base, size } = this.hw.eventLog;
    let head = Number(this.hw.readReg64(MMIO_EVT_HEAD_OFFSET));
    const tail = Number(this.hw.readReg64(MMIO_EVT_TAIL_OFFSET));
    const buf = new Uint8Array(LOG_ENTRY_SIZE);
    while (head !== tail) {
      const e = decodeEvent(this.host.physical.read(base + head, buf));
      let forwarded = false;
      for (const v of this.hwViommus) if (!forwarded && v instanceof HwViommu) forwarded = v.forwardEvent(e);
      if (!forwarded && this.hostLog.length < 1000) {
        this.hostLog.push(`AMD-Vi: Event logged [code 0x${e.code.toString(16)} device 0x${e.devId.toString(16)} domain 0x${e.domainId.toString(16)} pasid 0x${e.pasid.toString(16)} address 0x${e.address.toString(16)} flags 0x${e.flags.toString(16).padStart(3, '0')}]`);
      }
      this.host.physical.write(base + head, new Uint8Array(LOG_ENTRY_SIZE)); // erratum 732: clear what was read
      head = (head + LOG_ENTRY_SIZE) % size;
    }
    this.hw.writeReg64(MMIO_EVT_HEAD_OFFSET, BigInt(head));
  }

  // ---------------------------------------------------------------------------------------------
  // Page requests (ppr.c): the PPR log, and COMPLETE_PPR_REQUEST with the kernel's own codes.

  /** A device sends a PCIe page request: the hardware logs it, the driver reports it. */
  raisePageRequest(d: DriverDevice, r: { pasid: number; address: bigint; read?: boolean; write?: boolean; tag?: number }): boolean {
    const dev = d as AmdViDevice;
    return this.hw.pageRequest({ devId: dev.devId, pasid: r.pasid, address: r.address & ~0xfffn, read: r.read ?? true, write: r.write ?? false, tag: r.tag ?? 0x200 });
  }

  private drainPpr(): void {
    const { base, size } = this.hw.pprLog;
    let head = Number(this.hw.readReg64(MMIO_PPR_HEAD_OFFSET));
    const tail = Number(this.hw.readReg64(MMIO_PPR_TAIL_OFFSET));
    const buf = new Uint8Array(LOG_ENTRY_SIZE);
    while (head !== tail) {
      const p = decodePpr(this.host.physical.read(base + head, buf));
      this.host.physical.write(base + head, new Uint8Array(LOG_ENTRY_SIZE));
      head = (head + LOG_ENTRY_SIZE) % size;
      const dev = this.devices.get(p.devId);
      const grpid = p.tag & 0x1ff;
      const last = (p.tag & 0x200) !== 0;
      // The kernel refuses requests without a usable PASID (0 or beyond the device's range).
      if (!dev || !p.gn || p.pasid === 0 || p.pasid >= 2 ** dev.maxPasidLog2) {
        this.completePpr(p.devId, p.gn ? p.pasid : 0, p.gn, grpid, PPR_FAILURE);
        continue;
      }
      const perm = (p.read ? 1 : 0) | (p.write ? DMA_WRITE : 0);
      const req: PageRequest = { pasid: p.pasid, addr: p.address, perm, grpid, last };
      void this.host.reportPageRequest(dev, req).then((code) => {
        if (last && !this.answered.delete(p.devId * 512 + grpid)) this.completePpr(p.devId, p.pasid, true, grpid, code === PAGE_RESP_INVALID ? PPR_INVALID : code);
      });
    }
    this.hw.writeReg64(MMIO_PPR_HEAD_OFFSET, BigInt(head));
  }

  private readonly answered = new Set<number>();

  /** amd_iommu_page_response: the user's code goes unchanged into the Status field. */
  pageResponse(d: DriverDevice, req: PageRequest, code: number): void {
    const dev = d as AmdViDevice;
    this.answered.add(dev.devId * 512 + req.grpid);
    this.completePpr(dev.devId, req.pasid, req.pasid !== NO_PASID, req.grpid, code);
  }

  private completePpr(devId: number, pasid: number, gn: boolean, tag: number, status: number): void {
    this.submit([{ op: CMD_COMPLETE_PPR, devId, pasid, gn, tag, status }]);
  }

  /** Devices behind this unit (tests). */
  device(devId: number): AmdViDevice | undefined {
    return this.devices.get(devId);
  }
}

/** validate_gdte_nested: the guest DTE checks, in the kernel's order. */
export function validateGuestDte(g: readonly bigint[], guest5Level: boolean): void {
  const [q0 = 0n, q1 = 0n, q2 = 0n] = g;
  if ((q0 & DTE_MODE_MASK) !== 0n || (q0 & DTE_HOST_TRP) !== 0n) throw new SystemError('EINVAL', 'ioctl', 'guest DTE sets Mode or the host table root');
  if ((q0 & DTE_FLAG_V) !== 0n && (q0 & DTE_FLAG_GV) !== 0n && (q0 & DTE_GCR3_14_12) === 0n && (q1 & (DTE_GCR3_30_15 | DTE_GCR3_51_31)) === 0n) {
    throw new SystemError('EINVAL', 'ioctl', 'guest DTE with V and GV but no GCR3 table root');
  }
  const gpm = Number((q2 & DTE_GPT_LEVEL_MASK) >> 54n);
  if (gpm > 1) throw new SystemError('EINVAL', 'ioctl', `guest paging mode ${gpm}`);
  if ((q0 & DTE_GLX) >> 56n === 3n) throw new SystemError('EINVAL', 'ioctl', 'GLX 3 is reserved');
  if (gpm === 1 && !guest5Level) throw new SystemError('EOPNOTSUPP', 'ioctl', '5-level guest tables not supported');
}

/** The backend factory: `amdVi({ name: 'ivhd0' })`. */
export function amdVi(options: AmdViOptions): AmdViDriver {
  return new AmdViDriver(options);
}
