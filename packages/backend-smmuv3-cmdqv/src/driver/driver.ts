// The SMMUv3 (+ Tegra241 CMDQV) backend: a DriverV1 over the hardware model. It programs the model
// as the Linux driver programs the hardware — STEs and CDs in the stream table and CD tables in
// physical memory, invalidation commands through the command queue — and applies, at the iommufd
// boundary, the checks and errnos of Linux 7.2.13's arm-smmu-v3(-iommufd).c and tegra241-cmdqv.c.
import {
  DMA_WRITE, DOMAIN_NEST_PARENT, NO_PASID, TRANSLATE_FAULT, TRANSLATE_OK,
  type DeviceInfo, type DriverDevice, type DriverDomain, type DriverHost, type DriverPagingDomain, type DriverV1,
  type DriverViommu, type HwInfo, type Translation, type UserData, type ViommuInitRequest,
} from '@viommu/core';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID, IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_DEFAULT, IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV, SystemError, iommu_hw_info_arm_smmuv3,
  iommu_hw_info_tegra241_cmdqv,
} from '@viommu/uapi';
import { Cmdqv, type CmdqvParams, type Vintf } from '../cmdqv/cmdqv.js';
import { encodeCd } from '../formats/cd.js';
import {
  CMDQ_OP_CFGI_CD, CMDQ_OP_CFGI_STE, CMDQ_OP_CMD_SYNC, CMDQ_OP_TLBI_NH_ALL, CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA,
  CMDQ_OP_TLBI_S12_VMALL, CMDQ_OP_TLBI_S2_IPA, CMD_SIZE, encodeCommandWords, type Command,
} from '../formats/command.js';
import {
  EVT_ID_ACCESS_FAULT, EVT_ID_ADDR_SIZE_FAULT, EVT_ID_BAD_CD_CONFIG, EVT_ID_BAD_STE_CONFIG, EVT_ID_BAD_STREAMID_CONFIG,
  EVT_ID_BAD_SUBSTREAMID_CONFIG, EVT_ID_CD_FETCH_FAULT, EVT_ID_PERMISSION_FAULT, EVT_ID_STE_FETCH_FAULT,
  EVT_ID_STREAM_DISABLED_FAULT, EVT_ID_TRANSLATION_FAULT, EVT_ID_VMS_FETCH_FAULT, EVT_SIZE,
} from '../formats/event.js';
import { STE_CFG_ABORT, STE_CFG_S1_TRANS, STE_CFG_S2_TRANS, STE_SIZE, encodeSteWords } from '../formats/ste.js';
import { addressBitsFromPs } from '../pgtable/granule.js';
import {
  CR0_CMDQEN, CR0_EVTQEN, CR0_SMMUEN, SMMU_CMDQ_BASE, SMMU_CMDQ_CONS, SMMU_CMDQ_PROD, SMMU_CR0, SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS, SMMU_EVTQ_PROD, SMMU_GERROR, SMMU_GERRORN, SMMU_STRTAB_BASE, SMMU_STRTAB_BASE_CFG, type SmmuFeatures,
} from '../smmu/regs.js';
import { ACCESS_WRITE, FAULT_ABORT, NO_SSID, Smmu } from '../smmu/smmu.js';
import { NestParentDomain, NestedDomain, Stage1PagingDomain, type DomainOwner } from './domains.js';
import { SmmuMaster } from './master.js';
import { TegraVsmmu, Vsmmu } from './vsmmu.js';

export interface Smmuv3CmdqvOptions {
  /** Instance name devices refer to ({ iommu: 'smmu0' }). */
  name: string;
  features?: Partial<SmmuFeatures>;
  /** The Tegra241 CMDQV extension (default present); false for a plain SMMUv3. */
  cmdqv?: boolean | Partial<CmdqvParams>;
  /** ARM_SMMU_FEAT_NESTING (default true; the kernel clears it on errata parts). */
  nesting?: boolean;
  /** log2 of host command-queue and event-queue entries. */
  cmdqLog2?: number;
  evtqLog2?: number;
}

