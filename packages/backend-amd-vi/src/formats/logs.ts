// Event log and PPR log entries (16 bytes each; amd_iommu_types.h EVENT_* and PPR_*).
import { bit, put, qwordsToBytes } from '@viommu/core';

export const LOG_ENTRY_SIZE = 16;

export const EVENT_ILLEGAL_DEV_TABLE_ENTRY = 0x1;
export const EVENT_IO_PAGE_FAULT = 0x2;
export const EVENT_ILLEGAL_COMMAND_ERROR = 0x5;
export const EVENT_INVALID_DEVICE_REQUEST = 0x8;
export const EVENT_INVALID_PPR_REQUEST = 0x9;

// IO_PAGE_FAULT flags (word1 bits 27:16).
export const EVENT_FLAG_GN = 0x001;
export const EVENT_FLAG_NX = 0x002;
export const EVENT_FLAG_US = 0x004;
export const EVENT_FLAG_I = 0x008;
export const EVENT_FLAG_PR = 0x010;
export const EVENT_FLAG_RW = 0x020;
export const EVENT_FLAG_PE = 0x040;
export const EVENT_FLAG_RZ = 0x080;
export const EVENT_FLAG_TR = 0x100;

export interface EventEntry {
  code: number;
  devId: number;
  /** PASID (20 bits) for events with GN, else 0. */
  pasid: number;
  /** DomainID (IO_PAGE_FAULT without GN) or other word1 [15:0] payload. */
  domainId: number;
  flags: number;
  address: bigint;
}

export function eventWords(e: EventEntry, w: Uint32Array): Uint32Array {
  const gn = (e.flags & EVENT_FLAG_GN) !== 0 && e.code === EVENT_IO_PAGE_FAULT;
  w[0] = ((e.devId & 0xffff) | (gn ? ((e.pasid >>> 16) & 0xf) << 16 : 0)) >>> 0;
  w[1] = (((gn ? e.pasid : e.domainId) & 0xffff) | ((e.flags & 0xfff) << 16) | ((e.code & 0xf) << 28)) >>> 0;
  w[2] = Number(e.address & 0xffff_ffffn);
  w[3] = Number((e.address >> 32n) & 0xffff_ffffn);
  return w;
}

export function encodeEvent(e: EventEntry): Uint8Array {
  return new Uint8Array(eventWords(e, new Uint32Array(4)).buffer);
}

export function decodeEvent(b: Uint8Array): EventEntry {
  const v = new DataView(b.buffer, b.byteOffset, 16);
  const w0 = v.getUint32(0, true);
  const w1 = v.getUint32(4, true);
  const flags = (w1 >>> 16) & 0xfff;
  const code = w1 >>> 28;
  const gn = (flags & EVENT_FLAG_GN) !== 0 && code === EVENT_IO_PAGE_FAULT;
  return {
    code, devId: w0 & 0xffff, flags, pasid: gn ? (((w0 >>> 16) & 0xf) << 16) | (w1 & 0xffff) : 0, domainId: gn ? 0 : w1 & 0xffff,
    address: v.getBigUint64(8, true),
  };
}

export const PPR_TYPE_PAGE_SERVICE_REQUEST = 1;
// PPR flags as absolute bit numbers in u64[0].
export const PPR_FLAG_EXEC = 49;
export const PPR_FLAG_READ = 50;
export const PPR_FLAG_WRITE = 53;
export const PPR_FLAG_US = 54;
export const PPR_FLAG_RSVD = 55;
export const PPR_FLAG_GN = 56;

export interface PprEntry {
  devId: number;
  pasid: number;
  /** 10-bit tag: PRG index [8:0], LAST_PAGE [9]. */
  tag: number;
  exec: boolean;
  read: boolean;
  write: boolean;
  user: boolean;
  rsvd: boolean;
  gn: boolean;
  type: number;
  address: bigint;
}

export function encodePpr(p: PprEntry): Uint8Array {
  const flag = (v: boolean, n: number): bigint => put(v, n, n);
  const q0 = BigInt(p.devId & 0xffff) | (BigInt(p.pasid & 0xffff) << 16n) | (BigInt(p.tag & 0x3ff) << 32n) | (BigInt((p.pasid >>> 16) & 0xf) << 42n) |
    flag(p.exec, PPR_FLAG_EXEC) | flag(p.read, PPR_FLAG_READ) | flag(p.write, PPR_FLAG_WRITE) | flag(p.user, PPR_FLAG_US) |
    flag(p.rsvd, PPR_FLAG_RSVD) | flag(p.gn, PPR_FLAG_GN) | (BigInt(p.type & 0xf) << 60n);
  return qwordsToBytes([q0, p.address]);
}

export function decodePpr(b: Uint8Array): PprEntry {
  const v = new DataView(b.buffer, b.byteOffset, 16);
  const q0 = v.getBigUint64(0, true);
  return {
    devId: Number(q0 & 0xffffn), pasid: Number((q0 >> 16n) & 0xffffn) | (Number((q0 >> 42n) & 0xfn) << 16), tag: Number((q0 >> 32n) & 0x3ffn),
    exec: bit(q0, PPR_FLAG_EXEC), read: bit(q0, PPR_FLAG_READ), write: bit(q0, PPR_FLAG_WRITE), user: bit(q0, PPR_FLAG_US), rsvd: bit(q0, PPR_FLAG_RSVD), gn: bit(q0, PPR_FLAG_GN),
    type: Number(q0 >> 60n), address: v.getBigUint64(8, true),
  };
}
