// The VT-d backend: a DriverV1 over the hardware model. It programs the model as Linux's
// intel-iommu programs the hardware — root, context and PASID entries in physical memory,
// invalidations through the invalidation queue, page requests from the page request queue — and
// applies at the iommufd boundary the checks and errnos of Linux 7.2.13 (iommu.c, nested.c,
// pasid.c, cache.c, prq.c).
import {
  copyUserArrayEntry, copyUserData, DMA_WRITE, NO_PASID, PAGE_RESP_INVALID, qwordsToBytes, TRANSLATE_FAULT, TRANSLATE_OK, TRANSLATE_PAGE_REQUEST,
  type DeviceInfo, type DriverDevice, type DriverDomain, type DriverHost, type DriverV1, type HwInfo, type PageRequest,
  type Translation, type UserData, type UserDataArray,
} from '@viommu/core';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_HW_INFO_TYPE_DEFAULT, IOMMU_HW_INFO_TYPE_INTEL_VTD, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17,
  IOMMU_VTD_INV_FLAGS_LEAF, IOMMU_VTD_S1_EAFE, IOMMU_VTD_S1_SRE, IOMMU_VTD_S1_WPE, SystemError, iommu_hw_info_vtd, iommu_hwpt_vtd_s1,
  iommu_hwpt_vtd_s1_invalidate,
} from '@viommu/uapi';
import {
  QI_CC_GRAN_DEVICE, QI_CC_TYPE, QI_DEIOTLB_TYPE, QI_DESC_SIZE, QI_DIOTLB_TYPE, QI_EIOTLB_TYPE, QI_GRAN_NONG_PASID,
  QI_GRAN_PSI_PASID, QI_IOTLB_GRAN_PAGE, QI_IOTLB_TYPE, QI_IWD_TYPE, QI_PC_PASID_SEL, QI_PC_TYPE, QI_PGRP_RESP_TYPE,
  PRQ_DESC_SIZE, type QiDescriptor, decodePageRequest, encodeQiDescriptor, qiWords,
} from '../formats/descriptors.js';
import { AW_48, AW_57, encodeContextEntry, encodePasidDirEntry, encodePasidEntryQwords, PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_SECOND_STAGE } from '../formats/entries.js';
import { faultReasonName } from '../formats/fault.js';
import {
  DMAR_FSTS_REG, DMAR_IQA_REG, DMAR_IQT_REG, DMAR_PQA_REG, DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PRS_REG, DMAR_RTADDR_REG, FSTS_IQE,
  IQA_DW, PRS_PRO, RTADDR_SMT, type VtdFeatures,
} from '../hw/regs.js';
import { NO_PASID as HW_NO_PASID, VtdHardware } from '../hw/vtd.js';
import { VtdDevice } from './device.js';
import { type Attachment, FsPagingDomain, NestedDomain, SsPagingDomain, type VtdDomain } from './domains.js';

export interface VtdOptions {
  /** Instance name devices refer to ({ iommu: 'dmar0' }). */
  name: string;
  features?: Partial<VtdFeatures>;
}

/** The vendor data of a page request the driver raised through the PRQ (for its page group response). */
interface PendingGroup {
  readonly pasidPresent: boolean;
  responded: boolean;
}

const U64_MAX = (1n << 64n) - 1n;
const MAX_AGAW_PFN_WIDTH = 52;

/**
 * cache.c calculate_psi_aligned_address: the naturally aligned power-of-two region covering
 * [start, last], as [address, order in 4 KiB pages]; order 52 means "everything".
 */
export function psiAlignedRange(start: bigint, last: bigint): [bigint, number] {
  const s = start & ~0xfffn;
  const x = s ^ BigInt.asUintN(64, last);
  const fls = x === 0n ? 0 : x.toString(2).length;
  if (fls <= 12) return [s, 0];
  if (fls >= 64) return [0n, MAX_AGAW_PFN_WIDTH];
  return [s & ~((1n << BigInt(fls)) - 1n), fls - 12];
}

export class VtdDriver implements DriverV1 {
  readonly apiVersion = 1 as const;
  readonly name: string;
  host!: DriverHost;
  hw!: VtdHardware;
  /** What the kernel would only print (fault records, PRQ problems), bounded. */
  readonly hostLog: string[] = [];