/** Event IDs whose record the kernel decodes (arm_smmu_handle_event); the rest are only logged. */
const FORWARDED_EVENTS = new Set([
  EVT_ID_BAD_STE_CONFIG, EVT_ID_STREAM_DISABLED_FAULT, EVT_ID_BAD_SUBSTREAMID_CONFIG, EVT_ID_BAD_CD_CONFIG,
  EVT_ID_TRANSLATION_FAULT, EVT_ID_ADDR_SIZE_FAULT, EVT_ID_ACCESS_FAULT, EVT_ID_PERMISSION_FAULT,
]);

const EVENT_NAMES: Record<number, string> = {
  [EVT_ID_BAD_STREAMID_CONFIG]: 'C_BAD_STREAMID',
  [EVT_ID_STE_FETCH_FAULT]: 'F_STE_FETCH',
  [EVT_ID_BAD_STE_CONFIG]: 'C_BAD_STE',
  [EVT_ID_STREAM_DISABLED_FAULT]: 'F_STREAM_DISABLED',
  [EVT_ID_BAD_SUBSTREAMID_CONFIG]: 'C_BAD_SUBSTREAMID',
  [EVT_ID_CD_FETCH_FAULT]: 'F_CD_FETCH',
  [EVT_ID_BAD_CD_CONFIG]: 'C_BAD_CD',
  [EVT_ID_TRANSLATION_FAULT]: 'F_TRANSLATION',
  [EVT_ID_ADDR_SIZE_FAULT]: 'F_ADDR_SIZE',
  [EVT_ID_ACCESS_FAULT]: 'F_ACCESS',
  [EVT_ID_PERMISSION_FAULT]: 'F_PERMISSION',
  [EVT_ID_VMS_FETCH_FAULT]: 'F_VMS_FETCH',
};

export function faultName(eventId: number): string {
  if (eventId === FAULT_ABORT) return 'ABORT';
  return EVENT_NAMES[eventId] ?? `EVENT_0x${eventId.toString(16)}`;
}

export class SmmuV3Driver implements DriverV1, DomainOwner {
  readonly apiVersion = 1 as const;
  readonly name: string;
  host!: DriverHost;
  smmu!: Smmu;
  cmdqv: Cmdqv | undefined;
  readonly vintfInUse = new Set<Vintf>();
  /** Host-side log of events the kernel would only print (bounded). */
  readonly hostLog: string[] = [];

  private readonly options: Smmuv3CmdqvOptions;
  private strtab = 0;
  private cmdqBase = 0;
  private cmdqLog2 = 0;
  private evtqBase = 0;
  private evtqLog2 = 0;
  private readonly masters = new Map<number, SmmuMaster>();
  private readonly tegraBySid = new Map<Vintf, TegraVsmmu>();
  private nextVmid = 1;
  private nextAsid = 1;
  private readonly freeVmids: number[] = [];
  private readonly freeAsids: number[] = [];
  private readonly evtWords = new Uint32Array(8);
  private readonly syncWords = encodeCommandWords({ opcode: CMDQ_OP_CMD_SYNC });

  constructor(options: Smmuv3CmdqvOptions) {
    this.options = options;
    this.name = options.name;
  }

  get nesting(): boolean {
    return this.options.nesting ?? true;
  }

  // ---------------------------------------------------------------------------------------------
  // Probe: the hardware's tables and queues, as arm_smmu_device_reset sets them up.

  probe(host: DriverHost): void {
    this.host = host;
    const mem = host.physical;
    this.smmu = new Smmu(mem, this.options.features, {
      eventIrq: () => this.drainEvents(),
      gerrorIrq: () => this.handleGerror(),
    });
    const f = this.smmu.features;
    this.cmdqLog2 = Math.min(this.options.cmdqLog2 ?? 10, f.cmdqs);
    this.evtqLog2 = Math.min(this.options.evtqLog2 ?? 10, f.evtqs);
    this.strtab = this.alloc(2 ** f.sidBits * STE_SIZE);
    this.cmdqBase = this.alloc(2 ** this.cmdqLog2 * CMD_SIZE);
    this.evtqBase = this.alloc(2 ** this.evtqLog2 * EVT_SIZE);
    const s = this.smmu;
    s.writeReg64(SMMU_STRTAB_BASE, this.strtab);
    s.writeReg(SMMU_STRTAB_BASE_CFG, f.sidBits);
    s.writeReg64(SMMU_CMDQ_BASE, this.cmdqBase + this.cmdqLog2);
    s.writeReg64(SMMU_EVTQ_BASE, this.evtqBase + this.evtqLog2);
    s.writeReg(SMMU_CR0, CR0_SMMUEN | CR0_CMDQEN | CR0_EVTQEN);
    const cq = this.options.cmdqv ?? true;
    if (cq !== false) {
      this.cmdqv = new Cmdqv(mem, s, cq === true ? {} : cq);
      this.cmdqv.hooks.vintfError = (v) => this.tegraBySid.get(v)?.reportError();
      // VINTF0 belongs to the host kernel (HYP_OWN = 1).
      this.cmdqv.enableVintf(this.cmdqv.vintfs[0]!, 0, true);
    }
  }

