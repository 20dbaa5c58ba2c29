// The SMMUv3 model: registers, the stream table and configuration cache, the TLB, DMA
// translation with the architecture's faults, the command queue consumer and the event queue.
// Everything the hardware reads (STEs, CDs, translation tables, queues) is bytes in PhysicalMemory,
// in the architectural formats; a cached copy stays in use until the matching invalidation.
import type { PhysicalMemory } from '@viommu/core';
import { CD_SIZE, decodeCd } from '../formats/cd.js';
import {
  ATC_INV_SIZE_ALL,
  CMDQ_OP_ATC_INV, CMDQ_OP_CFGI_ALL, CMDQ_OP_CFGI_CD, CMDQ_OP_CFGI_CD_ALL, CMDQ_OP_CFGI_STE, CMDQ_OP_CMD_SYNC,
  CMDQ_OP_PREFETCH_ADDR, CMDQ_OP_PREFETCH_CFG, CMDQ_OP_PRI_RESP, CMDQ_OP_RESUME, CMDQ_OP_STALL_TERM,
  CMDQ_OP_TLBI_EL2_ALL, CMDQ_OP_TLBI_EL2_ASID, CMDQ_OP_TLBI_EL2_VA, CMDQ_OP_TLBI_NH_ALL, CMDQ_OP_TLBI_NH_ASID,
  CMDQ_OP_TLBI_NH_VA, CMDQ_OP_TLBI_NH_VAA, CMDQ_OP_TLBI_NSNH_ALL, CMDQ_OP_TLBI_S12_VMALL, CMDQ_OP_TLBI_S2_IPA,
  type Command,
} from '../formats/command.js';
import {
  EVT_CLASS_CD, EVT_CLASS_IN, EVT_CLASS_TT, EVT_ID_BAD_CD_CONFIG, EVT_ID_BAD_STE_CONFIG, EVT_ID_BAD_STREAMID_CONFIG,
  EVT_ID_BAD_SUBSTREAMID_CONFIG, EVT_ID_PERMISSION_FAULT, EVT_ID_STREAM_DISABLED_FAULT, EVT_ID_TRANSLATION_FAULT,
  EVT_SIZE, encodeEventWords, emptyEvent, type SmmuEvent,
} from '../formats/event.js';
import { STE_S1DSS_BYPASS, STE_S1DSS_TERMINATE, STE_SIZE, decodeSte } from '../formats/ste.js';
import { PERM_ALL, Walker, accessPerm, type TableFetch } from '../pgtable/walk.js';
import { STREAM_ABORT, STREAM_BYPASS, contextConfig, streamConfig, type ContextConfig, type StreamConfig } from './config.js';
import { CommandQueueConsumer, Q_OVERFLOW_FLAG, decodeQueueBase, queueFull } from './queue.js';
import {
  CERROR_ILL, CERROR_NONE, CR0_CMDQEN, CR0_EVTQEN, CR0_SMMUEN, DEFAULT_FEATURES, GBPA_ABORT, GBPA_UPDATE,
  GERROR_CMDQ_ERR, SMMU_AIDR, SMMU_CMDQ_BASE, SMMU_CMDQ_CONS, SMMU_CMDQ_PROD, SMMU_CR0, SMMU_CR0ACK, SMMU_CR1,
  SMMU_CR2, SMMU_EVTQ_BASE, SMMU_EVTQ_CONS, SMMU_EVTQ_PROD, SMMU_GBPA, SMMU_GERROR, SMMU_GERRORN, SMMU_IDR0,
  SMMU_IDR5, SMMU_IIDR, SMMU_IRQ_CTRL, SMMU_IRQ_CTRLACK, SMMU_STRTAB_BASE, SMMU_STRTAB_BASE_CFG, type SmmuFeatures,
  idRegisters,
} from './regs.js';
import { Tlb, type TlbEntry } from './tlb.js';

/** Transaction attributes: `access` bits of translate(). */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_PRIV = 2;
export const ACCESS_INSTR = 4;

/** The permission bit each `access` value needs (indexed by access & 7). */
const NEED: readonly number[] = Array.from({ length: 8 }, (_, a) => accessPerm((a & ACCESS_WRITE) !== 0, (a & ACCESS_PRIV) !== 0, (a & ACCESS_INSTR) !== 0));
const POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

/** No substream (SSV = 0). */
export const NO_SSID = -1;