  private readonly options: VtdOptions;
  private rootTable = 0;
  private readonly contextTables = new Map<number, number>();
  private iqBase = 0;
  private iqTail = 0;
  private statusPa = 0;
  private statusSeq = 0;
  private prqBase = 0;
  private readonly devices = new Map<number, VtdDevice>();
  private readonly freeDids: number[] = [];
  private nextDid = 1;
  /** Page requests raised through the PRQ awaiting a response, by sid * 512 + PRG index. */
  private readonly pendingGroups = new Map<number, PendingGroup>();
  /** Responses the device received (page group responses), for tests: [rid, pasid, prg, code]. */
  readonly deviceResponses: [number, number, number, number][] = [];
  private readonly descBuf = new Uint8Array(QI_DESC_SIZE);
  private readonly words = new Uint32Array(QI_DESC_SIZE / 4);
  private readonly wait: QiDescriptor & { statusData: number } = {
    type: QI_IWD_TYPE, intr: false, sw: true, fence: true, pd: false, statusData: 0, statusAddr: 0n,
  };

  constructor(options: VtdOptions) {
    this.options = options;
    this.name = options.name;
  }

  // ---------------------------------------------------------------------------------------------
  // Probe: root table, invalidation queue and page request queue, as intel_iommu_init sets them up.

  probe(host: DriverHost): void {
    this.host = host;
    this.hw = new VtdHardware(host.physical, this.options.features, {
      fault: () => this.handleFaults(),
      pageRequest: () => this.handlePageRequests(),
      pageGroupResponse: (rid, pp, pasid, prg, code) => this.deviceResponses.push([rid, pp ? pasid : -1, prg, code]),
    });
    this.rootTable = this.allocFrames(1);
    this.hw.writeReg64(DMAR_RTADDR_REG, BigInt(this.rootTable) | RTADDR_SMT);
    // 256-bit descriptors, QS = 1: two pages, 256 descriptors (what Linux writes in scalable mode).
    this.iqBase = this.allocFrames(2);
    this.hw.writeReg64(DMAR_IQA_REG, BigInt(this.iqBase) | IQA_DW | 1n);
    this.statusPa = this.allocFrames(1);
    // A 64 KiB page request queue (PQA size 4 = 2^4 pages).
    this.prqBase = this.allocFrames(16);
    this.hw.writeReg64(DMAR_PQA_REG, BigInt(this.prqBase) | 4n);
  }

  private allocFrames(n: number): number {
    return this.host.physical.allocRun(n).firstFrame * 4096;
  }

  get snoopControl(): boolean {
    return this.features.sc;
  }

  /** intel_pasid_setup_page_snoop_control for the RID of every device `d` is attached to. */
  setPageSnoop(d: FsPagingDomain): void {
    const descs: QiDescriptor[] = [];
    for (const a of d.attachments) {
      if (a.pasid !== 0) continue;
      const addr = this.pasidEntryAddr(a.dev, 0, false);
      if (addr === undefined) continue;
      this.host.physical.writeU32(addr + 8, (this.host.physical.readU32(addr + 8) | (1 << 24)) >>> 0);
      descs.push({ type: QI_PC_TYPE, gran: QI_PC_PASID_SEL, did: d.did, pasid: 0 });
      descs.push({ type: QI_EIOTLB_TYPE, gran: QI_GRAN_NONG_PASID, did: d.did, pasid: 0, am: 0, ih: false, addr: 0n });
    }
    if (descs.length > 0) this.submit(descs);
  }

  get features(): VtdFeatures {
    return this.hw.features;
  }

  private get nestedSupported(): boolean {
    return this.features.smts && this.features.nest;
  }

  // ---------------------------------------------------------------------------------------------
  // Devices: a scalable-mode context entry with a PASID directory sized for the device.

  probeDevice(info: DeviceInfo): VtdDevice {
    const sid = info.rid;
    if (!Number.isInteger(sid) || sid < 0 || sid > 0xffff) throw new SystemError('ENODEV', 'probe', `source-id ${sid}`);
    if (this.devices.has(sid)) throw new SystemError('EBUSY', 'probe', `source-id 0x${sid.toString(16)} in use`);
    const f = this.features;
    const pasidLog2 = f.smts && info.pasidBits > 0 ? Math.min(info.pasidBits, f.pasidBits) : 0;
    const dev = new VtdDevice(info, pasidLog2, info.ats && f.deviceTlb, f.smts && f.slads, f.sc);
    // Directory as intel_pasid_alloc_table sizes it: one entry per 64 PASIDs, at least one page
    // (512 entries, 32768 PASIDs), also for a device without PASID support.
    const dirEntries = Math.max(512, 2 ** Math.max(0, pasidLog2 - 6));
    dev.pasidDir = this.allocFrames(Math.ceil((dirEntries * 8) / 4096));
    dev.pasidDirEntries = dirEntries;
    const bus = sid >>> 8;
    const devfn = sid & 0xff;
    let ctxTable = this.contextTables.get(bus * 2 + (devfn >= 0x80 ? 1 : 0));
    if (ctxTable === undefined) {
      ctxTable = this.allocFrames(1);
      this.contextTables.set(bus * 2 + (devfn >= 0x80 ? 1 : 0), ctxTable);
      this.host.physical.writeU32(this.rootTable + bus * 16 + (devfn >= 0x80 ? 8 : 0), ctxTable | 1);
    }
    this.host.physical.write(ctxTable + (devfn & 0x7f) * 32, encodeContextEntry({
      p: true, dte: dev.atsUsable, paside: pasidLog2 > 0, pre: info.pri && f.prs, pdts: Math.log2(dirEntries) - 7,
      pasidDirPtr: BigInt(dev.pasidDir), ridPasid: 0,
    }));
    this.submit([{ type: QI_CC_TYPE, gran: QI_CC_GRAN_DEVICE, did: 0, sid, fm: 0 }]);
    this.devices.set(sid, dev);
    return dev;
  }

