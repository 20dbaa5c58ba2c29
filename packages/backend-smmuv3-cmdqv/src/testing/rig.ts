// Test and benchmark rig: an SMMU with its stream table and queues in physical memory, programmed
// the way a host driver does it, plus a guest whose RAM sits behind a stage-2 domain and whose
// own stage-1 tables and CDs live in that RAM at IPAs. Exported so other packages' scenarios can
// drive the hardware model directly.
import { FRAME_SIZE, PhysicalMemory } from '@viommu/core';
import { type Cd, encodeCd } from '../formats/cd.js';
import { CMD_SIZE, type Command, encodeCommand } from '../formats/command.js';
import { EVT_SIZE, type SmmuEvent, decodeEvent } from '../formats/event.js';
import { STE_CFG_NESTED, STE_CFG_S2_TRANS, STE_SIZE, type Ste, encodeSte } from '../formats/ste.js';
import { type TableMemory, TableBuilder } from '../pgtable/builder.js';
import { s1StartLevel } from '../pgtable/granule.js';
import { Stage2Domain } from '../pgtable/s2-domain.js';
import {
  CR0_CMDQEN, CR0_EVTQEN, CR0_SMMUEN, SMMU_CMDQ_BASE, SMMU_CMDQ_CONS, SMMU_CMDQ_PROD, SMMU_CR0, SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS, SMMU_EVTQ_PROD, SMMU_STRTAB_BASE, SMMU_STRTAB_BASE_CFG, type SmmuFeatures,
} from '../smmu/regs.js';
import { Smmu, type SmmuHooks } from '../smmu/smmu.js';

export interface RigOptions {
  features?: Partial<SmmuFeatures>;
  hooks?: SmmuHooks;
  /** log2 of stream-table entries, command-queue entries and event-queue entries. */
  sidLog2?: number;
  cmdqLog2?: number;
  evtqLog2?: number;
}

export class SmmuRig {
  readonly mem: PhysicalMemory;
  readonly smmu: Smmu;
  readonly strtab: number;
  readonly cmdqBase: number;
  readonly evtqBase: number;
  readonly cmdqLog2: number;
  readonly evtqLog2: number;

  constructor(options: RigOptions = {}, mem: PhysicalMemory = new PhysicalMemory()) {
    this.mem = mem;
    this.smmu = new Smmu(mem, options.features, options.hooks);
    const sidLog2 = options.sidLog2 ?? 8;
    this.cmdqLog2 = options.cmdqLog2 ?? 8;
    this.evtqLog2 = options.evtqLog2 ?? 6;
    this.strtab = this.alloc(2 ** sidLog2 * STE_SIZE);
    this.cmdqBase = this.alloc(2 ** this.cmdqLog2 * CMD_SIZE);
    this.evtqBase = this.alloc(2 ** this.evtqLog2 * EVT_SIZE);
    const s = this.smmu;
    s.writeReg64(SMMU_STRTAB_BASE, this.strtab);
    s.writeReg(SMMU_STRTAB_BASE_CFG, sidLog2);
    s.writeReg64(SMMU_CMDQ_BASE, this.cmdqBase | this.cmdqLog2);
    s.writeReg64(SMMU_EVTQ_BASE, this.evtqBase | this.evtqLog2);
    s.writeReg(SMMU_CR0, CR0_SMMUEN | CR0_CMDQEN | CR0_EVTQEN);
  }

  alloc(bytes: number): number {
    return this.mem.allocRun(Math.ceil(bytes / FRAME_SIZE)).firstFrame * FRAME_SIZE;
  }

  writeSte(sid: number, ste: Partial<Ste>): void {
    this.mem.write(this.strtab + sid * STE_SIZE, encodeSte(ste));
  }

  /** The host STE for a stage-2-only stream (or the base of a nested one). */
  s2Ste(s2: Stage2Domain, extra: Partial<Ste> = {}): Partial<Ste> {
    const c = s2.config;
    return {
      v: true, config: STE_CFG_S2_TRANS, s2vmid: c.vmid, s2t0sz: c.t0sz, s2sl0: c.sl0, s2tg: c.tg, s2ps: c.ps,
      s2aa64: true, s2r: true, s2ttb: c.ttb, s2fwb: c.fwb, ...extra,
    };
  }

  nestedSte(s2: Stage2Domain, cdTableIpa: number, extra: Partial<Ste> = {}): Partial<Ste> {
    return this.s2Ste(s2, { config: STE_CFG_NESTED, s1ContextPtr: cdTableIpa, mev: true, ...extra });
  }

  /** Writes commands at PROD and publishes them; returns the CONS register afterwards. */
  submit(...cmds: (Partial<Command> & { opcode: number })[]): number {
    const s = this.smmu;
    let prod = s.readReg(SMMU_CMDQ_PROD);
    const mask = (1 << this.cmdqLog2) - 1;
    const wrapMask = (2 << this.cmdqLog2) - 1;
    for (const c of cmds) {
      this.mem.write(this.cmdqBase + (prod & mask) * CMD_SIZE, encodeCommand(c));
      prod = (prod + 1) & wrapMask;
    }
    s.writeReg(SMMU_CMDQ_PROD, prod);
    return s.readReg(SMMU_CMDQ_CONS);
  }

