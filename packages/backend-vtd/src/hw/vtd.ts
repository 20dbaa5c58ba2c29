// The VT-d remapping hardware model: it reads the root/context/PASID structures and the page
// tables the driver (or a guest) left in physical memory, caches what hardware caches — context
// entries by source-id, PASID entries by (source-id, PASID) tagged with their DID, IOTLB entries by
// (DID, PASID, page), device-TLB entries by (source-id, PASID, page) — and only forgets them when an
// invalidation descriptor says so. A missing invalidation therefore leaves stale translations, as on
// hardware. Faults are recorded in the fault recording registers with the architectural reasons.
import { FRAME_SIZE, type PhysicalMemory } from '@viommu/core';
import {
  type PageRequestDescriptor, PRQ_DESC_SIZE, QI_CC_GRAN_DEVICE, QI_CC_TYPE, QI_DEIOTLB_TYPE, QI_DESC_SIZE, QI_DIOTLB_TYPE,
  QI_EIOTLB_TYPE, QI_GRAN_PSI_PASID, QI_IEC_TYPE, QI_IOTLB_GRAN_DOMAIN, QI_IOTLB_GRAN_GLOBAL, QI_IOTLB_TYPE, QI_IWD_TYPE,
  QI_PC_ALL_PASIDS, QI_PC_PASID_SEL, QI_PC_TYPE, QI_PGRP_RESP_TYPE, type QiDescriptor, decodeQiWords, devTlbRange,
  encodePageRequest,
} from '../formats/descriptors.js';
import { CONTEXT_RSVD_Q0_LO, CONTEXT_RSVD_Q1_LO, PASID_RSVD_Q0_LO, PASID_RSVD_Q2_LO, PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_PASS_THROUGH, PGTT_SECOND_STAGE, ROOT_RSVD_LO } from '../formats/entries.js';
import {
  FR_SM_CTX_NOT_PRESENT, FR_SM_CTX_PASIDE_CLEAR, FR_SM_CTX_RSVD, FR_SM_FS_NOT_PRESENT, FR_SM_FS_RSVD, FR_SM_NON_CANONICAL,
  FR_SM_NO_READ, FR_SM_NO_WRITE, FR_SM_PASID_DIR_NOT_PRESENT, FR_SM_PASID_INVALID, FR_SM_PASID_NOT_PRESENT, FR_SM_PASID_RSVD,
  FR_SM_PASID_TOO_LARGE, FR_SM_ROOT_NOT_PRESENT, FR_SM_ROOT_RSVD, FR_SM_SS_BEYOND_MAX, FR_SM_SS_PERM, FR_SM_SS_RSVD,
  FR_SM_US_CLEAR, type FaultRecord,
} from '../formats/fault.js';
import { entryAddr, FS_PS, FS_RW, FS_US, levelIndex, levelShift, RSVD_HI_MASK, SS_A, SS_D, SS_PS, SS_R, SS_W } from '../pgtable/pte.js';
import {
  DEFAULT_FEATURES, DMAR_CAP_REG, DMAR_ECAP_REG, DMAR_FSTS_REG, DMAR_IQA_REG, DMAR_IQERCD_REG, DMAR_IQH_REG, DMAR_IQT_REG,
  DMAR_PQA_REG, DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PRS_REG, DMAR_RTADDR_REG, FSTS_IQE, FSTS_PFO, FSTS_PPF, PRS_PPR, PRS_PRO,
  RTADDR_SMT, type VtdFeatures, capReg, ecapReg,
} from './regs.js';

/** A cached scalable-mode context entry (by source-id). */
interface ContextCacheEntry {
  pasidDir: number;
  /** PASIDs the directory covers. */
  pasidLimit: number;
  paside: boolean;
  pre: boolean;
  dte: boolean;
  fpd: boolean;
  ridPasid: number;
}

/** A cached PASID table entry (by source-id and PASID, tagged with its DID). */
interface PasidCacheEntry {
  did: number;
  pasid: number;
  pgtt: number;
  fpd: boolean;
  fsRoot: number;
  fsLevels: number;
  ssRoot: number;
  ssLevels: number;
  /** Second-stage accessed/dirty flag updates enabled. */
  ssade: boolean;
  /** IOTLB tag: did * 2^20 + pasid. */
  tag: number;
}