  releaseDevice(d: DriverDevice): void {
    const dev = d as VtdDevice;
    for (const pasid of [...dev.domains.keys()]) this.clearPasidEntry(dev, pasid);
    const devfn = dev.sid & 0xff;
    const ctxTable = this.contextTables.get((dev.sid >>> 8) * 2 + (devfn >= 0x80 ? 1 : 0))!;
    this.host.physical.write(ctxTable + (devfn & 0x7f) * 32, new Uint8Array(32));
    this.submit([{ type: QI_CC_TYPE, gran: QI_CC_GRAN_DEVICE, did: 0, sid: dev.sid, fm: 0 }]);
    for (const t of dev.pasidTables.values()) this.host.physical.freeRun(t / 4096);
    this.host.physical.freeRun(dev.pasidDir / 4096);
    this.devices.delete(dev.sid);
  }

  /** The PASID table entry address for (dev, pasid), allocating its table; undefined beyond the directory. */
  pasidEntryAddr(dev: VtdDevice, pasid: number, alloc: boolean): number | undefined {
    const di = Math.floor(pasid / 64);
    if (di >= dev.pasidDirEntries) return undefined;
    let table = dev.pasidTables.get(di);
    if (table === undefined) {
      if (!alloc) return undefined;
      table = this.allocFrames(1);
      dev.pasidTables.set(di, table);
      this.host.physical.write(dev.pasidDir + di * 8, encodePasidDirEntry({ p: true, pasidTablePtr: BigInt(table) }));
    }
    return table + (pasid % 64) * 64;
  }

  // ---------------------------------------------------------------------------------------------
  // GET_HW_INFO (intel_iommu_hw_info): the raw CAP/ECAP and, always, the erratum flag.