  /** Drains the event queue. */
  events(): SmmuEvent[] {
    const s = this.smmu;
    const out: SmmuEvent[] = [];
    const mask = (1 << this.evtqLog2) - 1;
    const wrapMask = (2 << this.evtqLog2) - 1;
    const prod = s.readReg(SMMU_EVTQ_PROD);
    let cons = s.readReg(SMMU_EVTQ_CONS);
    while ((cons & wrapMask) !== (prod & wrapMask)) {
      out.push(decodeEvent(this.mem.read(this.evtqBase + (cons & mask) * EVT_SIZE, new Uint8Array(EVT_SIZE))));
      cons = (cons & 0x8000_0000) | ((cons + 1) & wrapMask);
    }
    s.writeReg(SMMU_EVTQ_CONS, ((cons & wrapMask) | (prod & 0x8000_0000)) >>> 0);
    return out;
  }
}

/**
 * A guest: `ramBytes` of RAM at IPA `ramIpa`, backed by one physical run and mapped by the host
 * stage-2 domain. The guest allocates its CD tables and stage-1 tables from its own RAM.
 */
export class Guest {
  readonly s2: Stage2Domain;
  readonly ramPa: number;
  private next: number;
  readonly tables: TableMemory;

  constructor(
    readonly mem: PhysicalMemory,
    readonly ramIpa: number,
    readonly ramBytes: number,
    vmid: number,
    s2Options: { granuleShift?: number; ipaBits?: number; domain?: Stage2Domain } = {},
  ) {
    this.s2 = s2Options.domain ?? new Stage2Domain(mem, { vmid, ...s2Options });
    // Backed like a VMM backs guest RAM with huge pages: the PA is 2 MiB aligned, so
    // naturally aligned guest buffers (HW queues) are physically aligned as well.
    const HUGE = 2 << 20;
    const run = mem.allocRun(Math.ceil((ramBytes + HUGE) / FRAME_SIZE));
    this.ramPa = Math.ceil((run.firstFrame * FRAME_SIZE) / HUGE) * HUGE;
    this.s2.map(BigInt(ramIpa), BigInt(this.ramPa), BigInt(ramBytes), 3);
    this.next = ramIpa;
    this.tables = {
      readU32: (ipa) => mem.readU32(this.pa(ipa)),
      writeU32: (ipa, v) => mem.writeU32(this.pa(ipa), v),
      allocTable: (bytes) => this.alloc(bytes, bytes),
    };
  }

  /** The PA of a guest IPA inside its RAM (what the host knows, not what the SMMU walks). */
  pa(ipa: number): number {
    if (ipa < this.ramIpa || ipa >= this.ramIpa + this.ramBytes) throw new RangeError(`IPA 0x${ipa.toString(16)} outside guest RAM`);
    return this.ramPa + (ipa - this.ramIpa);
  }

  /** Allocates zeroed guest RAM; returns its IPA. */
  alloc(bytes: number, align = 4096): number {
    const ipa = Math.ceil(this.next / align) * align;
    if (ipa + bytes > this.ramIpa + this.ramBytes) throw new RangeError('guest RAM exhausted');
    this.next = ipa + bytes;
    this.mem.write(this.pa(ipa), new Uint8Array(bytes));
    return ipa;
  }

  write(ipa: number, bytes: Uint8Array): void {
    this.mem.write(this.pa(ipa), bytes);
  }

  read(ipa: number, length: number): Uint8Array {
    return this.mem.read(this.pa(ipa), new Uint8Array(length));
  }

  /** A stage-1 page table in guest RAM. */
  s1Table(granuleShift = 12, inputBits = 48): TableBuilder {
    return new TableBuilder(this.tables, granuleShift, inputBits, s1StartLevel(granuleShift, inputBits));
  }

  /** A linear CD table of 2^log2 entries in guest RAM; returns its IPA. */
  cdTable(log2 = 0): number {
    return this.alloc(64 * 2 ** log2, 64 * 2 ** log2 < 4096 ? 64 : 4096);
  }

  writeCd(table: number, ssid: number, cd: Partial<Cd>): void {
    this.write(table + ssid * 64, encodeCd(cd));
  }

  /** A CD for a stage-1 table built with s1Table(). */
  cdFor(s1: TableBuilder, asid: number, extra: Partial<Cd> = {}): Partial<Cd> {
    const tg0 = s1.granuleShift === 12 ? 0 : s1.granuleShift === 16 ? 1 : 2;
    return { v: true, aa64: true, t0sz: 64 - s1.inputBits, tg0, ips: 5, r: true, a: true, aset: true, epd1: true, asid, ttb0: s1.root, ...extra };
  }
}