/** An IOTLB (or device-TLB) entry for one 4 KiB page. */
interface TlbEntry {
  pa: number;
  write: boolean;
  /** From a second-stage-only translation (PASID-based invalidations leave these alone). */
  ssOnly: boolean;
  /** The second-stage leaf's D bit was set by this walk (SSADE): writes may use the entry. */
  dirty: boolean;
}

export interface VtdHooks {
  /** A fault was recorded (the fault event interrupt). */
  fault?(): void;
  /** A page request descriptor was queued (the page request event interrupt). */
  pageRequest?(): void;
  /** A page group response descriptor went out to a device. */
  pageGroupResponse?(rid: number, pasidPresent: boolean, pasid: number, prgIndex: number, code: number): void;
}

export const NO_PASID = -1;
const PASID_SPAN = 2 ** 20;

export class VtdHardware {
  readonly features: VtdFeatures;
  readonly cap: bigint;
  readonly ecap: bigint;
  /** Reason of the last failed translation (0 = none). */
  lastFault = 0;
  /** Counters, for tests and benchmarks. */
  readonly stats = { walks: 0, iotlbHits: 0, devTlbHits: 0, descriptors: 0 };

  private rtaddr = 0n;
  private fsts = 0;
  private iqa = 0n;
  private iqh = 0;
  private iqt = 0;
  private iqercd = 0n;
  private pqa = 0n;
  private pqh = 0;
  private pqt = 0;
  private prs = 0;
  private fri = 0;
  private readonly frr: [bigint, bigint][];

  private readonly contextCache = new Map<number, ContextCacheEntry>();
  /** Key: sid * 2^20 + pasid. */
  private readonly pasidCache = new Map<number, PasidCacheEntry>();
  /** Key: tag (did * 2^20 + pasid) -> page number -> entry. */
  private readonly iotlb = new Map<number, Map<number, TlbEntry>>();
  /** Key: sid * 2^21 + (pasid + 1) -> page number -> entry. */
  private readonly devTlb = new Map<number, Map<number, TlbEntry>>();
  /** Scratch of the current walk (no allocation per translation). */
  private walkWrite = true;
  /** The walk sets second-stage A (and D for `walkIsWrite`) bits in the final leaf. */
  private walkSsade = false;
  private walkIsWrite = false;
  private readonly qiWords = new Uint32Array(QI_DESC_SIZE / 4);

  constructor(
    private readonly mem: PhysicalMemory,
    features: Partial<VtdFeatures> = {},
    readonly hooks: VtdHooks = {},
  ) {
    this.features = { ...DEFAULT_FEATURES, ...features };
    this.cap = capReg(this.features);
    this.ecap = ecapReg(this.features);
    this.frr = Array.from({ length: this.features.nfr }, () => [0n, 0n] as [bigint, bigint]);
  }

  // ---------------------------------------------------------------------------------------------
  // Registers

  readReg64(off: number): bigint {
    switch (off) {
      case DMAR_CAP_REG: return this.cap;
      case DMAR_ECAP_REG: return this.ecap;
      case DMAR_RTADDR_REG: return this.rtaddr;
      case DMAR_FSTS_REG: return BigInt(this.fsts | (this.fri << 8));
      case DMAR_IQH_REG: return BigInt(this.iqh * QI_DESC_SIZE);
      case DMAR_IQT_REG: return BigInt(this.iqt * QI_DESC_SIZE);
      case DMAR_IQA_REG: return this.iqa;
      case DMAR_IQERCD_REG: return this.iqercd;
      case DMAR_PQH_REG: return BigInt(this.pqh);
      case DMAR_PQT_REG: return BigInt(this.pqt);
      case DMAR_PQA_REG: return this.pqa;
      case DMAR_PRS_REG: return BigInt(this.prs);
      default: return 0n;
    }
  }

