// DMA-remapping fault reasons (scalable mode) and the fault recording register (VT-d spec 7.2,
// 10.4.14; the reason codes are the ones Linux's dmar.c names). The model records these; like the
// kernel, the driver only logs them: nothing reaches iommufd users.
import { bit, num, put, putAddr } from '@viommu/core';

export const FR_SM_ROOT_NOT_PRESENT = 0x39;
export const FR_SM_ROOT_RSVD = 0x3a;
export const FR_SM_CTX_NOT_PRESENT = 0x41;
export const FR_SM_CTX_RSVD = 0x42;
export const FR_SM_CTX_PASIDE_CLEAR = 0x45;
export const FR_SM_PASID_TOO_LARGE = 0x46;
export const FR_SM_PASID_DIR_NOT_PRESENT = 0x51;
export const FR_SM_PASID_DIR_RSVD = 0x52;
export const FR_SM_PASID_NOT_PRESENT = 0x59;
export const FR_SM_PASID_RSVD = 0x5a;
export const FR_SM_PASID_INVALID = 0x5b;
export const FR_SM_SRE_CLEAR = 0x5d;
export const FR_SM_FS_NOT_PRESENT = 0x71;
export const FR_SM_FS_RSVD = 0x72;
export const FR_SM_FS_BEYOND_MGAW_NESTED = 0x74;
export const FR_SM_FS_READ_NESTED = 0x76;
export const FR_SM_SS_ACCESS = 0x78;
export const FR_SM_SS_PERM = 0x79;
export const FR_SM_SS_RSVD = 0x7a;
export const FR_SM_NON_CANONICAL = 0x80;
export const FR_SM_US_CLEAR = 0x81;
export const FR_SM_BEYOND_MAX = 0x83;
export const FR_SM_SS_BEYOND_MAX = 0x84;
export const FR_SM_NO_WRITE = 0x85;
export const FR_SM_NO_READ = 0x86;

const NAMES: Record<number, string> = {
  [FR_SM_ROOT_NOT_PRESENT]: 'SM_ROOT_NOT_PRESENT',
  [FR_SM_ROOT_RSVD]: 'SM_ROOT_RESERVED',
  [FR_SM_CTX_NOT_PRESENT]: 'SM_CONTEXT_NOT_PRESENT',
  [FR_SM_CTX_RSVD]: 'SM_CONTEXT_RESERVED',
  [FR_SM_CTX_PASIDE_CLEAR]: 'SM_CONTEXT_PASIDE_CLEAR',
  [FR_SM_PASID_TOO_LARGE]: 'SM_PASID_TOO_LARGE',
  [FR_SM_PASID_DIR_NOT_PRESENT]: 'SM_PASID_DIR_NOT_PRESENT',
  [FR_SM_PASID_DIR_RSVD]: 'SM_PASID_DIR_RESERVED',
  [FR_SM_PASID_NOT_PRESENT]: 'SM_PASID_NOT_PRESENT',
  [FR_SM_PASID_RSVD]: 'SM_PASID_RESERVED',
  [FR_SM_PASID_INVALID]: 'SM_PASID_INVALID',
  [FR_SM_SRE_CLEAR]: 'SM_SRE_CLEAR',
  [FR_SM_FS_NOT_PRESENT]: 'SM_FS_NOT_PRESENT',
  [FR_SM_FS_RSVD]: 'SM_FS_RESERVED',
  [FR_SM_FS_BEYOND_MGAW_NESTED]: 'SM_FS_BEYOND_MGAW_NESTED',
  [FR_SM_FS_READ_NESTED]: 'SM_FS_READ_NESTED',
  [FR_SM_SS_ACCESS]: 'SM_SS_ACCESS',
  [FR_SM_SS_PERM]: 'SM_SS_PERMISSION',
  [FR_SM_SS_RSVD]: 'SM_SS_RESERVED',
  [FR_SM_NON_CANONICAL]: 'SM_NON_CANONICAL',
  [FR_SM_US_CLEAR]: 'SM_US_CLEAR',
  [FR_SM_BEYOND_MAX]: 'SM_BEYOND_MAX',
  [FR_SM_SS_BEYOND_MAX]: 'SM_SS_BEYOND_MAX',
  [FR_SM_NO_WRITE]: 'SM_NO_WRITE',
  [FR_SM_NO_READ]: 'SM_NO_READ',
};

/** 'DMAR_0x71_SM_FS_NOT_PRESENT': what translate() reports as the fault reason. */
export function faultReasonName(code: number): string {
  return `DMAR_0x${code.toString(16).padStart(2, '0')}_${NAMES[code] ?? 'UNKNOWN'}`;
}

/** One fault recording register (128 bits). */
export interface FaultRecord {
  /** Page address of the faulting request (bits 63:12). */
  addr: bigint;
  sid: number;
  pasidPresent: boolean;
  reason: number;
  pasid: number;
  /** true: read request (type bit 1); false: write. */
  read: boolean;
  /** F: the record is valid. */
  f: boolean;
}

export function encodeFaultRecord(r: FaultRecord): [bigint, bigint] {
  const lo = putAddr(r.addr & ~0xfffn, 12, 63);
  const hi = put(r.sid, 0, 15) | put(r.pasidPresent, 31, 31) | put(r.reason, 32, 39) | put(r.pasid, 40, 59) |
    put(r.read, 62, 62) | put(r.f, 63, 63);
  return [lo, hi];
}

export function decodeFaultRecord(lo: bigint, hi: bigint): FaultRecord {
  return {
    addr: lo & ~0xfffn, sid: num(hi, 0, 15), pasidPresent: bit(hi, 31), reason: num(hi, 32, 39), pasid: num(hi, 40, 59),
    read: bit(hi, 62), f: bit(hi, 63),
  };
}
