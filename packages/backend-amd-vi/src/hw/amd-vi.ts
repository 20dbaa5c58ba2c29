// The AMD-Vi hardware model: device table, command buffer, event and PPR logs in physical memory,
// translation through the DTE's host (v1) table and/or its GCR3 table and guest (v2) tables, and
// the caches that make a missing invalidation visible:
//   - DTE cache, per DeviceID                       (INVALIDATE_DEVTAB_ENTRY, INVALIDATE_IOMMU_ALL)
//   - IOTLB, per (DomainID, host | PASID), per page (INVALIDATE_IOMMU_PAGES, INVALIDATE_IOMMU_ALL)
//   - device IOTLB (ATS), per (DeviceID, host | PASID), for DTEs with I=1 (INVALIDATE_IOTLB_PAGES)
// In nesting, every guest address touched (GCR3 levels, guest table levels, the output) goes through
// the host table of the same DTE. Permissions are intersected along both walks.
import type { PhysicalMemory } from '@viommu/core';
import {
  CMD_COMPL_WAIT, CMD_COMPLETE_PPR, CMD_INV_ALL, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES, CMD_INV_IRT, CMD_SIZE, invRangeWords,
} from '../formats/commands.js';
import { DTE_SIZE } from '../formats/dte.js';
import {
  EVENT_FLAG_GN, EVENT_FLAG_PE, EVENT_FLAG_PR, EVENT_FLAG_RW, EVENT_ILLEGAL_COMMAND_ERROR, EVENT_INVALID_DEVICE_REQUEST, EVENT_IO_PAGE_FAULT,
  LOG_ENTRY_SIZE, PPR_TYPE_PAGE_SERVICE_REQUEST, type EventEntry, encodePpr, eventWords,
} from '../formats/logs.js';
import { PERM_R, PERM_W, V1_HI_IR, V1_HI_IW, V1_NEXT_LEVEL_SHIFT, V2_PS, V2_RW, entryAddr } from '../pgtable/table.js';
import {
  type AmdViFeatures, DEFAULT_FEATURES, MMIO_CMD_BUF_OFFSET, MMIO_CMD_HEAD_OFFSET, MMIO_CMD_TAIL_OFFSET, MMIO_CONTROL_OFFSET, MMIO_DEV_TABLE_OFFSET,
  MMIO_EVT_BUF_OFFSET, MMIO_EVT_HEAD_OFFSET, MMIO_EVT_TAIL_OFFSET, MMIO_EXT_FEATURES, MMIO_EXT_FEATURES2, MMIO_PPR_HEAD_OFFSET, MMIO_PPR_LOG_OFFSET,
  MMIO_PPR_TAIL_OFFSET, MMIO_STATUS_OFFSET, STATUS_COMWAIT_INT, STATUS_EVT_INT, STATUS_EVT_OVERFLOW, STATUS_PPR_INT, STATUS_PPR_OVERFLOW,
  featureRegisters,
} from './regs.js';

/** Request without PASID. */
export const NO_PASID = -1;

/** The DTE fields the walker needs, decoded once per DTE-cache fill (numbers only). */
interface CachedDte {
  v: boolean;
  tv: boolean;
  mode: number;
  hostRoot: number;
  giov: boolean;
  gv: boolean;
  glx: number;
  gcr3: number;
  /** DTE IR/IW as PERM_* bits (used when Mode = 0). */
  perm: number;
  domainId: number;
  ats: boolean;
  sa: boolean;
  gpm: number;
  ppr: boolean;
}

const TWO32 = 2 ** 32;
const TAG_SPAN = 2 ** 21;
/** Page numbers key a cache entry; the value packs output frame * 4 + PERM bits. */
type PageCache = Map<number, number>;

export interface HwCallbacks {
  /** Entries were written to the event log. */
  event?(): void;
  /** Entries were written to the PPR log. */
  ppr?(): void;
  /** COMPLETE_PPR_REQUEST reached the device. */
  pprComplete?(devId: number, pasid: number, gn: boolean, tag: number, status: number): void;
}