  writeReg64(off: number, v: bigint): void {
    switch (off) {
      case DMAR_RTADDR_REG:
        this.rtaddr = v;
        break;
      case DMAR_FSTS_REG: // RW1C
        this.fsts &= ~Number(v & 0xffn);
        break;
      case DMAR_IQA_REG:
        this.iqa = v;
        this.iqh = 0;
        this.iqt = 0;
        break;
      case DMAR_IQT_REG:
        this.iqt = Number((v >> 5n) & 0x3fffn);
        this.runQueue();
        break;
      case DMAR_PQA_REG:
        this.pqa = v;
        this.pqh = 0;
        this.pqt = 0;
        break;
      case DMAR_PQH_REG:
        this.pqh = Number(v & 0x7ffe0n);
        break;
      case DMAR_PRS_REG: // RW1C
        this.prs &= ~Number(v & 3n);
        break;
    }
  }

  get iqEntries(): number {
    return 2 ** Number(this.iqa & 7n) * (FRAME_SIZE / QI_DESC_SIZE);
  }

  private get prqBytes(): number {
    return 2 ** Number(this.pqa & 7n) * FRAME_SIZE;
  }

  /** Fault recording register `i`, decoded. */
  faultRecord(i: number): FaultRecord {
    const [lo, hi] = this.frr[i]!;
    return {
      addr: lo & ~0xfffn, sid: Number(hi & 0xffffn), pasidPresent: ((hi >> 31n) & 1n) === 1n, reason: Number((hi >> 32n) & 0xffn),
      pasid: Number((hi >> 40n) & 0xfffffn), read: ((hi >> 62n) & 1n) === 1n, f: ((hi >> 63n) & 1n) === 1n,
    };
  }

  /** Writes 1 to F of record `i` (clears it). */
  clearFaultRecord(i: number): void {
    this.frr[i] = [0n, 0n];
    if (this.frr.every(([, hi]) => hi >> 63n === 0n)) this.fsts &= ~FSTS_PPF;
  }

  // ---------------------------------------------------------------------------------------------
  // Translation

  /**
   * Translates one access of device `sid` (PASID or NO_PASID) at `iova`. Returns the physical
   * address, or -1 with `lastFault` set (and a fault recorded unless fault processing is disabled).
   */
  translate(sid: number, pasid: number, iova: number, write: boolean): number {
    const ctx = this.contextCache.get(sid) ?? this.fetchContext(sid);
    if (!ctx) return this.fail(sid, pasid, iova, write, false);
    let p = pasid;
    if (pasid === NO_PASID) p = ctx.ridPasid;
    else if (!ctx.paside) return this.fail(sid, pasid, iova, write, ctx.fpd, FR_SM_CTX_PASIDE_CLEAR);
    if (p >= ctx.pasidLimit) return this.fail(sid, pasid, iova, write, ctx.fpd, FR_SM_PASID_TOO_LARGE);
    const pe = this.pasidCache.get(sid * PASID_SPAN + p) ?? this.fetchPasid(sid, p, ctx);
    if (!pe) return this.fail(sid, pasid, iova, write, ctx.fpd);

    const page = Math.floor(iova / 4096);
    const offset = iova - page * 4096;
    let dev: Map<number, TlbEntry> | undefined;
    if (ctx.dte) {
      const key = sid * 2 * PASID_SPAN + pasid + 1;
      dev = this.devTlb.get(key);
      const hit = dev?.get(page);
      if (hit && (!write || (hit.write && (hit.dirty || !pe.ssade)))) {
        this.stats.devTlbHits++;
        return hit.pa + offset;
      }
      if (!dev) this.devTlb.set(key, (dev = new Map()));
    }
    let tlb = this.iotlb.get(pe.tag);
    const hit = tlb?.get(page);
    // A write through an entry cached before its D bit was set walks again to set it (SSADE).
    if (hit && !(write && hit.write && pe.ssade && !hit.dirty)) {
      if (write && !hit.write) return this.fail(sid, pasid, iova, write, pe.fpd, FR_SM_NO_WRITE);
      this.stats.iotlbHits++;
      if (dev) dev.set(page, hit);
      return hit.pa + offset;
    }
    this.stats.walks++;
    this.walkWrite = true;
    this.walkSsade = pe.ssade;
    this.walkIsWrite = write;
    let pa: number;
    switch (pe.pgtt) {
      case PGTT_FIRST_STAGE: pa = this.walkFs(pe.fsRoot, pe.fsLevels, iova, -1, 0); break;
      case PGTT_SECOND_STAGE: pa = this.walkSs(pe.ssRoot, pe.ssLevels, iova); break;
      case PGTT_NESTED: pa = this.walkFs(pe.fsRoot, pe.fsLevels, iova, pe.ssRoot, pe.ssLevels); break;
      default: pa = iova; // pass-through
    }
    if (pa < 0) return this.fail(sid, pasid, iova, write, pe.fpd);
    if (write && !this.walkWrite) return this.fail(sid, pasid, iova, write, pe.fpd, FR_SM_NO_WRITE);
    const entry: TlbEntry = { pa: pa - offset, write: this.walkWrite, ssOnly: pe.pgtt === PGTT_SECOND_STAGE, dirty: pe.ssade && write };
    if (!tlb) this.iotlb.set(pe.tag, (tlb = new Map()));
    tlb.set(page, entry);
    if (dev) dev.set(page, entry);
    return pa;
  }