/** What a translation did when it returned -1: the event ID, or 0 for a silent abort. */
export const FAULT_ABORT = 0;

export interface SmmuHooks {
  /** An event was written to the event queue (the EVTQ interrupt). */
  eventIrq?(): void;
  /** The command queue stopped with CERROR (the GERROR interrupt). */
  gerrorIrq?(): void;
  atcInvalidate?(sid: number, ssid: number, addr: number, size: number, ssv: boolean): void;
  priResponse?(sid: number, ssid: number, ssv: boolean, prgIndex: number, resp: number): void;
  resume?(sid: number, stag: number, resp: number): void;
}

export class DmaFault extends Error {
  readonly code = 'EFAULT';
  constructor(readonly eventId: number, readonly iova: number) {
    super(eventId === FAULT_ABORT ? `DMA aborted at 0x${iova.toString(16)}` : `DMA fault 0x${eventId.toString(16)} at 0x${iova.toString(16)}`);
  }
}

export class Smmu {
  readonly features: SmmuFeatures;
  readonly idr: Uint32Array;
  readonly tlb = new Tlb();
  readonly cmdq: CommandQueueConsumer;
  readonly hooks: SmmuHooks;

  // Registers.
  private cr0 = 0;
  private cr1 = 0;
  private cr2 = 0;
  private gbpa = 0;
  private irqCtrl = 0;
  private gerror = 0;
  private gerrorn = 0;
  private strtabLo = 0;
  private strtabHi = 0;
  private strtabCfg = 0;
  /** StreamIDs below this index the stream table (2^min(LOG2SIZE, SIDSIZE)). */
  private sidLimit = 1;
  private cmdqBaseLo = 0;
  private cmdqBaseHi = 0;
  private evtqBaseLo = 0;
  private evtqBaseHi = 0;
  private evtqAddr = 0;
  private evtqLog2 = 0;
  private evtqProd = 0;
  private evtqCons = 0;

  private readonly steCache = new Map<number, StreamConfig | null>();
  private readonly walker: Walker;
  private readonly steWords = new Uint32Array(16);
  private readonly cdWords = new Uint32Array(16);
  private readonly evtWords = new Uint32Array(8);
  private readonly evt: SmmuEvent = emptyEvent();

  /**
   * Of the last successful translate(): how many bytes from the returned PA stay translated
   * contiguously with the same permissions (to the end of the TLB entry; a 4 KiB page for bypass).
   */
  lastSpan = 0;
  /** Of the last translate() that returned -1: the event ID (FAULT_ABORT for silent aborts). */
  lastFault = FAULT_ABORT;
  /** Every event generated, recorded or not, for hosts that want to observe them. */
  eventsGenerated = 0;

  // Per-translation scratch, so the nested table fetch closure allocates nothing.
  private curStream!: StreamConfig;
  private curSid = 0;
  private curSsid = NO_SSID;
  private curAccess = 0;
  private curIova = 0;
  private curFetchClass = EVT_CLASS_TT;
  private fetchFaulted = false;
  private readonly s1Fetch: TableFetch;

