// VMSAv8-64 translation table walks over physical memory, for stage 1 and stage 2, as the SMMU
// performs them on a TLB miss. The walker reports the leaf: output address, leaf size, the
// permission set of the whole walk (hierarchical table attributes included) and nG; permission
// checks against an access are the caller's, because TLB hits need them too.
import type { PhysicalMemory } from '@viommu/core';
import { EVT_ID_ACCESS_FAULT, EVT_ID_ADDR_SIZE_FAULT, EVT_ID_TRANSLATION_FAULT } from '../formats/event.js';
import { blockAllowed, levelShift } from './granule.js';

/** Permission bits: one per (privilege, kind) access. */
export const PERM_UR = 1;
export const PERM_UW = 2;
export const PERM_UX = 4;
export const PERM_PR = 8;
export const PERM_PW = 16;
export const PERM_PX = 32;
export const PERM_ALL = 63;

/** The permission bit an access needs. Instruction fetches are reads. */
export function accessPerm(write: boolean, priv: boolean, instr: boolean): number {
  const kind = instr ? 2 : write ? 1 : 0;
  return 1 << (kind + (priv ? 3 : 0));
}

export interface StageParams {
  /** Base of the start-level table (an IPA for a nested stage 1). */
  ttb: number;
  granuleShift: number;
  inputBits: number;
  startLevel: number;
  outputBits: number;
  /** Access-flag faults disabled (CD.AFFD / STE.S2AFFD). */
  affd: boolean;
}

export interface WalkFault {
  /** Event ID: F_TRANSLATION, F_ADDR_SIZE, F_ACCESS (F_PERMISSION is raised by the caller). */
  id: number;
  s2: boolean;
  /** For stage-2 faults: what stage 1 was doing (EVT_CLASS_*). */
  cls: number;
  /** For stage-2 faults: the IPA that faulted. */
  ipa: number;
  level: number;
}

/** Translates the IPA of a stage-1 descriptor to its PA, or returns -1 having set the fault. */
export type TableFetch = (ipa: number) => number;

const TWO32 = 0x1_0000_0000;
/** Powers of two by table: `2 ** n` with a variable n is a slow Math.pow on the hot path. */
const POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

function descOutput(lo: number, hi: number, shift: number): number {
  // Output address bits [47:shift]; shift < 32 for every table, page and block this model allows.
  const lowMask = shift >= 32 ? 0 : ~((1 << shift) - 1) >>> 0;
  return (hi & 0xffff) * TWO32 + ((lo & lowMask) >>> 0);
}

export class Walker {
  /** Result of the last successful walk. */
  out = 0;
  leafShift = 0;
  perm = 0;
  global = false;
  readonly fault: WalkFault = { id: 0, s2: false, cls: 0, ipa: 0, level: 0 };

  constructor(private readonly mem: PhysicalMemory) {}

  private fail(id: number, s2: boolean, level: number): false {
    this.fault.id = id;
    this.fault.s2 = s2;
    this.fault.level = level;
    return false;
  }

  /**
   * Walks `p` for input address `ia`. Stage-1 descriptor fetches go through `fetch` when given
   * (nesting); stage-2 walks read physical memory directly. On failure returns false with `fault` set.
   */
  walk(p: StageParams, stage: 1 | 2, ia: number, fetch: TableFetch | null): boolean {
    const s2 = stage === 2;
    const g = p.granuleShift;
    const stride = g - 3;
    if (ia >= POW2[p.inputBits]!) return this.fail(EVT_ID_TRANSLATION_FAULT, s2, p.startLevel);
    const outLimit = POW2[p.outputBits]!;
    let table = p.ttb;
    let apTable = 0; // stage 1: bit 0 = no EL0 access below, bit 1 = no write below
    let uxnTable = false;
    let pxnTable = false;
    for (let level = p.startLevel; level <= 3; level++) {
      const shift = levelShift(g, level);
      const idxBits = level === p.startLevel ? p.inputBits - shift : stride;
      const idx = Math.floor(ia / POW2[shift]!) % POW2[idxBits]!;
      let descAddr = table + idx * 8;
      if (fetch) {
        const pa = fetch(descAddr);
        if (pa < 0) return false;
        descAddr = pa;
      }
      const lo = this.mem.readU32(descAddr);
      const hi = this.mem.readU32(descAddr + 4);
      if ((lo & 1) === 0) return this.fail(EVT_ID_TRANSLATION_FAULT, s2, level);
      const isTable = (lo & 2) !== 0;
      if (level < 3 && isTable) {
        table = descOutput(lo, hi, g);
        if (table >= outLimit) return this.fail(EVT_ID_ADDR_SIZE_FAULT, s2, level);
        if (!s2) {
          apTable |= (hi >>> 29) & 3; // APTable [62:61]
          if (hi & (1 << 28)) uxnTable = true; // UXNTable 60
          if (hi & (1 << 27)) pxnTable = true; // PXNTable 59
        }
        continue;
      }
      // Leaf: a page at level 3 (0b11), a block above it (0b01) where the granule allows one.
      if (level === 3 ? !isTable : !blockAllowed(g, level)) return this.fail(EVT_ID_TRANSLATION_FAULT, s2, level);
      const base = descOutput(lo, hi, shift);
      if (base >= outLimit) return this.fail(EVT_ID_ADDR_SIZE_FAULT, s2, level);
      if ((lo & (1 << 10)) === 0 && !p.affd) return this.fail(EVT_ID_ACCESS_FAULT, s2, level);
      this.out = base + (ia % POW2[shift]!);
      this.leafShift = shift;
      this.perm = s2 ? s2Perm(lo, hi) : s1Perm(lo, hi, apTable, uxnTable, pxnTable);
      this.global = s2 || (lo & (1 << 11)) === 0;
      return true;
    }
    return this.fail(EVT_ID_TRANSLATION_FAULT, s2, 3);
  }
}

/** Stage-1 AP[2:1] (bits 7:6), PXN 53, UXN 54, with the hierarchical table limits. */
function s1Perm(lo: number, hi: number, apTable: number, uxnTable: boolean, pxnTable: boolean): number {
  const ap1 = (lo & (1 << 6)) !== 0 && (apTable & 1) === 0; // EL0 may access
  const readOnly = (lo & (1 << 7)) !== 0 || (apTable & 2) !== 0;
  const pxn = (hi & (1 << 21)) !== 0 || pxnTable;
  const uxn = (hi & (1 << 22)) !== 0 || uxnTable;
  let perm = PERM_PR;
  if (!readOnly) perm |= PERM_PW;
  // Memory that EL0 can write is never privileged-executable.
  if (!pxn && !(ap1 && !readOnly)) perm |= PERM_PX;
  if (ap1) {
    perm |= PERM_UR;
    if (!readOnly) perm |= PERM_UW;
    if (!uxn) perm |= PERM_UX;
  }
  return perm;
}

/** Stage-2 S2AP (bit 6 read, bit 7 write) and XN[1:0] (bits 54:53). */
function s2Perm(lo: number, hi: number): number {
  let perm = 0;
  if (lo & (1 << 6)) perm |= PERM_UR | PERM_PR;
  if (lo & (1 << 7)) perm |= PERM_UW | PERM_PW;
  if (perm & PERM_UR) {
    const xn = (hi >>> 21) & 3;
    if (xn === 0 || xn === 1) perm |= PERM_UX;
    if (xn === 0 || xn === 3) perm |= PERM_PX;
  }
  return perm;
}