  private fail(sid: number, pasid: number, iova: number, write: boolean, fpd: boolean, reason = this.lastFault): number {
    this.lastFault = reason;
    if (!fpd) this.recordFault(sid, pasid, iova, write, reason);
    return -1;
  }

  private recordFault(sid: number, pasid: number, iova: number, write: boolean, reason: number): void {
    const slot = this.frr[this.fri]!;
    if (slot[1] >> 63n === 1n) {
      this.fsts |= FSTS_PFO; // overflow: the record is lost
      return;
    }
    const lo = BigInt(Math.floor(iova / 4096)) << 12n;
    const pp = pasid !== NO_PASID;
    const hi = BigInt(sid) | (pp ? 1n << 31n : 0n) | (BigInt(reason) << 32n) | (BigInt(pp ? pasid : 0) << 40n) |
      (write ? 0n : 1n << 62n) | (1n << 63n);
    this.frr[this.fri] = [lo, hi];
    this.fri = (this.fri + 1) % this.frr.length;
    this.fsts |= FSTS_PPF;
    this.hooks.fault?.();
  }

  private fetchContext(sid: number): ContextCacheEntry | undefined {
    const m = this.mem;
    if ((this.rtaddr & RTADDR_SMT) === 0n) return this.faultWith(FR_SM_ROOT_NOT_PRESENT);
    const rt = Number(this.rtaddr & ~0xfffn);
    const bus = sid >>> 8;
    const devfn = sid & 0xff;
    const re = rt + bus * 16 + (devfn >= 0x80 ? 8 : 0);
    const rlo = m.readU32(re);
    if ((rlo & 1) === 0) return this.faultWith(FR_SM_ROOT_NOT_PRESENT);
    if ((rlo & ROOT_RSVD_LO) !== 0) return this.faultWith(FR_SM_ROOT_RSVD);
    const ce = entryAddr(rlo, m.readU32(re + 4)) + (devfn & 0x7f) * 32;
    const c0 = m.readU32(ce);
    if ((c0 & 1) === 0) return this.faultWith(FR_SM_CTX_NOT_PRESENT);
    const c2 = m.readU32(ce + 8);
    const reservedHigh = m.readU32(ce + 12) | m.readU32(ce + 16) | m.readU32(ce + 20) | m.readU32(ce + 24) | m.readU32(ce + 28);
    if ((c0 & CONTEXT_RSVD_Q0_LO) !== 0 || (c2 & CONTEXT_RSVD_Q1_LO) !== 0 || reservedHigh !== 0) return this.faultWith(FR_SM_CTX_RSVD);
    const pdts = (c0 >>> 9) & 7;
    const entry: ContextCacheEntry = {
      pasidDir: entryAddr(c0, m.readU32(ce + 4)), pasidLimit: 2 ** (pdts + 7) * 64, paside: (c0 & 8) !== 0, pre: (c0 & 16) !== 0,
      dte: (c0 & 4) !== 0, fpd: (c0 & 2) !== 0, ridPasid: c2 & 0xfffff,
    };
    this.contextCache.set(sid, entry);
    return entry;
  }