  constructor(readonly mem: PhysicalMemory, features: Partial<SmmuFeatures> = {}, hooks: SmmuHooks = {}) {
    this.features = { ...DEFAULT_FEATURES, ...features };
    this.idr = idRegisters(this.features);
    this.hooks = hooks;
    this.walker = new Walker(mem);
    this.cmdq = new CommandQueueConsumer(mem);
    this.s1Fetch = (ipa) => {
      const pa = this.s2Translate(this.curStream, ipa, ACCESS_READ, this.curFetchClass);
      if (pa < 0) this.fetchFaulted = true;
      return pa;
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Registers

  readReg(off: number): number {
    switch (off) {
      case SMMU_IIDR:
        return this.features.iidr;
      case SMMU_AIDR:
        return this.features.aidr;
      case SMMU_CR0:
      case SMMU_CR0ACK:
        return this.cr0;
      case SMMU_CR1:
        return this.cr1;
      case SMMU_CR2:
        return this.cr2;
      case SMMU_GBPA:
        return this.gbpa;
      case SMMU_IRQ_CTRL:
      case SMMU_IRQ_CTRLACK:
        return this.irqCtrl;
      case SMMU_GERROR:
        return this.gerror;
      case SMMU_GERRORN:
        return this.gerrorn;
      case SMMU_STRTAB_BASE:
        return this.strtabLo;
      case SMMU_STRTAB_BASE + 4:
        return this.strtabHi;
      case SMMU_STRTAB_BASE_CFG:
        return this.strtabCfg;
      case SMMU_CMDQ_BASE:
        return this.cmdqBaseLo;
      case SMMU_CMDQ_BASE + 4:
        return this.cmdqBaseHi;
      case SMMU_CMDQ_PROD:
        return this.cmdq.prod;
      case SMMU_CMDQ_CONS:
        return this.cmdq.cons;
      case SMMU_EVTQ_BASE:
        return this.evtqBaseLo;
      case SMMU_EVTQ_BASE + 4:
        return this.evtqBaseHi;
      case SMMU_EVTQ_PROD:
        return this.evtqProd;
      case SMMU_EVTQ_CONS:
        return this.evtqCons;
      default:
        if (off >= SMMU_IDR0 && off <= SMMU_IDR5) return this.idr[off >> 2]!;
        return 0;
    }
  }

  writeReg(off: number, value: number): void {
    value >>>= 0;
    switch (off) {
      case SMMU_CR0: {
        this.cr0 = value & 0x1f;
        this.cmdq.enabled = (value & CR0_CMDQEN) !== 0;
        if (this.cmdq.enabled) this.consumeCommands();
        return;
      }
      case SMMU_CR1:
        this.cr1 = value;
        return;
      case SMMU_CR2:
        this.cr2 = value;
        return;
      case SMMU_GBPA:
        this.gbpa = (value & ~GBPA_UPDATE) >>> 0; // the update completes at once
        return;
      case SMMU_IRQ_CTRL:
        this.irqCtrl = value & 7;
        return;
      case SMMU_GERRORN: {
        this.gerrorn = value;
        // Acknowledging CMDQ_ERR restarts the command queue at the entry that failed.
        if (((this.gerror ^ this.gerrorn) & GERROR_CMDQ_ERR) === 0 && this.cmdq.halted) {
          this.cmdq.acknowledge();
          this.consumeCommands();
        }
        return;
      }
      case SMMU_STRTAB_BASE:
        this.strtabLo = value;
        return;
      case SMMU_STRTAB_BASE + 4:
        this.strtabHi = value;
        return;
      case SMMU_STRTAB_BASE_CFG:
        this.strtabCfg = value;
        this.sidLimit = 2 ** Math.min(value & 0x3f, this.features.sidBits);
        return;
      case SMMU_CMDQ_BASE:
      case SMMU_CMDQ_BASE + 4: {
        if (off === SMMU_CMDQ_BASE) this.cmdqBaseLo = value;
        else this.cmdqBaseHi = value;
        const q = decodeQueueBase(this.cmdqBaseLo, this.cmdqBaseHi);
        this.cmdq.addr = q.addr;
        this.cmdq.log2size = Math.min(q.log2size, this.features.cmdqs);
        return;
      }
      case SMMU_CMDQ_PROD:
        this.cmdq.prod = value;
        this.consumeCommands();
        return;
      case SMMU_CMDQ_CONS:
        this.cmdq.cons = value;
        return;
      case SMMU_EVTQ_BASE:
      case SMMU_EVTQ_BASE + 4: {
        if (off === SMMU_EVTQ_BASE) this.evtqBaseLo = value;
        else this.evtqBaseHi = value;
        const q = decodeQueueBase(this.evtqBaseLo, this.evtqBaseHi);
        this.evtqAddr = q.addr;
        this.evtqLog2 = Math.min(q.log2size, this.features.evtqs);
        return;
      }
      case SMMU_EVTQ_PROD:
        this.evtqProd = value;
        return;
      case SMMU_EVTQ_CONS:
        this.evtqCons = value;
        return;
      default:
        return;
    }
  }

  /** Writes a 64-bit register as two halves (the way a driver's writeq lands). */
  writeReg64(off: number, value: number): void {
    this.writeReg(off, value >>> 0);
    this.writeReg(off + 4, Math.floor(value / 0x1_0000_0000) >>> 0);
  }

  // ---------------------------------------------------------------------------------------------
  // Configuration

  private get strtabBase(): number {
    return (this.strtabHi & 0xfffff) * 0x1_0000_0000 + ((this.strtabLo & ~0x3f) >>> 0);
  }

  /** The stream's configuration from the cache or the stream table; null means C_BAD_STE. */
  private stream(sid: number): StreamConfig | null {
    let cfg = this.steCache.get(sid);
    if (cfg !== undefined) return cfg;
    const base = this.strtabBase + sid * STE_SIZE;
    const w = this.steWords;
    for (let i = 0; i < 16; i++) w[i] = this.mem.readU32(base + i * 4);
    cfg = streamConfig(decodeSte(w), this.features) ?? null;
    this.steCache.set(sid, cfg);
    return cfg;
  }

  /**
   * The context descriptor for (sid, ssid); -1 in `ssid` means CD 0. Returns null after having
   * raised the fault (C_BAD_CD, C_BAD_SUBSTREAMID or a stage-2 fault on the fetch).
   */
  private context(s: StreamConfig, sid: number, ssid: number): ContextConfig | null {
    const index = ssid < 0 ? 0 : ssid;
    const hit = s.cds.get(index);
    if (hit) return hit;
    let addr: number;
    if (s.s1fmt === 0) {
      addr = s.cdPtr + index * CD_SIZE;
    } else {
      const split = s.s1fmt === 1 ? 6 : 10; // leaf tables of 4 KiB (64 CDs) or 64 KiB (1024 CDs)
      let l1 = s.cdPtr + Math.floor(index / 2 ** split) * 8;
      if (s.s2) {
        l1 = this.s2Translate(s, l1, ACCESS_READ, EVT_CLASS_CD);
        if (l1 < 0) return null;
      }
      const lo = this.mem.readU32(l1);
      const hi = this.mem.readU32(l1 + 4);
      if ((lo & 1) === 0) return this.fault(EVT_ID_BAD_SUBSTREAMID_CONFIG, true, false, 0, 0);
      addr = (hi & 0xfffff) * 0x1_0000_0000 + ((lo & ~0xfff) >>> 0) + (index % 2 ** split) * CD_SIZE;
    }
    if (s.s2) {
      addr = this.s2Translate(s, addr, ACCESS_READ, EVT_CLASS_CD);
      if (addr < 0) return null;
    }
    const w = this.cdWords;
    for (let i = 0; i < 16; i++) w[i] = this.mem.readU32(addr + i * 4);
    const cfg = contextConfig(decodeCd(w), this.features);
    if (!cfg) return this.fault(EVT_ID_BAD_CD_CONFIG, true, false, 0, 0);
    s.cds.set(index, cfg);
    return cfg;
  }

  // ---------------------------------------------------------------------------------------------
  // Translation

  /**
   * Translates one transaction. Returns the physical address, or -1 with `lastFault` set and the
   * event (if any) written to the event queue.
   */
  translate(sid: number, ssid: number, iova: number, access: number): number {
    this.curSid = sid;
    this.curSsid = ssid;
    this.curAccess = access;
    this.curIova = iova;
    if ((this.cr0 & CR0_SMMUEN) === 0) {
      if (this.gbpa & GBPA_ABORT) return this.abort();
      this.lastSpan = 4096 - (iova % 4096);
      return iova;
    }
    if (sid >= this.sidLimit) {
      return this.fail(EVT_ID_BAD_STREAMID_CONFIG, true, false, 0, 0);
    }
    const s = this.stream(sid);
    if (!s) return this.fail(EVT_ID_BAD_STE_CONFIG, true, false, 0, 0);
    if (s.mode === STREAM_ABORT) return this.abort();
    if (s.mode === STREAM_BYPASS) {
      this.lastSpan = 4096 - (iova % 4096);
      return iova;
    }
    this.curStream = s;
    const need = NEED[access & 7]!;

    if (!s.s1) {
      if (ssid !== NO_SSID) return this.fail(EVT_ID_BAD_SUBSTREAMID_CONFIG, true, false, 0, 0);
      return this.s2Translate(s, iova, access, EVT_CLASS_IN);
    }

    let cdIndex = ssid;
    if (ssid !== NO_SSID) {
      if (s.s1CdMax === 0 || ssid >= POW2[s.s1CdMax]!) return this.fail(EVT_ID_BAD_SUBSTREAMID_CONFIG, true, false, 0, 0);
    } else if (s.s1CdMax !== 0) {
      if (s.s1dss === STE_S1DSS_TERMINATE) return this.fail(EVT_ID_STREAM_DISABLED_FAULT, true, false, 0, 0);
      if (s.s1dss === STE_S1DSS_BYPASS) return s.s2 ? this.s2Translate(s, iova, access, EVT_CLASS_IN) : iova;
      cdIndex = 0;
    }
    const c = this.context(s, sid, cdIndex);
    if (!c) return -1;

    const hit = this.tlb.lookupS1(s.vmid, c.asid, iova);
    if (hit) {
      if ((hit.s1perm & need) === 0) return this.fail(EVT_ID_PERMISSION_FAULT, c.record, false, 0, 0);
      if ((hit.s2perm & need) === 0) {
        return this.fail(EVT_ID_PERMISSION_FAULT, s.s2r, true, EVT_CLASS_IN, hit.ipa + (iova % POW2[hit.shift]!));
      }
      const size = POW2[hit.shift]!;
      const off = iova % size;
      this.lastSpan = size - off;
      return hit.out + off;
    }

    // Stage 1 walk; with nesting every descriptor fetch goes through stage 2.
    if (c.epd0) return this.fail(EVT_ID_TRANSLATION_FAULT, c.record, false, 0, 0);
    this.curFetchClass = EVT_CLASS_TT;
    this.fetchFaulted = false;
    const w = this.walker;
    if (!w.walk(c.s1params, 1, iova, s.s2 ? this.s1Fetch : null)) {
      if (this.fetchFaulted) return -1; // the stage-2 fault on the table fetch was raised already
      return this.fail(w.fault.id, c.record, false, 0, 0);
    }
    const ipa = w.out;
    const s1shift = w.leafShift;
    const s1perm = w.perm;
    const global = w.global;
    if ((s1perm & need) === 0) return this.fail(EVT_ID_PERMISSION_FAULT, c.record, false, 0, 0);
    let pa = ipa;
    let shift = s1shift;
    let s2perm = PERM_ALL;
    if (s.s2) {
      pa = this.s2Translate(s, ipa, access, EVT_CLASS_IN);
      if (pa < 0) return -1;
      s2perm = this.lastS2Perm;
      shift = Math.min(s1shift, this.lastS2Shift);
    }
    const size = POW2[shift]!;
    const entry: TlbEntry = {
      out: pa - (iova % size),
      ipa: ipa - (iova % size),
      shift,
      s1perm,
      s2perm,
      global,
    };
    this.tlb.insertS1(s.vmid, c.asid, iova, entry);
    this.lastSpan = size - (iova % size);
    return pa;
  }

  private lastS2Perm = 0;
  private lastS2Shift = 0;

  /**
   * Stage-2 translation of `ipa` through the S2 TLB or a walk, checking the access. Used for the
   * final IPA (class IN), CD fetches (class CD) and stage-1 table fetches (class TT).
   */
  private s2Translate(s: StreamConfig, ipa: number, access: number, cls: number): number {
    const need = NEED[access & 7]!;
    const hit = this.tlb.lookupS2(s.vmid, ipa);
    let out: number;
    if (hit) {
      this.lastS2Perm = hit.s2perm;
      this.lastS2Shift = hit.shift;
      out = hit.out + (ipa % POW2[hit.shift]!);
    } else {
      const w = this.walker;
      if (!w.walk(s.s2params, 2, ipa, null)) return this.fail(w.fault.id, s.s2r, true, cls, ipa);
      this.lastS2Perm = w.perm;
      this.lastS2Shift = w.leafShift;
      out = w.out;
      const size = POW2[w.leafShift]!;
      this.tlb.insertS2(s.vmid, ipa, { out: out - (ipa % size), ipa: ipa - (ipa % size), shift: w.leafShift, s1perm: PERM_ALL, s2perm: w.perm, global: true });
    }
    if ((this.lastS2Perm & need) === 0) return this.fail(EVT_ID_PERMISSION_FAULT, s.s2r, true, cls, ipa);
    this.lastSpan = POW2[this.lastS2Shift]! - (ipa % POW2[this.lastS2Shift]!);
    return out;
  }

  private abort(): number {
    this.lastFault = FAULT_ABORT;
    return -1;
  }

  private fail(id: number, record: boolean, s2: boolean, cls: number, ipa: number): number {
    this.raise(id, record, s2, cls, ipa);
    return -1;
  }

  private fault(id: number, record: boolean, s2: boolean, cls: number, ipa: number): null {
    this.raise(id, record, s2, cls, ipa);
    return null;
  }

  private raise(id: number, record: boolean, s2: boolean, cls: number, ipa: number): void {
    this.lastFault = id;
    this.eventsGenerated++;
    if (!record) return;
    const e = this.evt;
    e.id = id;
    e.ssv = this.curSsid !== NO_SSID;
    e.ssid = this.curSsid === NO_SSID ? 0 : this.curSsid;
    e.sid = this.curSid;
    e.stag = 0;
    e.stall = false;
    e.pnu = (this.curAccess & ACCESS_PRIV) !== 0;
    e.ind = (this.curAccess & ACCESS_INSTR) !== 0;
    // A fault on a table or CD fetch is a read of that structure, whatever the transaction was.
    e.rnw = s2 && cls !== EVT_CLASS_IN ? true : (this.curAccess & ACCESS_WRITE) === 0;
    e.s2 = s2;
    e.class = s2 ? cls : 0;
    e.ttRead = s2 && cls !== EVT_CLASS_IN;
    e.inputAddr = this.curIova;
    e.addr3 = s2 ? ipa : 0;
    this.pushEvent(e);
  }

  /** Writes an event record to the event queue (dropping it and flagging overflow when full). */
  pushEvent(e: SmmuEvent): boolean {
    if ((this.cr0 & CR0_EVTQEN) === 0 || this.evtqAddr === 0) return false;
    const log2 = this.evtqLog2;
    if (queueFull(this.evtqProd, this.evtqCons, log2)) {
      // Overflow: toggle PROD.OVFLG once until software acknowledges via CONS.OVACKFLG.
      if ((this.evtqProd & Q_OVERFLOW_FLAG) === (this.evtqCons & Q_OVERFLOW_FLAG)) this.evtqProd = (this.evtqProd ^ Q_OVERFLOW_FLAG) >>> 0;
      return false;
    }
    const w = encodeEventWords(e, this.evtWords);
    const addr = this.evtqAddr + (this.evtqProd & ((1 << log2) - 1)) * EVT_SIZE;
    for (let i = 0; i < 8; i++) this.mem.writeU32(addr + i * 4, w[i]!);
    const wrapMask = (2 << log2) - 1;
    this.evtqProd = ((this.evtqProd & Q_OVERFLOW_FLAG) | ((this.evtqProd + 1) & wrapMask)) >>> 0;
    this.hooks.eventIrq?.();
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // DMA

  /** A device read of `into.length` bytes at `iova`; throws DmaFault. */
  dmaRead(sid: number, ssid: number, iova: number, into: Uint8Array, access = ACCESS_READ): Uint8Array {
    let pos = 0;
    while (pos < into.length) {
      const va = iova + pos;
      const pa = this.translate(sid, ssid, va, access & ~ACCESS_WRITE);
      if (pa < 0) throw new DmaFault(this.lastFault, va);
      const n = Math.min(4096 - (va % 4096), into.length - pos);
      this.mem.read(pa, into.subarray(pos, pos + n));
      pos += n;
    }
    return into;
  }

  /** A device write of `bytes` at `iova`; throws DmaFault (bytes before the fault are written). */
  dmaWrite(sid: number, ssid: number, iova: number, bytes: Uint8Array, access = ACCESS_WRITE): void {
    let pos = 0;
    while (pos < bytes.length) {
      const va = iova + pos;
      const pa = this.translate(sid, ssid, va, access | ACCESS_WRITE);
      if (pa < 0) throw new DmaFault(this.lastFault, va);
      const n = Math.min(4096 - (va % 4096), bytes.length - pos);
      this.mem.write(pa, bytes.subarray(pos, pos + n));
      pos += n;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  private consumeCommands(): void {
    if ((this.cr0 & CR0_CMDQEN) === 0) return;
    const err = this.cmdq.consume(this.executeCommand);
    if (err !== CERROR_NONE) {
      this.gerror = (this.gerror ^ GERROR_CMDQ_ERR) >>> 0;
      this.hooks.gerrorIrq?.();
    }
  }

  /** Executes one decoded command (for any queue); returns 0 or CERROR_ILL. */
  readonly executeCommand = (c: Command): number => {
    const f = this.features;
    switch (c.opcode) {
      case CMDQ_OP_PREFETCH_CFG:
      case CMDQ_OP_PREFETCH_ADDR:
        return CERROR_NONE; // a hint; nothing to prefetch into beyond what a miss fetches
      case CMDQ_OP_CFGI_STE:
        this.invalidateSte(c.sid);
        return CERROR_NONE;
      case CMDQ_OP_CFGI_ALL: {
        if (c.range >= 31) {
          this.steCache.clear();
          return CERROR_NONE;
        }
        const n = 2 ** (c.range + 1);
        const first = Math.floor(c.sid / n) * n;
        for (let sid = first; sid < first + n; sid++) this.invalidateSte(sid);
        return CERROR_NONE;
      }
      case CMDQ_OP_CFGI_CD:
        if (c.ssid >= 2 ** f.ssidBits) return CERROR_ILL;
        this.steCache.get(c.sid)?.cds.delete(c.ssid);
        return CERROR_NONE;
      case CMDQ_OP_CFGI_CD_ALL:
        this.invalidateCds(c.sid);
        return CERROR_NONE;
      case CMDQ_OP_TLBI_NH_ALL:
        this.tlb.invalidateVmidS1(c.vmid);
        return CERROR_NONE;
      case CMDQ_OP_TLBI_NH_ASID:
        this.tlb.invalidateAsid(c.vmid, c.asid);
        return CERROR_NONE;
      case CMDQ_OP_TLBI_NH_VA:
      case CMDQ_OP_TLBI_NH_VAA:
      case CMDQ_OP_TLBI_S2_IPA: {
        const length = this.tlbiLength(c);
        if (length < 0) return CERROR_ILL;
        if (c.opcode === CMDQ_OP_TLBI_NH_VA) this.tlb.invalidateVa(c.vmid, c.asid, c.addr, length);
        else if (c.opcode === CMDQ_OP_TLBI_NH_VAA) this.tlb.invalidateVaa(c.vmid, c.addr, length);
        else this.tlb.invalidateIpa(c.vmid, c.addr, length);
        return CERROR_NONE;
      }
      case CMDQ_OP_TLBI_S12_VMALL:
        this.tlb.invalidateVmid(c.vmid);
        return CERROR_NONE;
      case CMDQ_OP_TLBI_NSNH_ALL:
        this.tlb.invalidateAll();
        return CERROR_NONE;
      case CMDQ_OP_TLBI_EL2_ALL:
      case CMDQ_OP_TLBI_EL2_ASID:
      case CMDQ_OP_TLBI_EL2_VA:
        return CERROR_ILL; // EL2 TLBIs are illegal without IDR0.HYP
      case CMDQ_OP_ATC_INV:
        if (!f.ats) return CERROR_ILL;
        if (c.size > ATC_INV_SIZE_ALL) return CERROR_ILL;
        this.hooks.atcInvalidate?.(c.sid, c.ssid, c.addr, c.size, c.ssv);
        return CERROR_NONE;
      case CMDQ_OP_PRI_RESP:
        if (!f.pri || c.resp === 3) return CERROR_ILL;
        this.hooks.priResponse?.(c.sid, c.ssid, c.ssv, c.prgIndex, c.resp);
        return CERROR_NONE;
      case CMDQ_OP_RESUME:
      case CMDQ_OP_STALL_TERM:
        if (f.stallModel === 1) return CERROR_ILL; // no stall support, nothing to resume
        if (c.opcode === CMDQ_OP_RESUME && c.resp === 3) return CERROR_ILL;
        this.hooks.resume?.(c.sid, c.stag, c.resp);
        return CERROR_NONE;
      case CMDQ_OP_CMD_SYNC:
        if (c.cs === 3) return CERROR_ILL;
        // Everything before it has completed (this model executes in order, at once).
        return CERROR_NONE;
      default:
        return CERROR_ILL;
    }
  };

  /** The byte length a TLBI by address covers: one granule-agnostic page, or a RIL range. -1 if illegal. */
  private tlbiLength(c: Command): number {
    if (c.tg === 0) return 1; // a single address: every entry containing it
    if (!this.features.ril) return -1;
    const granule = c.tg === 1 ? 12 : c.tg === 2 ? 14 : 16;
    return (c.num + 1) * 2 ** c.scale * 2 ** granule;
  }

  /** CFGI_STE: the STE and, cached under it, its CDs. */
  private invalidateSte(sid: number): void {
    this.steCache.delete(sid);
  }

  private invalidateCds(sid: number): void {
    this.steCache.get(sid)?.cds.clear();
  }

  /** Number of configuration entries cached (STEs + CDs). */
  get configCacheSize(): number {
    let n = 0;
    for (const s of this.steCache.values()) n += 1 + (s ? s.cds.size : 0);
    return n;
  }
}
