// Scalable-mode translation structures (VT-d spec 9.4-9.6; Linux iommu.h/pasid.h use the same bits):
// root entries (128 bits), scalable-mode context entries (256), PASID directory entries (64) and
// PASID table entries (512). Pure encode/decode; `reservedBits*` say which bits must be zero, the
// hardware model faults with the matching reason when a guest or a bug sets one.
import { addrOf, bit, bytesToQwords, num, put, putAddr, qwordsToBytes } from '@viommu/core';

export const ROOT_ENTRY_SIZE = 16;
export const CONTEXT_ENTRY_SIZE = 32; // scalable mode
export const PASID_DIR_ENTRY_SIZE = 8;
export const PASID_ENTRY_SIZE = 64;
/** PASIDs per PASID table (one 4 KiB table of 64-byte entries). */
export const PASIDS_PER_TABLE = 64;

// --- root entry -----------------------------------------------------------------------------

export interface RootEntry {
  /** Lower half present: context table for devfn 0x00-0x7f at `lctp`. */
  lp: boolean;
  lctp: bigint;
  up: boolean;
  uctp: bigint;
}

export function encodeRootEntry(e: Partial<RootEntry>): Uint8Array {
  return qwordsToBytes([put(e.lp ?? false, 0, 0) | putAddr(e.lctp ?? 0n, 12, 63), put(e.up ?? false, 0, 0) | putAddr(e.uctp ?? 0n, 12, 63)]);
}

export function decodeRootEntry(b: Uint8Array): RootEntry {
  const [q0 = 0n, q1 = 0n] = bytesToQwords(b);
  return { lp: bit(q0, 0), lctp: addrOf(q0, 12, 63), up: bit(q1, 0), uctp: addrOf(q1, 12, 63) };
}

/** Reserved bits of a scalable-mode root entry, per qword (bits 11:1 of each half). */
export const ROOT_RSVD_LO = 0xffe;

// --- scalable-mode context entry --------------------------------------------------------------

export interface ContextEntry {
  p: boolean;
  fpd: boolean;
  /** Device-TLB (ATS) enable. */
  dte: boolean;
  /** PASID enable: requests with PASID are translated. */
  paside: boolean;
  /** Page requests enabled. */
  pre: boolean;
  /** The PASID directory has 2^(pdts + 7) entries. */
  pdts: number;
  pasidDirPtr: bigint;
  /** PASID used for requests without PASID (Linux: 0). */
  ridPasid: number;
  ridPriv: boolean;
}

export function encodeContextEntry(e: Partial<ContextEntry>): Uint8Array {
  const q0 = put(e.p ?? false, 0, 0) | put(e.fpd ?? false, 1, 1) | put(e.dte ?? false, 2, 2) | put(e.paside ?? false, 3, 3) |
    put(e.pre ?? false, 4, 4) | put(e.pdts ?? 0, 9, 11) | putAddr(e.pasidDirPtr ?? 0n, 12, 63);
  const q1 = put(e.ridPasid ?? 0, 0, 19) | put(e.ridPriv ?? false, 20, 20);
  return qwordsToBytes([q0, q1, 0n, 0n]);
}

export function decodeContextEntry(b: Uint8Array): ContextEntry {
  const [q0 = 0n, q1 = 0n] = bytesToQwords(b);
  return {
    p: bit(q0, 0), fpd: bit(q0, 1), dte: bit(q0, 2), paside: bit(q0, 3), pre: bit(q0, 4), pdts: num(q0, 9, 11),
    pasidDirPtr: addrOf(q0, 12, 63), ridPasid: num(q1, 0, 19), ridPriv: bit(q1, 20),
  };
}

/** Reserved bits, as 32-bit halves: q0 bits 8:5; q1 bits 63:21; q2, q3 all. */
export const CONTEXT_RSVD_Q0_LO = 0x1e0;
export const CONTEXT_RSVD_Q1_LO = 0xffe00000;

// --- PASID directory entry --------------------------------------------------------------------