  private fetchPasid(sid: number, pasid: number, ctx: ContextCacheEntry): PasidCacheEntry | undefined {
    const m = this.mem;
    const de = ctx.pasidDir + Math.floor(pasid / 64) * 8;
    const d0 = m.readU32(de);
    if ((d0 & 1) === 0) return this.faultWith(FR_SM_PASID_DIR_NOT_PRESENT);
    const pe = entryAddr(d0, m.readU32(de + 4)) + (pasid % 64) * 64;
    const q0 = m.readU32(pe);
    if ((q0 & 1) === 0) return this.faultWith(FR_SM_PASID_NOT_PRESENT);
    const q0h = m.readU32(pe + 4);
    const q1 = m.readU32(pe + 8);
    const q2 = m.readU32(pe + 16);
    const q2h = m.readU32(pe + 20);
    if ((q0 & PASID_RSVD_Q0_LO) !== 0 || (q2 & PASID_RSVD_Q2_LO) !== 0) return this.faultWith(FR_SM_PASID_RSVD);
    const pgtt = (q0 >>> 6) & 7;
    const aw = (q0 >>> 2) & 7;
    const fspm = (q2 >>> 2) & 3;
    const usesSs = pgtt === PGTT_SECOND_STAGE || pgtt === PGTT_NESTED;
    const usesFs = pgtt === PGTT_FIRST_STAGE || pgtt === PGTT_NESTED;
    const badAw = usesSs && !(aw === 2 || (aw === 3 && (this.features.sagaw & 8) !== 0));
    const badFspm = usesFs && !(fspm === 0 || (fspm === 1 && this.features.fs5lp));
    if (pgtt < PGTT_FIRST_STAGE || pgtt > PGTT_PASS_THROUGH || badAw || badFspm) return this.faultWith(FR_SM_PASID_INVALID);
    const did = q1 & 0xffff;
    const entry: PasidCacheEntry = {
      did, pasid, pgtt, fpd: (q0 & 2) !== 0,
      fsRoot: entryAddr(q2, q2h), fsLevels: fspm === 1 ? 5 : 4,
      ssRoot: entryAddr(q0, q0h), ssLevels: aw === 3 ? 5 : 4, ssade: (q0 & 0x200) !== 0 && usesSs, tag: did * PASID_SPAN + pasid,
    };
    this.pasidCache.set(sid * PASID_SPAN + pasid, entry);
    return entry;
  }

  private faultWith(reason: number): undefined {
    this.lastFault = reason;
    return undefined;
  }

  /**
   * Second-stage walk of `addr` (an IOVA, or a GPA in nesting). Returns the HPA or -1. Clears
   * walkWrite when the mapping is read-only; `needRead` applies to table fetches of a nested walk.
   */
  private walkSs(root: number, levels: number, addr: number, final = true): number {
    if (addr >= 2 ** (12 + 9 * levels)) return this.faultNum(FR_SM_SS_BEYOND_MAX);
    const m = this.mem;
    let table = root;
    for (let level = levels; level >= 1; level--) {
      const e = table + levelIndex(addr, level) * 8;
      const lo = m.readU32(e);
      const hi = m.readU32(e + 4);
      if ((lo & (SS_R | SS_W)) === 0) return this.faultNum(FR_SM_SS_PERM);
      if ((hi & RSVD_HI_MASK) !== 0 || ((lo & SS_PS) !== 0 && level > 3)) return this.faultNum(FR_SM_SS_RSVD);
      if ((lo & SS_R) === 0) return this.faultNum(FR_SM_SS_PERM); // write-only is not a valid combination for DMA reads
      if ((lo & SS_W) === 0) this.walkWrite = false;
      const out = entryAddr(lo, hi);
      if (level === 1 || (lo & SS_PS) !== 0) {
        if (this.walkSsade) {
          const ad = SS_A | (final && this.walkIsWrite && this.walkWrite ? SS_D : 0);
          if ((lo & ad) !== ad) m.writeU32(e, (lo | ad) >>> 0);
        }
        return out + (addr % 2 ** levelShift(level));
      }
      table = out;
    }
    return -1;
  }