  private alloc(bytes: number): number {
    return this.host.physical.allocRun(Math.ceil(bytes / 4096)).firstFrame * 4096;
  }

  probeDevice(info: DeviceInfo): SmmuMaster {
    const f = this.smmu.features;
    if (info.rid >= 2 ** f.sidBits) throw new SystemError('ENODEV', 'probe', `StreamID 0x${info.rid.toString(16)} beyond SIDSIZE`);
    if (this.masters.has(info.rid)) throw new SystemError('EBUSY', 'probe', `StreamID 0x${info.rid.toString(16)} in use`);
    const m = new SmmuMaster(info, f.ssidBits, f.ats);
    this.masters.set(m.sid, m);
    this.installSte(m, this.abortSte());
    return m;
  }

  releaseDevice(dev: DriverDevice): void {
    const m = dev as SmmuMaster;
    this.installSte(m, new Uint32Array(16));
    this.freeCdTable(m);
    this.masters.delete(m.sid);
  }

  /** arm_smmu_free_cd_tables: the master's host CD table goes with the device (or a resize). */
  private freeCdTable(m: SmmuMaster): void {
    if (!m.cdTable) return;
    this.host.physical.freeRun(m.cdTable / 4096);
    m.cdTable = 0;
  }

  // ---------------------------------------------------------------------------------------------
  // GET_HW_INFO