export interface PasidDirEntry {
  p: boolean;
  fpd: boolean;
  pasidTablePtr: bigint;
}

export function encodePasidDirEntry(e: Partial<PasidDirEntry>): Uint8Array {
  return qwordsToBytes([put(e.p ?? false, 0, 0) | put(e.fpd ?? false, 1, 1) | putAddr(e.pasidTablePtr ?? 0n, 12, 63)]);
}

export function decodePasidDirEntry(b: Uint8Array): PasidDirEntry {
  const [q0 = 0n] = bytesToQwords(b);
  return { p: bit(q0, 0), fpd: bit(q0, 1), pasidTablePtr: addrOf(q0, 12, 63) };
}

// --- PASID table entry ------------------------------------------------------------------------

export const PGTT_FIRST_STAGE = 1;
export const PGTT_SECOND_STAGE = 2;
export const PGTT_NESTED = 3;
export const PGTT_PASS_THROUGH = 4;

/** AW encodings of the second stage (spec: 2 = 48-bit 4-level, 3 = 57-bit 5-level). */
export const AW_48 = 2;
export const AW_57 = 3;

export interface PasidEntry {
  p: boolean;
  fpd: boolean;
  /** Second-stage address width (AW_48 / AW_57). */
  aw: number;
  pgtt: number;
  ssade: boolean;
  ssptptr: bigint;
  did: number;
  pwsnp: boolean;
  pgsnp: boolean;
  sre: boolean;
  ere: boolean;
  /** First-stage paging mode: 0 = 4-level, 1 = 5-level. */
  fspm: number;
  wpe: boolean;
  nxe: boolean;
  smep: boolean;
  eafe: boolean;
  fsptptr: bigint;
}

export function encodePasidEntryQwords(e: Partial<PasidEntry>): bigint[] {
  const q0 = put(e.p ?? false, 0, 0) | put(e.fpd ?? false, 1, 1) | put(e.aw ?? 0, 2, 4) | put(e.pgtt ?? 0, 6, 8) |
    put(e.ssade ?? false, 9, 9) | putAddr(e.ssptptr ?? 0n, 12, 63);
  const q1 = put(e.did ?? 0, 0, 15) | put(e.pwsnp ?? false, 23, 23) | put(e.pgsnp ?? false, 24, 24);
  const q2 = put(e.sre ?? false, 0, 0) | put(e.ere ?? false, 1, 1) | put(e.fspm ?? 0, 2, 3) | put(e.wpe ?? false, 4, 4) |
    put(e.nxe ?? false, 5, 5) | put(e.smep ?? false, 6, 6) | put(e.eafe ?? false, 7, 7) | putAddr(e.fsptptr ?? 0n, 12, 63);
  return [q0, q1, q2, 0n, 0n, 0n, 0n, 0n];
}

export function encodePasidEntry(e: Partial<PasidEntry>): Uint8Array {
  return qwordsToBytes(encodePasidEntryQwords(e));
}

export function decodePasidEntry(b: Uint8Array): PasidEntry {
  const [q0 = 0n, q1 = 0n, q2 = 0n] = bytesToQwords(b);
  return {
    p: bit(q0, 0), fpd: bit(q0, 1), aw: num(q0, 2, 4), pgtt: num(q0, 6, 8), ssade: bit(q0, 9), ssptptr: addrOf(q0, 12, 63),
    did: num(q1, 0, 15), pwsnp: bit(q1, 23), pgsnp: bit(q1, 24),
    sre: bit(q2, 0), ere: bit(q2, 1), fspm: num(q2, 2, 3), wpe: bit(q2, 4), nxe: bit(q2, 5), smep: bit(q2, 6), eafe: bit(q2, 7),
    fsptptr: addrOf(q2, 12, 63),
  };
}

/** Reserved bits the model checks, as 32-bit halves of q0 and q2 (bits the spec leaves reserved there). */
export const PASID_RSVD_Q0_LO = 0x820; // bits 5, 11
export const PASID_RSVD_Q2_LO = 0xf00; // bits 11:8