  /** First-stage walk; with ssLevels > 0 every table address and the output are GPAs translated through the second stage. */
  private walkFs(root: number, levels: number, iova: number, ssRoot: number, ssLevels: number): number {
    if (iova >= 2 ** (12 + 9 * levels - 1)) return this.faultNum(FR_SM_NON_CANONICAL);
    const m = this.mem;
    let table = root;
    for (let level = levels; level >= 1; level--) {
      let tpa = table;
      if (ssLevels > 0) {
        const saved = this.walkWrite;
        tpa = this.walkSs(ssRoot, ssLevels, table, false);
        this.walkWrite = saved; // table reads need read access only
        if (tpa < 0) return -1;
      }
      const e = tpa + levelIndex(iova, level) * 8;
      const lo = m.readU32(e);
      const hi = m.readU32(e + 4);
      if ((lo & 1) === 0) return this.faultNum(FR_SM_FS_NOT_PRESENT);
      if ((hi & RSVD_HI_MASK) !== 0 || ((lo & FS_PS) !== 0 && level > 3)) return this.faultNum(FR_SM_FS_RSVD);
      if ((lo & FS_US) === 0) return this.faultNum(FR_SM_US_CLEAR);
      if ((lo & FS_RW) === 0) this.walkWrite = false;
      const out = entryAddr(lo, hi);
      if (level === 1 || (lo & FS_PS) !== 0) {
        const gpa = out + (iova % 2 ** levelShift(level));
        if (ssLevels === 0) return gpa;
        return this.walkSs(ssRoot, ssLevels, gpa);
      }
      table = out;
    }
    return -1;
  }

  private faultNum(reason: number): number {
    this.lastFault = reason;
    return -1;
  }

  /** Whether `reason` is a translation fault a page request can resolve (not a configuration error). */
  static recoverable(reason: number): boolean {
    return reason === FR_SM_FS_NOT_PRESENT || reason === FR_SM_NO_WRITE || reason === FR_SM_NO_READ || reason === FR_SM_SS_PERM;
  }

  /** Context-cached PRE bit for `sid` (page requests enabled), fetching it if needed. */
  pageRequestsEnabled(sid: number): boolean {
    return (this.contextCache.get(sid) ?? this.fetchContext(sid))?.pre ?? false;
  }

  // ---------------------------------------------------------------------------------------------
  // Invalidation queue

  private runQueue(): void {
    if ((this.fsts & FSTS_IQE) !== 0) return; // stalled until software clears IQE
    const base = Number(this.iqa & ~0xfffn);
    const n = this.iqEntries;
    while (this.iqh !== this.iqt) {
      const at = base + this.iqh * QI_DESC_SIZE;
      for (let i = 0; i < 8; i++) this.qiWords[i] = this.mem.readU32(at + i * 4);
      const d = decodeQiWords(this.qiWords);
      if (!this.execute(d)) {
        this.fsts |= FSTS_IQE;
        this.iqercd = 1n; // IQEI 1: invalid descriptor type or reserved field
        return;
      }
      this.stats.descriptors++;
      this.iqh = (this.iqh + 1) % n;
    }
  }