  hwInfo(_dev: DriverDevice, requestedType: number): HwInfo {
    if (requestedType === IOMMU_HW_INFO_TYPE_DEFAULT || requestedType === IOMMU_HW_INFO_TYPE_ARM_SMMUV3) {
      const s = this.smmu;
      return {
        type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
        data: iommu_hw_info_arm_smmuv3.encode({ flags: 0, idr: [...s.idr], iidr: s.features.iidr, aidr: s.features.aidr }),
      };
    }
    if (requestedType === IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV && this.cmdqv) {
      const p = this.cmdqv.params;
      return {
        type: IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
        data: iommu_hw_info_tegra241_cmdqv.encode({ flags: 0, version: p.version, log2vcmdqs: p.vcmdqLog2 - p.vintfLog2, log2vsids: p.sidPerVmLog2 }),
      };
    }
    throw new SystemError('EOPNOTSUPP', 'ioctl', `hw_info type ${requestedType}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Domains (arm_smmu_domain_alloc_paging_flags)

  allocPagingDomain(_dev: DriverDevice, flags: number, data?: UserData): DriverPagingDomain {
    const allowed = IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_NEST_PARENT;
    if (flags & ~allowed) throw new SystemError('EOPNOTSUPP', 'ioctl', `paging flags 0x${flags.toString(16)}`);
    if (data) throw new SystemError('EOPNOTSUPP', 'ioctl', 'paging domains take no vendor data');
    const f = this.smmu.features;
    if (flags === 0 || flags === IOMMU_HWPT_ALLOC_PASID) {
      this.host.failPoint('arm_smmu_domain_alloc');
      return new Stage1PagingDomain(this.host.physical, this, this.allocAsid(), 48);
    }
    if (flags === DOMAIN_NEST_PARENT) {
      if (!this.nesting) throw new SystemError('EOPNOTSUPP', 'ioctl', 'SMMU has no nesting');
      this.host.failPoint('arm_smmu_domain_alloc');
      return new NestParentDomain(this.host.physical, this, this.allocVmid(), Math.min(48, f.oasBits), f.oasBits, f.fwb);
    }
    // DIRTY_TRACKING needs HTTU (hardware dirty bits), which this SMMU does not report.
    throw new SystemError('EOPNOTSUPP', 'ioctl', `paging flags 0x${flags.toString(16)}`);
  }

  private allocVmid(): number {
    return this.freeVmids.pop() ?? this.nextVmid++;
  }

  private allocAsid(): number {
    return this.freeAsids.pop() ?? this.nextAsid++;
  }

  releaseVmid(vmid: number): void {
    this.issue({ opcode: CMDQ_OP_TLBI_S12_VMALL, vmid });
    this.freeVmids.push(vmid);
  }

  releaseAsid(asid: number): void {
    this.issue({ opcode: CMDQ_OP_TLBI_NH_ASID, vmid: 0, asid });
    this.freeAsids.push(asid);
  }

  invalidateAsidRange(asid: number, iova: number, length: number): void {
    // Per-page TLBIs for small ranges, the whole ASID for large ones (as the kernel's size cut-off does).
    if (length > 64 * 4096) return this.issue({ opcode: CMDQ_OP_TLBI_NH_ASID, vmid: 0, asid });
    const cmds: Partial<Command>[] = [];
    for (let a = iova; a < iova + length; a += 4096) cmds.push({ opcode: CMDQ_OP_TLBI_NH_VA, vmid: 0, asid, addr: a, leaf: true });
    this.issue(...(cmds as (Partial<Command> & { opcode: number })[]));
  }

  invalidateS2Range(vmid: number, ipa: number, length: number, nestParent: boolean): void {
    const cmds: (Partial<Command> & { opcode: number })[] = [];
    if (length > 64 * 4096) cmds.push({ opcode: CMDQ_OP_TLBI_S12_VMALL, vmid });
    else for (let a = ipa; a < ipa + length; a += 4096) cmds.push({ opcode: CMDQ_OP_TLBI_S2_IPA, vmid, addr: a, leaf: true });
    // All the nested stage-1 entries hold stage-2 results too (INV_TYPE_S2_VMID_S1_CLEAR).
    if (nestParent) cmds.push({ opcode: CMDQ_OP_TLBI_NH_ALL, vmid });
    this.issue(...cmds);
  }

  // ---------------------------------------------------------------------------------------------
  // vIOMMU

  /**
   * arm_smmu_get_viommu_size: whether `type` can be created at all, asked by the core before it
   * looks up the parent HWPT (so a wrong type is EOPNOTSUPP even with a wrong hwpt_id).
   */
  viommuSupported(_dev: DriverDevice, type: number): boolean {
    if (!this.nesting) return false;
    return type === IOMMU_VIOMMU_TYPE_ARM_SMMUV3 || (type === IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV && this.cmdqv !== undefined);
  }

  viommuInit(req: ViommuInitRequest): DriverViommu {
    // arm_smmu_get_viommu_size: no nesting → EOPNOTSUPP; coherent devices or S2FWB assumed.
    if (!this.nesting) throw new SystemError('EOPNOTSUPP', 'ioctl', 'SMMU has no nesting');
    if (req.type === IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV) {
      if (!this.cmdqv) throw new SystemError('EOPNOTSUPP', 'ioctl', 'no CMDQV extension');
    } else if (req.type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) {
      throw new SystemError('EOPNOTSUPP', 'ioctl', `vIOMMU type ${req.type}`);
    }
    // arm_vsmmu_init: the parent must be this SMMU's stage-2.
    if (!(req.parent instanceof NestParentDomain) || req.parent.owner !== this) {
      throw new SystemError('EINVAL', 'ioctl', 'parent stage-2 belongs to another SMMU');
    }
    if (req.type === IOMMU_VIOMMU_TYPE_ARM_SMMUV3) return new Vsmmu(this, req.core, req.parent);
    const v = new TegraVsmmu(this, req.core, req.parent, req.data);
    this.tegraBySid.set(v.vintf, v);
    const destroy = v.destroy.bind(v);
    v.destroy = () => {
      destroy();
      this.tegraBySid.delete(v.vintf);
    };
    return v;
  }

  // ---------------------------------------------------------------------------------------------
  // Attach: build the STE (and CDs) and install them with CFGI + SYNC.

  attach(dev: DriverDevice, pasid: number, domain: DriverDomain | null): void {
    const m = dev as SmmuMaster;
    if (pasid !== NO_PASID) return this.attachPasid(m, pasid, domain);
    if (domain instanceof NestedDomain) return this.attachNested(m, domain);
    if (domain && m.pasids.size > 0 && !(domain instanceof Stage1PagingDomain)) {
      throw new SystemError('EBUSY', 'ioctl', 'PASIDs in use need a stage-1 RID domain');
    }
    if (domain && !this.owns(domain)) throw new SystemError('EINVAL', 'ioctl', 'domain of another SMMU');
    m.rid = domain ?? undefined;
    m.vmaster = undefined;
    this.rebuild(m);
  }

  private owns(domain: DriverDomain): boolean {
    return (domain instanceof Stage1PagingDomain || domain instanceof NestParentDomain) && domain.owner === this;
  }

  private attachNested(m: SmmuMaster, nested: NestedDomain): void {
    if (nested.vsmmu.driver !== this) throw new SystemError('EINVAL', 'ioctl', 'nested domain of another SMMU');
    if (m.pasids.size > 0) throw new SystemError('EBUSY', 'ioctl', 'SSIDs in use');
    const cfg = nested.config;
    const vsid = nested.vsmmu.core.virtIdOf(m);
    if (vsid === undefined && cfg === STE_CFG_S1_TRANS) throw new SystemError('ENOENT', 'ioctl', 'translating nested domain needs a vDEVICE');
    m.rid = nested;
    m.vmaster = vsid === undefined ? undefined : { vsmmu: nested.vsmmu, vsid: Number(vsid) };
    this.rebuild(m);
  }

  private attachPasid(m: SmmuMaster, pasid: number, domain: DriverDomain | null): void {
    if (domain === null) {
      m.pasids.delete(pasid);
      this.rebuild(m);
      return;
    }
    if (!(domain instanceof Stage1PagingDomain) || domain.owner !== this) throw new SystemError('EINVAL', 'ioctl', 'PASID needs a stage-1 domain');
    if (pasid >= 2 ** m.maxPasidLog2) throw new SystemError('EINVAL', 'ioctl', `PASID ${pasid} beyond the device`);
    // TODO: a two-level host CD table, as the kernel uses; this linear one holds 1024 CDs.
    if (pasid >= 1024) throw new SystemError('EINVAL', 'ioctl', `PASID ${pasid}: the model's host CD table holds 1024`);
    if (m.rid && !(m.rid instanceof Stage1PagingDomain)) throw new SystemError('EINVAL', 'ioctl', 'RID domain is not stage 1');
    m.pasids.set(pasid, domain);
    this.rebuild(m);
  }

  /** The STE (and CD table) for the master's current attachments, installed. */
  private rebuild(m: SmmuMaster): void {
    const d = m.rid;
    let ste: Uint32Array;
    if (d instanceof NestedDomain) ste = this.nestedSte(m, d);
    else if (d instanceof NestParentDomain) ste = this.s2Ste(m, d, false);
    else if (d instanceof Stage1PagingDomain || m.pasids.size > 0) ste = this.cdTableSte(m);
    else ste = this.abortSte();
    this.installSte(m, ste);
  }

  private abortSte(): Uint32Array {
    return encodeSteWords({ v: true, config: STE_CFG_ABORT });
  }

  private s2Ste(m: SmmuMaster, d: NestParentDomain, ats: boolean): Uint32Array {
    const c = d.config;
    const f = this.smmu.features;
    return encodeSteWords({
      v: true, config: STE_CFG_S2_TRANS, eats: ats ? 1 : 0, s2fwb: c.fwb,
      s2vmid: c.vmid, s2t0sz: c.t0sz, s2sl0: c.sl0, s2ir0: 1, s2or0: 1, s2sh0: 3, s2tg: c.tg,
      s2ps: Math.min(c.ps, [32, 36, 40, 42, 44, 48, 52].indexOf(f.oasBits)), s2aa64: true, s2ptw: true, s2r: true, s2ttb: c.ttb,
    });
  }

  /** arm_smmu_make_nested_domain_ste. */
  private nestedSte(m: SmmuMaster, n: NestedDomain): Uint32Array {
    const cfg = n.config;
    if (cfg === STE_CFG_S1_TRANS) {
      const ats = m.atsUsable && n.enableAts;
      const w = this.s2Ste(m, n.vsmmu.parent, ats);
      const v = n.ste;
      // dword0: V | Config = nested | the guest's dword0 without Config; dword1 |= guest dword1 | MEV.
      w[0] = ((1 | (7 << 1)) | (v[0]! & ~0xe)) >>> 0;
      w[1] = v[1]!;
      w[2] = (w[2]! | v[2]! | (1 << 19)) >>> 0;
      w[3] = (w[3]! | v[3]!) >>> 0;
      return w;
    }
    if (cfg === 4) return this.s2Ste(m, n.vsmmu.parent, false);
    return this.abortSte();
  }

  /** An STE pointing at the master's host CD table (stage-1 domains at the RID and PASIDs). */
  private cdTableSte(m: SmmuMaster): Uint32Array {
    const log2 = m.maxPasidLog2 > 0 ? Math.min(m.maxPasidLog2, 10) : 0;
    if (!m.cdTable || m.cdLog2 !== log2) {
      this.freeCdTable(m);
      m.cdTable = this.alloc(64 * 2 ** log2);
      m.cdLog2 = log2;
    }
    const mem = this.host.physical;
    const write = (ssid: number, d: Stage1PagingDomain | undefined): void => {
      const bytes = d
        ? encodeCd({
            v: true, aa64: true, t0sz: 64 - d.inputBits, tg0: 0, irgn0: 1, orgn0: 1, sh0: 3, epd1: true,
            ips: [32, 36, 40, 42, 44, 48, 52].indexOf(this.smmu.features.oasBits), r: true, a: true, aset: true,
            asid: d.asid, ttb0: d.tables.root, mairLo: 0x0404ff44, mairHi: 0,
          })
        : new Uint8Array(64);
      mem.write(m.cdTable + ssid * 64, bytes);
      this.issue({ opcode: CMDQ_OP_CFGI_CD, sid: m.sid, ssid, leaf: true });
    };
    write(0, m.rid instanceof Stage1PagingDomain ? m.rid : undefined);
    for (let ssid = 1; ssid < 2 ** log2; ssid++) write(ssid, m.pasids.get(ssid));
    return encodeSteWords({
      v: true, config: STE_CFG_S1_TRANS, s1ContextPtr: m.cdTable, s1CdMax: log2,
      // Non-PASID traffic: CD 0 when the RID has a stage-1 domain, else terminate (blocked).
      s1dss: m.rid instanceof Stage1PagingDomain ? 2 : 0, s1cir: 1, s1cor: 1, s1csh: 3,
    });
  }

  private installSte(m: SmmuMaster, w: Uint32Array): void {
    const mem = this.host.physical;
    const base = this.strtab + m.sid * STE_SIZE;
    for (let i = 0; i < 16; i++) mem.writeU32(base + i * 4, w[i]!);
    this.issue({ opcode: CMDQ_OP_CFGI_STE, sid: m.sid, leaf: true });
  }

  // ---------------------------------------------------------------------------------------------
  // The host command queue

  private writeEntry(prod: number, w: Uint32Array, at: number): void {
    const mem = this.host.physical;
    const e = this.cmdqBase + (prod & ((1 << this.cmdqLog2) - 1)) * CMD_SIZE;
    mem.writeU32(e, w[at]!);
    mem.writeU32(e + 4, w[at + 1]!);
    mem.writeU32(e + 8, w[at + 2]!);
    mem.writeU32(e + 12, w[at + 3]!);
  }

  /** Issues commands followed by a CMD_SYNC and waits (the model consumes at once). */
  issue(...cmds: (Partial<Command> & { opcode: number })[]): void {
    const words = new Uint32Array(cmds.length * 4);
    cmds.forEach((c, i) => words.set(encodeCommandWords(c), i * 4));
    for (let i = 0; i < cmds.length; i += 63) this.issueBatch(words, i, Math.min(63, cmds.length - i));
  }

  /** Issues `count` raw entries starting at entry `first` of `words`, plus a CMD_SYNC. */
  issueBatch(words: Uint32Array, first: number, count: number): void {
    const s = this.smmu;
    const wrap = (2 << this.cmdqLog2) - 1;
    let prod = s.readReg(SMMU_CMDQ_PROD);
    for (let i = 0; i < count; i++) {
      this.writeEntry(prod, words, (first + i) * 4);
      prod = (prod + 1) & wrap;
    }
    this.writeEntry(prod, this.syncWords, 0);
    prod = (prod + 1) & wrap;
    s.writeReg(SMMU_CMDQ_PROD, prod);
  }

  sync(): void {
    this.issueBatch(this.syncWords, 0, 0);
  }

  /**
   * GERROR.CMDQ_ERR: as arm_smmu_cmdq_skip_err, replace the failing entry with a CMD_SYNC and
   * acknowledge, so the queue moves on (an illegal command is skipped, not fatal).
   */
  private handleGerror(): void {
    const s = this.smmu;
    const cons = s.readReg(SMMU_CMDQ_CONS);
    this.hostLog.push(`CMDQ error ${(cons >>> 24) & 0x7f} at entry ${cons & ((1 << this.cmdqLog2) - 1)}`);
    this.writeEntry(cons, this.syncWords, 0);
    s.writeReg(SMMU_GERRORN, s.readReg(SMMU_GERROR));
  }

  // ---------------------------------------------------------------------------------------------
  // Events

  private drainEvents(): void {
    const s = this.smmu;
    const mem = this.host.physical;
    const mask = (1 << this.evtqLog2) - 1;
    const wrap = (2 << this.evtqLog2) - 1;
    const prod = s.readReg(SMMU_EVTQ_PROD);
    let cons = s.readReg(SMMU_EVTQ_CONS);
    const w = this.evtWords;
    while ((cons & wrap) !== (prod & wrap)) {
      const e = this.evtqBase + (cons & mask) * EVT_SIZE;
      for (let i = 0; i < 8; i++) w[i] = mem.readU32(e + i * 4);
      this.handleEvent(w);
      cons = (cons + 1) & wrap;
    }
    s.writeReg(SMMU_EVTQ_CONS, (cons | (prod & 0x8000_0000)) >>> 0);
  }

  /** arm_smmu_handle_event: non-stall stage-1 events of a vmaster go to its vEVENTQ with the vSID. */
  private handleEvent(w: Uint32Array): void {
    const id = w[0]! & 0xff;
    const sid = w[1]!;
    const stall = (w[2]! >>> 31) & 1;
    const s2 = (w[3]! >>> 7) & 1;
    const m = this.masters.get(sid);
    if (FORWARDED_EVENTS.has(id) && !stall && !s2 && m?.vmaster) {
      const payload = new Uint8Array(32);
      const view = new DataView(payload.buffer);
      for (let i = 0; i < 8; i++) view.setUint32(i * 4, w[i]!, true);
      view.setUint32(4, m.vmaster.vsid >>> 0, true);
      m.vmaster.vsmmu.core.reportEvent(IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, payload);
      return;
    }
    if (this.hostLog.length < 1000) this.hostLog.push(`event ${faultName(id)} sid 0x${sid.toString(16)}`);
  }

  // ---------------------------------------------------------------------------------------------
  // DMA

  translate(dev: DriverDevice, pasid: number, iova: number, access: number, out: Translation): number {
    const m = dev as SmmuMaster;
    const acc = (access & DMA_WRITE) !== 0 ? ACCESS_WRITE : 0;
    const pa = this.smmu.translate(m.sid, pasid === NO_PASID ? NO_SSID : pasid, iova, acc);
    if (pa < 0) {
      out.reason = faultName(this.smmu.lastFault);
      return TRANSLATE_FAULT;
    }
    out.pa = pa;
    out.length = this.smmu.lastSpan;
    return TRANSLATE_OK;
  }

  /** The output-address size the nest parent uses (for tests). */
  get oasBits(): number {
    return addressBitsFromPs(this.smmu.idr[5]! & 7);
  }
}

/** The backend factory: `smmuv3Cmdqv({ name: 'smmu0' })`. */
export function smmuv3Cmdqv(options: Smmuv3CmdqvOptions): SmmuV3Driver {
  return new SmmuV3Driver(options);
}