export class AmdViHardware {
  readonly features: AmdViFeatures;
  readonly efr: bigint;
  readonly efr2: bigint;
  /** Why the last translate() failed (event code name). */
  lastFault = '';
  /** Counters (tests and benchmarks). */
  readonly stats = { walks: 0, commands: 0, irtInvalidations: 0 };

  private devTable = 0;
  private devTableEntries = 0;
  private cmdBase = 0;
  private cmdSize = 0;
  private cmdHead = 0;
  private cmdTail = 0;
  private evtBase = 0;
  private evtSize = 0;
  private evtHead = 0;
  private evtTail = 0;
  private pprBase = 0;
  private pprSize = 0;
  private pprHead = 0;
  private pprTail = 0;
  private status = 0;
  private control = 0n;

  private readonly dteCache = new Map<number, CachedDte>();
  private readonly iotlb = new Map<number, PageCache>();
  private readonly atc = new Map<number, PageCache>();
  private readonly words = new Uint32Array(4);
  private readonly range = { first: 0, last: 0, all: false };
  private readonly eventBuf = new Uint32Array(4);
  // Walk outputs (no allocation per translation).
  private walkPa = 0;
  private walkPerm = 0;
  private walkFlags = 0;

  constructor(
    readonly mem: PhysicalMemory,
    features: Partial<AmdViFeatures> = {},
    private readonly cb: HwCallbacks = {},
  ) {
    this.features = { ...DEFAULT_FEATURES, ...features };
    ({ efr: this.efr, efr2: this.efr2 } = featureRegisters(this.features));
  }

  // ---------------------------------------------------------------------------------------------
  // MMIO

  readReg64(off: number): bigint {
    switch (off) {
      case MMIO_EXT_FEATURES: return this.efr;
      case MMIO_EXT_FEATURES2: return this.efr2;
      case MMIO_CONTROL_OFFSET: return this.control;
      case MMIO_CMD_HEAD_OFFSET: return BigInt(this.cmdHead);
      case MMIO_CMD_TAIL_OFFSET: return BigInt(this.cmdTail);
      case MMIO_EVT_HEAD_OFFSET: return BigInt(this.evtHead);
      case MMIO_EVT_TAIL_OFFSET: return BigInt(this.evtTail);
      case MMIO_PPR_HEAD_OFFSET: return BigInt(this.pprHead);
      case MMIO_PPR_TAIL_OFFSET: return BigInt(this.pprTail);
      case MMIO_STATUS_OFFSET: return BigInt(this.status);
      default: return 0n;
    }
  }