  /** Executes one descriptor; false when it is not one this unit accepts (an IQE). */
  private execute(d: QiDescriptor): boolean {
    if (d.type === QI_IEC_TYPE) return true; // no interrupt remapping modelled: nothing cached
    if ('raw' in d) return false;
    switch (d.type) {
      case QI_CC_TYPE:
        if (d.gran === QI_CC_GRAN_DEVICE) this.contextCache.delete(d.sid);
        else this.contextCache.clear(); // global, and domain-selective (scalable-mode contexts carry no DID)
        return true;
      case QI_PC_TYPE:
        for (const [k, e] of this.pasidCache) {
          if (d.gran === QI_PC_ALL_PASIDS ? e.did === d.did : d.gran === QI_PC_PASID_SEL ? e.did === d.did && e.pasid === d.pasid : true) {
            this.pasidCache.delete(k);
          }
        }
        return d.gran === QI_PC_ALL_PASIDS || d.gran === QI_PC_PASID_SEL || d.gran === 3;
      case QI_IOTLB_TYPE:
        this.invalidateIotlb(d.gran, d.did, d.addr, d.am);
        return d.gran >= QI_IOTLB_GRAN_GLOBAL;
      case QI_EIOTLB_TYPE: {
        const tlb = this.iotlb.get(d.did * PASID_SPAN + d.pasid);
        if (tlb) {
          if (d.gran === QI_GRAN_PSI_PASID) {
            const first = Number(d.addr >> 12n);
            for (let p = first; p < first + 2 ** d.am; p++) if (tlb.get(p)?.ssOnly === false) tlb.delete(p);
          } else {
            for (const [p, e] of tlb) if (!e.ssOnly) tlb.delete(p);
          }
        }
        return d.gran === 2 || d.gran === QI_GRAN_PSI_PASID;
      }
      case QI_DIOTLB_TYPE:
        this.invalidateDevTlb(d.sid, NO_PASID, d.addr, d.size, false);
        return true;
      case QI_DEIOTLB_TYPE:
        this.invalidateDevTlb(d.sid, d.pasid, d.addr, d.size, d.global);
        return true;
      case QI_IWD_TYPE:
        if (d.sw) this.mem.writeU32(Number(d.statusAddr), d.statusData);
        return true;
      case QI_PGRP_RESP_TYPE:
        this.hooks.pageGroupResponse?.(d.rid, d.pasidPresent, d.pasid, d.prgIndex, d.code);
        return true;
      default:
        return false;
    }
  }

  /** What a global IOTLB invalidation does, without going through the queue (benchmarks). */
  dropIotlb(): void {
    this.iotlb.clear();
    this.devTlb.clear();
  }

  private invalidateIotlb(gran: number, did: number, addr: bigint, am: number): void {
    if (gran === QI_IOTLB_GRAN_GLOBAL) {
      this.iotlb.clear();
      return;
    }
    for (const [tag, tlb] of this.iotlb) {
      if (Math.floor(tag / PASID_SPAN) !== did) continue;
      if (gran === QI_IOTLB_GRAN_DOMAIN) {
        this.iotlb.delete(tag);
        continue;
      }
      // Page-selective (second-stage addresses): second-stage-only entries in the range; nested
      // entries are keyed by first-stage IOVA, so every one of them goes.
      const first = Number(addr >> 12n);
      for (const [p, e] of tlb) if (!e.ssOnly || (p >= first && p < first + 2 ** am)) tlb.delete(p);
    }
  }

  private invalidateDevTlb(sid: number, pasid: number, addr: bigint, size: boolean, global: boolean): void {
    const [start, len] = devTlbRange(addr, size);
    const first = Number(start >> 12n);
    const count = len === 0n ? Infinity : Number(len >> 12n);
    for (const [key, tlb] of this.devTlb) {
      if (Math.floor(key / (2 * PASID_SPAN)) !== sid) continue;
      const p = (key % (2 * PASID_SPAN)) - 1;
      if (!(p === pasid || (global && p !== NO_PASID))) continue;
      for (const page of tlb.keys()) if (page >= first && page - first < count) tlb.delete(page);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Page requests

  /**
   * A device's PCIe Page Request message: the unit queues a page request descriptor and raises the
   * page request event. Returns false (and sets PRO) when the queue is full.
   */
  pageRequest(d: PageRequestDescriptor): boolean {
    const size = this.prqBytes;
    const next = (this.pqt + PRQ_DESC_SIZE) % size;
    if (next === this.pqh || (this.prs & PRS_PRO) !== 0) {
      this.prs |= PRS_PRO;
      return false;
    }
    this.mem.write(Number(this.pqa & ~0xfffn) + this.pqt, encodePageRequest(d));
    this.pqt = next;
    this.prs |= PRS_PPR;
    this.hooks.pageRequest?.();
    return true;
  }

  get prqSize(): number {
    return this.prqBytes;
  }
}