  hwInfo(_dev: DriverDevice, requestedType: number): HwInfo {
    if (requestedType !== IOMMU_HW_INFO_TYPE_DEFAULT && requestedType !== IOMMU_HW_INFO_TYPE_INTEL_VTD) {
      throw new SystemError('EOPNOTSUPP', 'ioctl', `hw_info type ${requestedType}`);
    }
    this.host.failPoint('intel_iommu_hw_info');
    return {
      type: IOMMU_HW_INFO_TYPE_INTEL_VTD,
      data: iommu_hw_info_vtd.encode({ flags: IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, __reserved: 0, cap_reg: this.hw.cap, ecap_reg: this.hw.ecap }),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Domains (intel_iommu_domain_alloc_paging_flags / _first_stage / _second_stage / _nested)

  allocPagingDomain(_dev: DriverDevice, flags: number, data?: UserData): FsPagingDomain | SsPagingDomain {
    if (data) throw new SystemError('EOPNOTSUPP', 'ioctl', 'paging domains take no vendor data');
    const f = this.features;
    // Prefer the first stage; its EOPNOTSUPP falls through to the second stage.
    if ((flags & ~IOMMU_HWPT_ALLOC_PASID) === 0 && f.smts && f.flts) {
      this.host.failPoint('paging_domain_alloc');
      return new FsPagingDomain(this.host.physical, this, this.allocDid());
    }
    const allowed = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID;
    if (flags & ~allowed) throw new SystemError('EOPNOTSUPP', 'ioctl', `paging flags 0x${flags.toString(16)}`);
    if ((flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0 && !this.nestedSupported) throw new SystemError('EOPNOTSUPP', 'ioctl', 'no nesting');
    // Dirty tracking needs second-stage A/D (ECAP.SLADS).
    if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0 && !(f.smts && f.slads)) throw new SystemError('EOPNOTSUPP', 'ioctl', 'no second-stage A/D support');
    if (f.smts && !f.slts) throw new SystemError('EOPNOTSUPP', 'ioctl', 'no second-stage translation');
    this.host.failPoint('paging_domain_alloc');
    return new SsPagingDomain(this.host.physical, this, this.allocDid(), (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0, (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0);
  }

  allocNestedDomain(_dev: DriverDevice, parent: DriverDomain, flags: number, data: UserData): NestedDomain {
    if (!this.nestedSupported || (flags & ~IOMMU_HWPT_ALLOC_PASID) !== 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'nesting flags');
    if (data.type !== IOMMU_HWPT_DATA_VTD_S1) throw new SystemError('EOPNOTSUPP', 'ioctl', `nested data type ${data.type}`);
    if (!(parent instanceof SsPagingDomain) || !parent.nestParent) throw new SystemError('EINVAL', 'ioctl', 'parent is not a second-stage nest parent');
    const bytes = copyUserData(data, IOMMU_HWPT_DATA_VTD_S1, iommu_hwpt_vtd_s1.size, iommu_hwpt_vtd_s1.size);
    const v = iommu_hwpt_vtd_s1.decode(bytes);
    this.host.failPoint('intel_iommu_domain_alloc_nested');
    return new NestedDomain(this, parent, this.allocDid(), { flags: BigInt(v.flags), pgtblAddr: BigInt(v.pgtbl_addr), addrWidth: Number(v.addr_width) });
  }

  private allocDid(): number {
    const did = this.freeDids.pop() ?? this.nextDid++;
    if (did >= 2 ** (4 + 2 * this.features.nd)) throw new SystemError('ENOSPC', 'ioctl', 'out of domain IDs');
    return did;
  }

  releaseDid(did: number): void {
    // Nothing may stay cached under a DID that is handed out again.
    this.submit([{ type: QI_IOTLB_TYPE, gran: 2, dw: false, dr: false, did, am: 0, ih: false, addr: 0n }]);
    this.freeDids.push(did);
  }

  // ---------------------------------------------------------------------------------------------
  // Attach: PASID table entries (pasid.c), RID through RID_PASID 0.

  attach(d: DriverDevice, pasid: number, domain: DriverDomain | null): void {
    const dev = d as VtdDevice;
    const vp = pasid === NO_PASID ? 0 : pasid;
    if (pasid !== NO_PASID) {
      // intel_iommu_set_dev_pasid / intel_nested_set_dev_pasid: the unit must support PASIDs (the
      // device's own range is checked by the core).
      if (domain && !(this.features.smts && this.features.pasidBits > 0)) throw new SystemError('EOPNOTSUPP', 'ioctl', 'no PASID support');
    }
    if (domain === null) {
      this.clearPasidEntry(dev, vp);
      return;
    }
    const dom = domain as VtdDomain;
    if (!this.owns(dom)) throw new SystemError('EINVAL', 'ioctl', 'domain of another IOMMU');
    const entry = this.buildPasidEntry(dom);
    const addr = this.pasidEntryAddr(dev, vp, true);
    if (addr === undefined) throw new SystemError('ENODEV', 'ioctl', `no PASID table entry for PASID ${vp}`);
    this.host.failPoint('domain_attach_iommu');
    // Replace: tear the old entry down first (intel_pasid_tear_down_entry), then program the new one.
    if (dev.domains.has(vp)) this.clearPasidEntry(dev, vp);
    this.host.physical.write(addr, qwordsToBytes(entry));
    if (this.features.cm) {
      const did = dom.did;
      this.submit([
        { type: QI_PC_TYPE, gran: QI_PC_PASID_SEL, did, pasid: vp },
        { type: QI_EIOTLB_TYPE, gran: QI_GRAN_NONG_PASID, did, pasid: vp, am: 0, ih: false, addr: 0n },
      ]);
    }
    dev.domains.set(vp, dom);
    dom.attachments.add(attachmentOf(dev, vp));
  }

  private owns(d: VtdDomain): boolean {
    return d.owner === this && (d instanceof FsPagingDomain || d instanceof SsPagingDomain || d instanceof NestedDomain);
  }

  /** The PASID entry for a domain (pasid_pte_config_*), with the nested checks of intel_pasid_setup_nested. */
  private buildPasidEntry(d: VtdDomain): bigint[] {
    const f = this.features;
    if (d instanceof FsPagingDomain) {
      return encodePasidEntryQwords({ p: true, pgtt: PGTT_FIRST_STAGE, did: d.did, fsptptr: BigInt(d.root), fspm: 0, pwsnp: f.smpwc, pgsnp: d.forceSnooping });
    }
    if (d instanceof SsPagingDomain) {
      return encodePasidEntryQwords({
        p: true, pgtt: PGTT_SECOND_STAGE, did: d.did, ssptptr: BigInt(d.root), aw: d.levels === 5 ? AW_57 : AW_48, pwsnp: f.smpwc,
        ssade: d.dirty?.enabled ?? false,
      });
    }
    const s1 = d.s1;
    if (s1.addrWidth !== 48 && !(s1.addrWidth === 57 && f.fs5lp)) throw new SystemError('EINVAL', 'ioctl', `stage-1 address width ${s1.addrWidth}`);
    if ((s1.flags & BigInt(IOMMU_VTD_S1_SRE)) !== 0n && !f.srs) throw new SystemError('EINVAL', 'ioctl', 'no supervisor request support');
    if ((s1.flags & BigInt(IOMMU_VTD_S1_EAFE)) !== 0n && !f.eafs) throw new SystemError('EINVAL', 'ioctl', 'no extended access flag support');
    const p = d.parent;
    const q = encodePasidEntryQwords({
      p: true, pgtt: PGTT_NESTED, did: d.did, fspm: s1.addrWidth === 57 ? 1 : 0,
      sre: (s1.flags & BigInt(IOMMU_VTD_S1_SRE)) !== 0n,
      wpe: (s1.flags & BigInt(IOMMU_VTD_S1_SRE)) !== 0n && (s1.flags & BigInt(IOMMU_VTD_S1_WPE)) !== 0n,
      eafe: (s1.flags & BigInt(IOMMU_VTD_S1_EAFE)) !== 0n, pgsnp: d.parent.forceSnooping,
      ssptptr: BigInt(p.root), aw: p.levels === 5 ? AW_57 : AW_48, pwsnp: f.smpwc, ssade: p.dirty?.enabled ?? false,
    });
    // The kernel sets the first-stage pointer from pgtbl_addr without masking it: its low 12 bits
    // land in qword 2 bits 11:0 (SRE, ERE, FSPM, WPE, ...). A misaligned address sets those bits.
    const pg = BigInt.asUintN(64, s1.pgtblAddr);
    q[2] = (q[2]! & 0xfffn) | (pg & ~0xfffn) | (pg & 0xfffn);
    return q;
  }

  /**
   * intel_pasid_setup_dirty_tracking for every attachment of `d` and of the nested domains on it:
   * SSADE in the PASID entry, then a PASID-selective PASID-cache and a domain-selective IOTLB flush.
   */
  setDirtyTracking(d: SsPagingDomain, enabled: boolean): void {
    const descs: QiDescriptor[] = [];
    for (const dom of [d, ...d.children]) {
      for (const a of dom.attachments) {
        const addr = this.pasidEntryAddr(a.dev, a.pasid, false);
        if (addr === undefined) continue;
        const lo = this.host.physical.readU32(addr);
        this.host.physical.writeU32(addr, enabled ? (lo | 0x200) >>> 0 : (lo & ~0x200) >>> 0);
        descs.push({ type: QI_PC_TYPE, gran: QI_PC_PASID_SEL, did: dom.did, pasid: a.pasid });
        descs.push({ type: QI_IOTLB_TYPE, gran: 2, dw: false, dr: false, did: dom.did, am: 0, ih: false, addr: 0n });
      }
    }
    if (descs.length > 0) this.submit(descs);
  }

  /** intel_pasid_tear_down_entry: clear P, then flush the PASID cache, IOTLB and device-TLB. */
  private clearPasidEntry(dev: VtdDevice, vp: number): void {
    const old = dev.domains.get(vp);
    const addr = this.pasidEntryAddr(dev, vp, false);
    if (addr !== undefined) this.host.physical.write(addr, new Uint8Array(64));
    if (!old) return;
    dev.domains.delete(vp);
    for (const a of old.attachments) if (a.dev === dev && a.pasid === vp) old.attachments.delete(a);
    const did = old.did;
    const descs: QiDescriptor[] = [{ type: QI_PC_TYPE, gran: QI_PC_PASID_SEL, did, pasid: vp }];
    if (old instanceof SsPagingDomain) descs.push({ type: QI_IOTLB_TYPE, gran: 2, dw: false, dr: false, did, am: 0, ih: false, addr: 0n });
    else descs.push({ type: QI_EIOTLB_TYPE, gran: QI_GRAN_NONG_PASID, did, pasid: vp, am: 0, ih: false, addr: 0n });
    if (dev.atsUsable) descs.push(this.devTlbDesc(dev, vp, 0n, MAX_AGAW_PFN_WIDTH));
    this.submit(descs);
  }

  // ---------------------------------------------------------------------------------------------
  // Cache maintenance (cache.c): per attachment, P_IOTLB for first-stage and nested domains, IOTLB
  // for second-stage ones (and for the nested domains on a parent), device-TLB for ATS devices.

  flushRange(d: VtdDomain, start: bigint, last: bigint, leaf: boolean): void {
    const [addr, order] = psiAlignedRange(start, last);
    const descs: QiDescriptor[] = [];
    const ih = leaf;
    const iotlbSs = (did: number): void => {
      if (order > 18 /* CAP.MAMV */) descs.push({ type: QI_IOTLB_TYPE, gran: 2, dw: false, dr: false, did, am: 0, ih: false, addr: 0n });
      else descs.push({ type: QI_IOTLB_TYPE, gran: QI_IOTLB_GRAN_PAGE, dw: false, dr: false, did, am: order, ih, addr });
    };
    if (d instanceof SsPagingDomain) {
      if (d.attachments.size > 0) iotlbSs(d.did);
      for (const a of d.attachments) if (a.dev.atsUsable) descs.push(this.devTlbDesc(a.dev, a.pasid, addr, order));
      for (const child of d.children) {
        if (child.attachments.size === 0) continue;
        iotlbSs(child.did);
        // A second-stage change invalidates the whole device-TLB of devices behind nested domains.
        for (const a of child.attachments) if (a.dev.atsUsable) descs.push(this.devTlbDesc(a.dev, a.pasid, 0n, MAX_AGAW_PFN_WIDTH));
      }
    } else {
      for (const a of d.attachments) {
        if (order >= MAX_AGAW_PFN_WIDTH) descs.push({ type: QI_EIOTLB_TYPE, gran: QI_GRAN_NONG_PASID, did: d.did, pasid: a.pasid, am: 0, ih: false, addr: 0n });
        else descs.push({ type: QI_EIOTLB_TYPE, gran: QI_GRAN_PSI_PASID, did: d.did, pasid: a.pasid, am: order, ih, addr });
        if (a.dev.atsUsable) descs.push(this.devTlbDesc(a.dev, a.pasid, addr, order));
      }
    }
    if (descs.length > 0) this.submit(descs);
  }

  private devTlbDesc(dev: VtdDevice, vp: number, addr: bigint, order: number): QiDescriptor {
    let a = addr;
    let size = false;
    if (order >= MAX_AGAW_PFN_WIDTH) {
      a = (1n << 63n) - 1n - 0xfffn;
      size = true;
    } else if (order > 0) {
      a = (addr | ((1n << BigInt(11 + order)) - 1n)) & ~0xfffn;
      size = true;
    }
    if (vp === 0) return { type: QI_DIOTLB_TYPE, sid: dev.sid, pfsid: dev.sid, qdep: 0, size, addr: a };
    return { type: QI_DEIOTLB_TYPE, sid: dev.sid, pfsid: dev.sid, qdep: 0, pasid: vp, global: false, size, addr: a };
  }

  /** intel_nested_cache_invalidate_user. */
  invalidateUser(d: NestedDomain, array: UserDataArray): void {
    let processed = 0;
    try {
      if (array.type !== IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) throw new SystemError('EINVAL', 'ioctl', `invalidation type ${array.type}`);
      const size = iommu_hwpt_vtd_s1_invalidate.size;
      for (let i = 0; i < array.entryNum; i++) {
        const bytes = copyUserArrayEntry(array, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, i, size, size);
        const e = iommu_hwpt_vtd_s1_invalidate.decode(bytes);
        if ((e.flags & ~IOMMU_VTD_INV_FLAGS_LEAF) !== 0 || e.__reserved !== 0) throw new SystemError('EOPNOTSUPP', 'ioctl', 'invalidation flags');
        const addr = BigInt(e.addr);
        const npages = BigInt(e.npages);
        if ((addr & 0xfffn) !== 0n || (npages === U64_MAX && addr !== 0n)) throw new SystemError('EINVAL', 'ioctl', 'invalidation range');
        // 64-bit arithmetic, no overflow check, as the kernel computes it.
        const last = BigInt.asUintN(64, addr + BigInt.asUintN(64, npages << 12n) - 1n);
        this.flushRange(d, addr, last, (e.flags & IOMMU_VTD_INV_FLAGS_LEAF) !== 0);
        processed++;
      }
    } finally {
      array.entryNum = processed;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The invalidation queue: descriptors, then a wait descriptor writing a status word we check.

  submit(descs: readonly QiDescriptor[]): void {
    const n = this.hw.iqEntries;
    const seq = (this.statusSeq = (this.statusSeq + 1) >>> 0);
    this.wait.statusData = seq;
    (this.wait as { statusAddr: bigint }).statusAddr = BigInt(this.statusPa);
    let pending = 0;
    const push = (d: QiDescriptor): void => {
      if (pending === n - 1) {
        this.hw.writeReg64(DMAR_IQT_REG, BigInt(this.iqTail * QI_DESC_SIZE));
        pending = 0;
      }
      qiWords(d, this.words);
      const at = this.iqBase + this.iqTail * QI_DESC_SIZE;
      for (let i = 0; i < 8; i++) this.host.physical.writeU32(at + i * 4, this.words[i]!);
      this.iqTail = (this.iqTail + 1) % n;
      pending++;
    };
    for (const d of descs) push(d);
    push(this.wait);
    this.hw.writeReg64(DMAR_IQT_REG, BigInt(this.iqTail * QI_DESC_SIZE));
    if ((Number(this.hw.readReg64(DMAR_FSTS_REG)) & FSTS_IQE) !== 0) {
      // qi_check_fault: an invalid descriptor; report and clear so the queue moves on.
      this.hw.writeReg64(DMAR_FSTS_REG, BigInt(FSTS_IQE));
      throw new SystemError('EINVAL', 'ioctl', 'invalidation queue error');
    }
    if (this.host.physical.readU32(this.statusPa) !== seq) throw new SystemError('ETIMEDOUT', 'ioctl', 'invalidation wait did not complete');
  }

  /** One raw descriptor through the queue (tests: what a hostile or buggy driver could issue). */
  submitRaw(bytes: Uint8Array): void {
    this.descBuf.set(bytes.subarray(0, QI_DESC_SIZE));
    const n = this.hw.iqEntries;
    this.host.physical.write(this.iqBase + this.iqTail * QI_DESC_SIZE, this.descBuf);
    this.iqTail = (this.iqTail + 1) % n;
    this.hw.writeReg64(DMAR_IQT_REG, BigInt(this.iqTail * QI_DESC_SIZE));
    if ((Number(this.hw.readReg64(DMAR_FSTS_REG)) & FSTS_IQE) !== 0) {
      // Skip the bad descriptor as the kernel does (it overwrites it and clears IQE).
      this.host.physical.write(this.iqBase + ((this.iqTail + n - 1) % n) * QI_DESC_SIZE, encodeQiDescriptor({ type: QI_IWD_TYPE, intr: false, sw: false, fence: false, pd: false, statusData: 0, statusAddr: 0n }));
      this.hw.writeReg64(DMAR_FSTS_REG, BigInt(FSTS_IQE));
      this.hw.writeReg64(DMAR_IQT_REG, BigInt(this.iqTail * QI_DESC_SIZE));
      throw new SystemError('EINVAL', 'ioctl', 'invalidation queue error');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // DMA

  translate(d: DriverDevice, pasid: number, iova: number, access: number, out: Translation): number {
    const dev = d as VtdDevice;
    const pa = this.hw.translate(dev.sid, pasid === NO_PASID ? HW_NO_PASID : pasid, iova, (access & DMA_WRITE) !== 0);
    if (pa >= 0) {
      out.pa = pa;
      out.length = 4096 - (iova % 4096);
      return TRANSLATE_OK;
    }
    const reason = this.hw.lastFault;
    out.reason = faultReasonName(reason);
    const dom = dev.domains.get(pasid === NO_PASID ? 0 : pasid);
    if (VtdHardware.recoverable(reason) && dev.info.pri && dom instanceof NestedDomain && dom.faultCapable && this.hw.pageRequestsEnabled(dev.sid)) {
      return TRANSLATE_PAGE_REQUEST;
    }
    return TRANSLATE_FAULT;
  }

  // ---------------------------------------------------------------------------------------------
  // Faults: dmar_fault reads the recording registers, logs, clears. Nothing goes to iommufd.

  private handleFaults(): void {
    for (let i = 0; i < this.features.nfr; i++) {
      const r = this.hw.faultRecord(i);
      if (!r.f) continue;
      if (this.hostLog.length < 1000) {
        this.hostLog.push(`DMAR: [${r.read ? 'DMA Read' : 'DMA Write'} NO_PASID] Request device [${(r.sid >> 8).toString(16)}:${((r.sid >> 3) & 31).toString(16)}.${r.sid & 7}] ${r.pasidPresent ? `PASID 0x${r.pasid.toString(16)} ` : ''}fault addr 0x${r.addr.toString(16)} [fault reason 0x${r.reason.toString(16).padStart(2, '0')}] ${faultReasonName(r.reason)}`);
      }
      this.hw.clearFaultRecord(i);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Page requests (prq.c)

  /**
   * A device sends a PCIe page request (PRI): the hardware queues the descriptor, the driver's PRQ
   * handler reports it. Resolves with the response code the device receives (page group response),
   * or undefined when no response is due (a stop marker, or a non-last request).
   */
  raisePageRequest(d: DriverDevice, req: { pasid?: number; addr: bigint; read?: boolean; write?: boolean; exe?: boolean; priv?: boolean; lpig?: boolean; prgIndex?: number }): boolean {
    const dev = d as VtdDevice;
    return this.hw.pageRequest({
      pasidPresent: req.pasid !== undefined, rid: dev.sid, pasid: req.pasid ?? 0, exe: req.exe ?? false, priv: req.priv ?? false,
      read: req.read ?? true, write: req.write ?? false, lpig: req.lpig ?? true, prgIndex: req.prgIndex ?? 0, addr: req.addr & ~0xfffn,
    });
  }

  private handlePageRequests(): void {
    const hw = this.hw;
    const size = hw.prqSize;
    let head = Number(hw.readReg64(DMAR_PQH_REG));
    const tail = Number(hw.readReg64(DMAR_PQT_REG));
    const buf = new Uint8Array(PRQ_DESC_SIZE);
    while (head !== tail) {
      this.host.physical.read(this.prqBase + head, buf);
      const r = decodePageRequest(buf);
      head = (head + PRQ_DESC_SIZE) % size;
      // Canonical for 4-level first stage: the model's addresses are below 2^53, so bits 63:47 must be zero.
      if (r.addr >= 1n << 47n) {
        this.hostLog.push(`PRQ: non-canonical address 0x${r.addr.toString(16)}`);
        if (r.lpig) this.respond(r.rid, r.pasidPresent, r.pasid, r.prgIndex, PAGE_RESP_INVALID);
        continue;
      }
      if ((r.priv && (r.read || r.write)) || (r.exe && r.read)) {
        if (r.lpig) this.respond(r.rid, r.pasidPresent, r.pasid, r.prgIndex, PAGE_RESP_INVALID);
        continue;
      }
      if (r.lpig && !r.read && !r.write) continue; // stop marker: no response
      const dev = this.devices.get(r.rid);
      if (!dev) {
        if (r.lpig) this.respond(r.rid, r.pasidPresent, r.pasid, r.prgIndex, PAGE_RESP_INVALID);
        continue;
      }
      const perm = (r.read ? 1 : 0) | (r.write ? DMA_WRITE : 0);
      const key = r.rid * 512 + r.prgIndex;
      const group: PendingGroup = { pasidPresent: r.pasidPresent, responded: false };
      if (r.lpig) this.pendingGroups.set(key, group);
      const pr: PageRequest = { pasid: r.pasidPresent ? r.pasid : NO_PASID, addr: r.addr, perm, grpid: r.prgIndex, last: r.lpig };
      void this.host.reportPageRequest(dev, pr).then((code) => {
        // No fault queue took it (or it was auto-answered without the hook): answer it ourselves.
        if (r.lpig && !group.responded) this.respond(r.rid, r.pasidPresent, r.pasid, r.prgIndex, code);
      });
    }
    hw.writeReg64(DMAR_PQH_REG, BigInt(head));
    if ((Number(hw.readReg64(DMAR_PRS_REG)) & PRS_PRO) !== 0 && head === Number(hw.readReg64(DMAR_PQT_REG))) {
      this.hostLog.push('PRQ overflow');
      hw.writeReg64(DMAR_PRS_REG, BigInt(PRS_PRO));
    }
  }

  /** intel_iommu_page_response: a page group response descriptor with the user's code, unchanged. */
  pageResponse(d: DriverDevice, req: PageRequest, code: number): void {
    const dev = d as VtdDevice;
    const key = dev.sid * 512 + req.grpid;
    const group = this.pendingGroups.get(key);
    if (group) {
      group.responded = true;
      this.pendingGroups.delete(key);
    }
    const pasidPresent = group ? group.pasidPresent : req.pasid !== NO_PASID;
    this.respond(dev.sid, pasidPresent, req.pasid, req.grpid, code);
  }

  private respond(rid: number, pasidPresent: boolean, pasid: number, prg: number, code: number): void {
    this.submit([{ type: QI_PGRP_RESP_TYPE, pasidPresent, code, rid, pasid: pasidPresent ? pasid : 0, prgIndex: prg }]);
  }

  /** Devices behind this unit (tests). */
  device(sid: number): VtdDevice | undefined {
    return this.devices.get(sid);
  }
}

function attachmentOf(dev: VtdDevice, pasid: number): Attachment {
  return { dev, pasid };
}

/** The backend factory: `vtd({ name: 'dmar0' })`. */
export function vtd(options: VtdOptions): VtdDriver {
  return new VtdDriver(options);
}