  writeReg64(off: number, value: bigint): void {
    const base = Number(value & 0x000f_ffff_ffff_f000n);
    const len = 2 ** Number((value >> 56n) & 0xfn) * LOG_ENTRY_SIZE;
    switch (off) {
      case MMIO_DEV_TABLE_OFFSET:
        this.devTable = base;
        this.devTableEntries = ((Number(value & 0x1ffn) + 1) * 4096) / DTE_SIZE;
        break;
      case MMIO_CMD_BUF_OFFSET: this.cmdBase = base; this.cmdSize = len; this.cmdHead = this.cmdTail = 0; break;
      case MMIO_EVT_BUF_OFFSET: this.evtBase = base; this.evtSize = len; this.evtHead = this.evtTail = 0; break;
      case MMIO_PPR_LOG_OFFSET: this.pprBase = base; this.pprSize = len; this.pprHead = this.pprTail = 0; break;
      case MMIO_CONTROL_OFFSET: this.control = value; break;
      case MMIO_CMD_HEAD_OFFSET: this.cmdHead = Number(value & 0x7fff0n); break;
      case MMIO_EVT_HEAD_OFFSET: this.evtHead = Number(value & 0x7fff0n); break;
      case MMIO_PPR_HEAD_OFFSET: this.pprHead = Number(value & 0x7fff0n); break;
      case MMIO_STATUS_OFFSET: this.status &= ~Number(value & 0xffffn); break; // write 1 to clear
      case MMIO_CMD_TAIL_OFFSET:
        this.cmdTail = Number(value & 0x7fff0n) % this.cmdSize;
        this.runCommands();
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Command processor: runs from head to tail; an illegal command logs ILLEGAL_COMMAND_ERROR and
  // stops with head on it (the driver must skip it).

  private runCommands(): void {
    const w = this.words;
    while (this.cmdHead !== this.cmdTail) {
      const at = this.cmdBase + this.cmdHead;
      for (let i = 0; i < 4; i++) w[i] = this.mem.readU32(at + i * 4);
      if (!this.execute(w)) {
        this.logEvent({ code: EVENT_ILLEGAL_COMMAND_ERROR, devId: 0, pasid: 0, domainId: 0, flags: 0, address: BigInt(at) });
        return;
      }
      this.stats.commands++;
      this.cmdHead = (this.cmdHead + CMD_SIZE) % this.cmdSize;
    }
  }

  private execute(w: Uint32Array): boolean {
    const op = w[1]! >>> 28;
    switch (op) {
      case CMD_COMPL_WAIT: {
        const s = (w[0]! & 1) !== 0;
        const storeAddr = (w[1]! & 0xfffff) * TWO32 + ((w[0]! & ~7) >>> 0);
        if (s) {
          if ((w[0]! & 0x4) === 0 && this.mem.runAt(storeAddr) === undefined) return false;
          this.mem.writeU32(storeAddr, w[2]!);
          this.mem.writeU32(storeAddr + 4, w[3]!);
        }
        if ((w[0]! & 2) !== 0) this.status |= STATUS_COMWAIT_INT;
        return true;
      }
      case CMD_INV_DEV_ENTRY:
        this.dteCache.delete(w[0]! & 0xffff);
        return true;
      case CMD_INV_IOMMU_PAGES: {
        const gn = (w[2]! & 4) !== 0;
        const domainId = w[1]! & 0xffff;
        const r = this.range;
        r.all = invRangeWords(w[2]!, w[3]!, r);
        if (gn) {
          dropRange(this.iotlb, domainId * TAG_SPAN + (w[0]! & 0xfffff) + 1, r.first, r.last, r.all);
        } else {
          // Host (GPA) pages: the host tag's range, and every guest translation of the domain, as
          // those were built on the host table.
          dropRange(this.iotlb, domainId * TAG_SPAN, r.first, r.last, r.all);
          for (const key of this.iotlb.keys()) if (Math.floor(key / TAG_SPAN) === domainId && key % TAG_SPAN !== 0) this.iotlb.delete(key);
        }
        return true;
      }
      case CMD_INV_IOTLB_PAGES: {
        const gn = (w[2]! & 4) !== 0;
        const devId = w[0]! & 0xffff;
        const pasid = (((w[0]! >>> 16) & 0xff) << 8) | ((w[1]! >>> 16) & 0xff);
        const r = this.range;
        r.all = invRangeWords(w[2]!, w[3]!, r);
        dropRange(this.atc, devId * TAG_SPAN + (gn ? pasid + 1 : 0), r.first, r.last, r.all);
        return true;
      }
      case CMD_INV_IRT:
        // No interrupt remapping is modelled; the command is accepted and counted.
        this.stats.irtInvalidations++;
        return true;
      case CMD_COMPLETE_PPR:
        this.cb.pprComplete?.(w[0]! & 0xffff, w[1]! & 0xfffff, (w[2]! & 4) !== 0, w[3]! & 0x1ff, (w[3]! >>> 12) & 0xf);
        return true;
      case CMD_INV_ALL:
        this.dteCache.clear();
        this.iotlb.clear();
        this.atc.clear();
        return true;
      default:
        return false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Logs

  private logEvent(e: EventEntry): void {
    if (this.evtSize === 0) return;
    const next = (this.evtTail + LOG_ENTRY_SIZE) % this.evtSize;
    if (next === this.evtHead) {
      this.status |= STATUS_EVT_OVERFLOW;
    } else {
      const w = eventWords(e, this.eventBuf);
      for (let i = 0; i < 4; i++) this.mem.writeU32(this.evtBase + this.evtTail + i * 4, w[i]!);
      this.evtTail = next;
      this.status |= STATUS_EVT_INT;
    }
    this.cb.event?.();
  }

  /** A device's PCIe page request (PRI): a PPR log entry. Returns false when the log is full (overflow). */
  pageRequest(r: { devId: number; pasid: number; address: bigint; read: boolean; write: boolean; exec?: boolean; user?: boolean; tag: number }): boolean {
    if (this.pprSize === 0) return false;
    const next = (this.pprTail + LOG_ENTRY_SIZE) % this.pprSize;
    if (next === this.pprHead) {
      this.status |= STATUS_PPR_OVERFLOW;
      return false;
    }
    this.mem.write(this.pprBase + this.pprTail, encodePpr({
      devId: r.devId, pasid: Math.max(0, r.pasid), tag: r.tag, exec: r.exec ?? false, read: r.read, write: r.write, user: r.user ?? true, rsvd: false,
      gn: r.pasid !== NO_PASID, type: PPR_TYPE_PAGE_SERVICE_REQUEST, address: r.address,
    }));
    this.pprTail = next;
    this.status |= STATUS_PPR_INT;
    this.cb.ppr?.();
    return true;
  }

  get eventLog(): { base: number; size: number } {
    return { base: this.evtBase, size: this.evtSize };
  }

  get pprLog(): { base: number; size: number } {
    return { base: this.pprBase, size: this.pprSize };
  }

  // ---------------------------------------------------------------------------------------------
  // Translation

  /** The DTE of `devId` as the hardware sees it (cached until INVALIDATE_DEVTAB_ENTRY). */
  private dte(devId: number): CachedDte | undefined {
    let d = this.dteCache.get(devId);
    if (d) return d;
    if (devId >= this.devTableEntries) return undefined;
    const at = this.devTable + devId * DTE_SIZE;
    const m = this.mem;
    const lo0 = m.readU32(at);
    const hi0 = m.readU32(at + 4);
    const lo1 = m.readU32(at + 8);
    const hi1 = m.readU32(at + 12);
    const hi2 = m.readU32(at + 20);
    const gcr3 = ((hi0 >>> 26) & 7) * 2 ** 12 + (lo1 >>> 16) * 2 ** 15 + (hi1 >>> 11) * 2 ** 31;
    d = {
      v: (lo0 & 1) !== 0, tv: (lo0 & 2) !== 0, mode: (lo0 >>> 9) & 7, hostRoot: entryAddr(lo0, hi0),
      giov: (hi0 & (1 << 22)) !== 0, gv: (hi0 & (1 << 23)) !== 0, glx: (hi0 >>> 24) & 3, gcr3,
      perm: ((hi0 & (1 << 29)) !== 0 ? PERM_R : 0) | ((hi0 & (1 << 30)) !== 0 ? PERM_W : 0), domainId: lo1 & 0xffff,
      ats: (hi1 & 1) !== 0, sa: (hi1 & 4) !== 0, gpm: (hi2 >>> 22) & 3, ppr: (hi0 & (1 << 20)) !== 0,
    };
    this.dteCache.set(devId, d);
    return d;
  }

  /** Whether the device's DTE enables page requests (PPR). */
  pprEnabled(devId: number): boolean {
    return this.dte(devId)?.ppr ?? false;
  }

  /**
   * Translates one access; returns the physical address or -1 (lastFault says why, and an event
   * is logged unless the DTE suppresses it).
   */
  translate(devId: number, pasid: number, iova: number, write: boolean): number {
    const d = this.dte(devId);
    if (!d || !d.v) return iova; // V=0: requests pass untranslated
    const need = write ? PERM_W : PERM_R;
    const guest = pasid !== NO_PASID || (d.gv && d.giov);
    // V=1 with TV=0 (a cleared DTE) blocks DMA; a PASID request without guest translation is invalid.
    if (!d.tv) return this.fault(d, devId, pasid, iova, write, EVENT_IO_PAGE_FAULT, 0);
    if (pasid !== NO_PASID && !d.gv) return this.fault(d, devId, pasid, iova, write, EVENT_INVALID_DEVICE_REQUEST, 0);
    const tagId = guest ? (pasid === NO_PASID ? 0 : pasid) + 1 : 0;
    const pfn = Math.floor(iova / 4096);
    const off = iova - pfn * 4096;
    let atc: PageCache | undefined;
    if (d.ats) {
      atc = this.atc.get(devId * TAG_SPAN + tagId);
      const v = atc?.get(pfn);
      if (v !== undefined && (v & need) !== 0) return Math.floor(v / 4) * 4096 + off;
    }
    const tag = d.domainId * TAG_SPAN + tagId;
    let tlb = this.iotlb.get(tag);
    const hit = tlb?.get(pfn);
    let value: number;
    if (hit !== undefined && (hit & need) !== 0) {
      value = hit;
    } else {
      this.stats.walks++;
      this.walkFlags = 0;
      const ok = guest ? this.walkNested(d, tagId === 0 ? 0 : tagId - 1, iova) : this.stage2(d, iova);
      if (!ok || (this.walkPerm & need) === 0) {
        return this.fault(d, devId, pasid, iova, write, EVENT_IO_PAGE_FAULT, (ok ? EVENT_FLAG_PR | EVENT_FLAG_PE : this.walkFlags) | (guest ? EVENT_FLAG_GN : 0));
      }
      value = Math.floor(this.walkPa / 4096) * 4 + this.walkPerm;
      if (!tlb) this.iotlb.set(tag, (tlb = new Map()));
      tlb.set(pfn, value);
    }
    if (d.ats) {
      if (!atc) this.atc.set(devId * TAG_SPAN + tagId, (atc = new Map()));
      atc.set(pfn, value);
    }
    return Math.floor(value / 4) * 4096 + off;
  }

  private fault(d: CachedDte, devId: number, pasid: number, iova: number, write: boolean, code: number, flags: number): number {
    this.lastFault = code === EVENT_IO_PAGE_FAULT ? 'IO_PAGE_FAULT' : 'INVALID_DEVICE_REQUEST';
    if (!(code === EVENT_IO_PAGE_FAULT && d.sa)) {
      this.logEvent({
        code, devId, pasid: pasid === NO_PASID ? 0 : pasid, domainId: d.domainId, flags: flags | (write ? EVENT_FLAG_RW : 0), address: BigInt(iova),
      });
    }
    return -1;
  }

  /** Reads a table entry at a physical address, or fails (a pointer outside memory is a fault). */
  private readEntry(pa: number): boolean {
    const run = this.mem.runAt(pa);
    if (run === undefined) return false;
    const off = pa - run.firstFrame * 4096;
    const b = run.bytes;
    if (off + 8 > b.length) {
      this.entryLo = this.mem.readU32(pa);
      this.entryHi = this.mem.readU32(pa + 4);
      return true;
    }
    this.entryLo = (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
    this.entryHi = (b[off + 4]! | (b[off + 5]! << 8) | (b[off + 6]! << 16) | (b[off + 7]! << 24)) >>> 0;
    return true;
  }

  private entryLo = 0;
  private entryHi = 0;

  /** GPA (or untranslated IOVA) through the DTE's host table: sets walkPa / walkPerm. */
  private stage2(d: CachedDte, addr: number): boolean {
    if (d.mode === 0) {
      this.walkPa = addr;
      this.walkPerm = d.perm;
      return d.perm !== 0;
    }
    if (d.mode > 6) return false;
    let table = d.hostRoot;
    let perm = PERM_R | PERM_W;
    for (let level = d.mode - 1; level >= 0; level--) {
      const idx = Math.floor(addr / 2 ** (12 + 9 * level)) % 512;
      if (!this.readEntry(table + idx * 8)) return false;
      const lo = this.entryLo;
      const hi = this.entryHi;
      if ((lo & 1) === 0) return false;
      perm &= ((hi & V1_HI_IR) !== 0 ? PERM_R : 0) | ((hi & V1_HI_IW) !== 0 ? PERM_W : 0);
      const next = (lo >>> V1_NEXT_LEVEL_SHIFT) & 7;
      if (next === 0 || level === 0) {
        const size = 2 ** (12 + 9 * level);
        this.walkPa = entryAddr(lo, hi) + (addr % size);
        this.walkPerm = perm;
        this.walkFlags = EVENT_FLAG_PR;
        return true;
      }
      // Level skipping: the PDE names the level of the table it points to (must be below ours).
      if (next === 7 || next > level) return false;
      level = next;
      table = entryAddr(lo, hi);
    }
    return false;
  }

  /** PASID → GCR3 → guest CR3 → guest v2 walk, with every guest address through stage2. */
  private walkNested(d: CachedDte, pasid: number, iova: number): boolean {
    if (d.glx === 3 || d.gpm > 1) return false;
    let gpa = d.gcr3;
    for (let level = d.glx; level >= 0; level--) {
      const idx = Math.floor(pasid / 2 ** (9 * level)) % 512;
      if (idx >= 512 || !this.stage2(d, gpa + idx * 8) || !this.readEntry(this.walkPa)) return false;
      if ((this.entryLo & 1) === 0) return false;
      gpa = entryAddr(this.entryLo, this.entryHi);
    }
    if (level0Overflow(pasid, d.glx)) return false;
    const levels = d.gpm === 1 ? 5 : 4;
    let perm = PERM_R | PERM_W;
    let table = gpa;
    for (let level = levels - 1; level >= 0; level--) {
      const idx = Math.floor(iova / 2 ** (12 + 9 * level)) % 512;
      if (!this.stage2(d, table + idx * 8) || !this.readEntry(this.walkPa)) return false;
      const lo = this.entryLo;
      const hi = this.entryHi;
      if ((lo & 1) === 0) {
        this.walkFlags = 0;
        return false;
      }
      if ((lo & V2_RW) === 0) perm &= ~PERM_W;
      if (level === 0 || ((lo & V2_PS) !== 0 && level <= 2)) {
        const size = 2 ** (12 + 9 * level);
        const out = (entryAddr(lo, hi) - (entryAddr(lo, hi) % size)) + (iova % size);
        if (!this.stage2(d, out)) return false;
        this.walkPerm &= perm;
        return true;
      }
      table = entryAddr(lo, hi);
    }
    return false;
  }

  /** Drops every IOTLB entry (benchmarks: uncached walks without a command per translation). */
  dropIotlb(): void {
    this.iotlb.clear();
  }

  /** Cached translations (tests). */
  cachedPages(): number {
    let n = 0;
    for (const m of this.iotlb.values()) n += m.size;
    return n;
  }
}

/** A PASID wider than the GCR3 table's levels cover. */
function level0Overflow(pasid: number, glx: number): boolean {
  return pasid >= 2 ** (9 * (glx + 1));
}

function dropRange(cache: Map<number, PageCache>, tag: number, first: number, last: number, all: boolean): void {
  const m = cache.get(tag);
  if (!m) return;
  if (all) {
    cache.delete(tag);
    return;
  }
  if (last - first + 1 < m.size) {
    for (let p = first; p <= last; p++) m.delete(p);
  } else {
    for (const p of m.keys()) if (p >= first && p <= last) m.delete(p);
  }
}
