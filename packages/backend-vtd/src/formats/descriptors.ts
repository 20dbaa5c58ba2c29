// Invalidation queue descriptors (256-bit, scalable mode) and page request / page group response
// descriptors (VT-d spec 6.5.2, 7.5). Pure encode/decode over four qwords.
import { addrOf, bit, bytesToQwords, field, num, put, putAddr, qwordsToBytes } from '@viommu/core';

export const QI_DESC_SIZE = 32;
export const PRQ_DESC_SIZE = 32;

export const QI_CC_TYPE = 0x1;
export const QI_IOTLB_TYPE = 0x2;
export const QI_DIOTLB_TYPE = 0x3;
export const QI_IEC_TYPE = 0x4;
export const QI_IWD_TYPE = 0x5;
export const QI_EIOTLB_TYPE = 0x6; // PASID-based IOTLB
export const QI_PC_TYPE = 0x7; // PASID cache
export const QI_DEIOTLB_TYPE = 0x8; // PASID-based device-TLB
export const QI_PGRP_RESP_TYPE = 0x9;
export const QI_PSTRM_RESP_TYPE = 0xa;

// Granularities
export const QI_CC_GRAN_GLOBAL = 1;
export const QI_CC_GRAN_DOMAIN = 2;
export const QI_CC_GRAN_DEVICE = 3;
export const QI_IOTLB_GRAN_GLOBAL = 1;
export const QI_IOTLB_GRAN_DOMAIN = 2;
export const QI_IOTLB_GRAN_PAGE = 3;
export const QI_GRAN_NONG_PASID = 2; // P_IOTLB: all of a PASID
export const QI_GRAN_PSI_PASID = 3; // P_IOTLB: pages of a PASID
export const QI_PC_ALL_PASIDS = 0;
export const QI_PC_PASID_SEL = 1;
export const QI_PC_GLOBAL = 3;

export type QiDescriptor =
  | { type: typeof QI_CC_TYPE; gran: number; did: number; sid: number; fm: number }
  | { type: typeof QI_IOTLB_TYPE; gran: number; dw: boolean; dr: boolean; did: number; am: number; ih: boolean; addr: bigint }
  | { type: typeof QI_DIOTLB_TYPE; sid: number; pfsid: number; qdep: number; size: boolean; addr: bigint }
  | { type: typeof QI_IWD_TYPE; intr: boolean; sw: boolean; fence: boolean; pd: boolean; statusData: number; statusAddr: bigint }
  | { type: typeof QI_EIOTLB_TYPE; gran: number; did: number; pasid: number; am: number; ih: boolean; addr: bigint }
  | { type: typeof QI_PC_TYPE; gran: number; did: number; pasid: number }
  | { type: typeof QI_DEIOTLB_TYPE; sid: number; pfsid: number; qdep: number; pasid: number; global: boolean; size: boolean; addr: bigint }
  | { type: typeof QI_PGRP_RESP_TYPE; pasidPresent: boolean; code: number; rid: number; pasid: number; prgIndex: number }
  | { type: number; raw: bigint[] };

function pfsidBits(pfsid: number): bigint {
  return put(pfsid & 0xf, 12, 15) | put(pfsid >>> 4, 52, 63);
}

function pfsidOf(q0: bigint): number {
  return num(q0, 12, 15) | (num(q0, 52, 63) << 4);
}

export function encodeQiDescriptor(d: QiDescriptor): Uint8Array {
  let q0 = 0n;
  let q1 = 0n;
  if ('raw' in d) return qwordsToBytes([...d.raw, 0n, 0n, 0n, 0n].slice(0, 4));
  const t = put(d.type & 0xf, 0, 3) | put(d.type >>> 4, 9, 11);
  switch (d.type) {
    case QI_CC_TYPE:
      q0 = put(d.gran, 4, 5) | put(d.did, 16, 31) | put(d.sid, 32, 47) | put(d.fm, 48, 49);
      break;
    case QI_IOTLB_TYPE:
      q0 = put(d.gran, 4, 5) | put(d.dw, 6, 6) | put(d.dr, 7, 7) | put(d.did, 16, 31);
      q1 = put(d.am, 0, 5) | put(d.ih, 6, 6) | putAddr(d.addr, 12, 63);
      break;
    case QI_DIOTLB_TYPE:
      q0 = pfsidBits(d.pfsid) | put(d.qdep, 16, 20) | put(d.sid, 32, 47);
      q1 = put(d.size, 0, 0) | putAddr(d.addr, 12, 63);
      break;
    case QI_IWD_TYPE:
      q0 = put(d.intr, 4, 4) | put(d.sw, 5, 5) | put(d.fence, 6, 6) | put(d.pd, 7, 7) | put(d.statusData >>> 0, 32, 63);
      q1 = putAddr(d.statusAddr, 2, 63);
      break;
    case QI_EIOTLB_TYPE:
      q0 = put(d.gran, 4, 5) | put(d.did, 16, 31) | put(d.pasid, 32, 51);
      q1 = put(d.am, 0, 5) | put(d.ih, 6, 6) | putAddr(d.addr, 12, 63);
      break;
    case QI_PC_TYPE:
      q0 = put(d.gran, 4, 5) | put(d.did, 16, 31) | put(d.pasid, 32, 51);
      break;
    case QI_DEIOTLB_TYPE:
      q0 = put(d.qdep, 4, 8) | pfsidBits(d.pfsid) | put(d.sid, 16, 31) | put(d.pasid, 32, 51);
      q1 = put(d.global, 0, 0) | put(d.size, 11, 11) | putAddr(d.addr, 12, 63);
      break;
    case QI_PGRP_RESP_TYPE:
      q0 = put(d.pasidPresent, 4, 4) | put(d.code, 12, 15) | put(d.rid, 16, 31) | put(d.pasid, 32, 51);
      q1 = put(d.prgIndex, 3, 11);
      break;
  }
  return qwordsToBytes([q0 | t, q1, 0n, 0n]);
}

/** Decodes one descriptor; unknown types come back raw (the hardware reports them as IQE). */
export function decodeQiDescriptor(b: Uint8Array): QiDescriptor {
  const q = bytesToQwords(b);
  const q0 = q[0] ?? 0n;
  const q1 = q[1] ?? 0n;
  const type = num(q0, 0, 3) | (num(q0, 9, 11) << 4);
  switch (type) {
    case QI_CC_TYPE:
      return { type, gran: num(q0, 4, 5), did: num(q0, 16, 31), sid: num(q0, 32, 47), fm: num(q0, 48, 49) };
    case QI_IOTLB_TYPE:
      return { type, gran: num(q0, 4, 5), dw: bit(q0, 6), dr: bit(q0, 7), did: num(q0, 16, 31), am: num(q1, 0, 5), ih: bit(q1, 6), addr: addrOf(q1, 12, 63) };
    case QI_DIOTLB_TYPE:
      return { type, sid: num(q0, 32, 47), pfsid: pfsidOf(q0), qdep: num(q0, 16, 20), size: bit(q1, 0), addr: addrOf(q1, 12, 63) };
    case QI_IWD_TYPE:
      return { type, intr: bit(q0, 4), sw: bit(q0, 5), fence: bit(q0, 6), pd: bit(q0, 7), statusData: num(q0, 32, 63), statusAddr: addrOf(q1, 2, 63) };
    case QI_EIOTLB_TYPE:
      return { type, gran: num(q0, 4, 5), did: num(q0, 16, 31), pasid: num(q0, 32, 51), am: num(q1, 0, 5), ih: bit(q1, 6), addr: addrOf(q1, 12, 63) };
    case QI_PC_TYPE:
      return { type, gran: num(q0, 4, 5), did: num(q0, 16, 31), pasid: num(q0, 32, 51) };
    case QI_DEIOTLB_TYPE:
      return {
        type, qdep: num(q0, 4, 8), pfsid: pfsidOf(q0), sid: num(q0, 16, 31), pasid: num(q0, 32, 51), global: bit(q1, 0), size: bit(q1, 11),
        addr: addrOf(q1, 12, 63),
      };
    case QI_PGRP_RESP_TYPE:
      return { type, pasidPresent: bit(q0, 4), code: num(q0, 12, 15), rid: num(q0, 16, 31), pasid: num(q0, 32, 51), prgIndex: num(q1, 3, 11) };
    default:
      return { type, raw: q };
  }
}

/**
 * The range a device-TLB descriptor with S=1 covers: the lowest clear bit of ADDR[63:12] gives the
 * size (bits below it are ones). Returns [first page address, byte length]; length 0 = everything.
 */
export function devTlbRange(addr: bigint, size: boolean): [bigint, bigint] {
  if (!size) return [addr, 4096n];
  let n = 12n;
  while (n < 64n && ((addr >> n) & 1n) === 1n) n++;
  if (n >= 63n) return [0n, 0n];
  const len = 1n << (n + 1n);
  return [addr & ~(len - 1n), len];
}

// --- page requests ----------------------------------------------------------------------------

export const PRQ_TYPE_PAGE_REQUEST = 1;

export interface PageRequestDescriptor {
  pasidPresent: boolean;
  rid: number;
  pasid: number;
  exe: boolean;
  priv: boolean;
  read: boolean;
  write: boolean;
  /** Last page in group. */
  lpig: boolean;
  prgIndex: number;
  addr: bigint;
}

export function encodePageRequest(d: PageRequestDescriptor): Uint8Array {
  const q0 = put(PRQ_TYPE_PAGE_REQUEST, 0, 7) | put(d.pasidPresent, 8, 8) | put(d.rid, 16, 31) | put(d.pasid, 32, 51) |
    put(d.exe, 52, 52) | put(d.priv, 53, 53);
  const q1 = put(d.read, 0, 0) | put(d.write, 1, 1) | put(d.lpig, 2, 2) | put(d.prgIndex, 3, 11) | putAddr(d.addr, 12, 63);
  return qwordsToBytes([q0, q1, 0n, 0n]);
}

export function decodePageRequest(b: Uint8Array): PageRequestDescriptor {
  const [q0 = 0n, q1 = 0n] = bytesToQwords(b);
  return {
    pasidPresent: bit(q0, 8), rid: num(q0, 16, 31), pasid: num(q0, 32, 51), exe: bit(q0, 52), priv: bit(q0, 53),
    read: bit(q1, 0), write: bit(q1, 1), lpig: bit(q1, 2), prgIndex: num(q1, 3, 11), addr: field(q1, 12, 63) << 12n,
  };
}

// --- number-based paths for the queues (no bigint arithmetic per descriptor) -------------------

const TWO32 = 0x1_0000_0000;

function lo32(a: bigint): number {
  return Number(a & 0xffff_ffffn);
}

function hi32(a: bigint): number {
  return Number((a >> 32n) & 0xffff_ffffn);
}

/**
 * The same bits as encodeQiDescriptor, as eight little-endian 32-bit words in `w` (qw0 low, qw0
 * high, qw1 low, ...). The queue writers use it to avoid building bytes per descriptor.
 */
export function qiWords(d: QiDescriptor, w: Uint32Array): void {
  w.fill(0);
  if ('raw' in d) {
    d.raw.slice(0, 4).forEach((q, i) => {
      w[i * 2] = lo32(q);
      w[i * 2 + 1] = hi32(q);
    });
    return;
  }
  let w0 = (d.type & 0xf) | ((d.type >>> 4) << 9);
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  switch (d.type) {
    case QI_CC_TYPE:
      w0 |= (d.gran << 4) | (d.did << 16);
      w1 = d.sid | (d.fm << 16);
      break;
    case QI_IOTLB_TYPE:
      w0 |= (d.gran << 4) | (d.dw ? 0x40 : 0) | (d.dr ? 0x80 : 0) | (d.did << 16);
      w2 = (lo32(d.addr) & ~0xfff) | d.am | (d.ih ? 0x40 : 0);
      w3 = hi32(d.addr);
      break;
    case QI_DIOTLB_TYPE:
      w0 |= ((d.pfsid & 0xf) << 12) | (d.qdep << 16);
      w1 = d.sid | ((d.pfsid >>> 4) << 20);
      w2 = (lo32(d.addr) & ~0xfff) | (d.size ? 1 : 0);
      w3 = hi32(d.addr);
      break;
    case QI_IWD_TYPE:
      w0 |= (d.intr ? 0x10 : 0) | (d.sw ? 0x20 : 0) | (d.fence ? 0x40 : 0) | (d.pd ? 0x80 : 0);
      w1 = d.statusData;
      w2 = lo32(d.statusAddr) & ~3;
      w3 = hi32(d.statusAddr);
      break;
    case QI_EIOTLB_TYPE:
      w0 |= (d.gran << 4) | (d.did << 16);
      w1 = d.pasid;
      w2 = (lo32(d.addr) & ~0xfff) | d.am | (d.ih ? 0x40 : 0);
      w3 = hi32(d.addr);
      break;
    case QI_PC_TYPE:
      w0 |= (d.gran << 4) | (d.did << 16);
      w1 = d.pasid;
      break;
    case QI_DEIOTLB_TYPE:
      w0 |= (d.qdep << 4) | ((d.pfsid & 0xf) << 12) | (d.sid << 16);
      w1 = d.pasid | ((d.pfsid >>> 4) << 20);
      w2 = (lo32(d.addr) & ~0xfff) | (d.global ? 1 : 0) | (d.size ? 0x800 : 0);
      w3 = hi32(d.addr);
      break;
    case QI_PGRP_RESP_TYPE:
      w0 |= (d.pasidPresent ? 0x10 : 0) | (d.code << 12) | (d.rid << 16);
      w1 = d.pasid;
      w2 = d.prgIndex << 3;
      break;
  }
  w[0] = w0 >>> 0;
  w[1] = w1 >>> 0;
  w[2] = w2 >>> 0;
  w[3] = w3 >>> 0;
}

/** decodeQiDescriptor from eight 32-bit words (the hardware's queue reader). */
export function decodeQiWords(w: Uint32Array): QiDescriptor {
  const w0 = w[0]!;
  const w1 = w[1]!;
  const w2 = w[2]!;
  const w3 = w[3]!;
  const type = (w0 & 0xf) | (((w0 >>> 9) & 7) << 4);
  const addr12 = (): bigint => BigInt(w3 * TWO32 + ((w2 & ~0xfff) >>> 0));
  const gran = (w0 >>> 4) & 3;
  switch (type) {
    case QI_CC_TYPE:
      return { type, gran, did: w0 >>> 16, sid: w1 & 0xffff, fm: (w1 >>> 16) & 3 };
    case QI_IOTLB_TYPE:
      return { type, gran, dw: (w0 & 0x40) !== 0, dr: (w0 & 0x80) !== 0, did: w0 >>> 16, am: w2 & 0x3f, ih: (w2 & 0x40) !== 0, addr: addr12() };
    case QI_DIOTLB_TYPE:
      return { type, sid: w1 & 0xffff, pfsid: ((w0 >>> 12) & 0xf) | ((w1 >>> 20) << 4), qdep: (w0 >>> 16) & 0x1f, size: (w2 & 1) !== 0, addr: addr12() };
    case QI_IWD_TYPE:
      return {
        type, intr: (w0 & 0x10) !== 0, sw: (w0 & 0x20) !== 0, fence: (w0 & 0x40) !== 0, pd: (w0 & 0x80) !== 0, statusData: w1,
        statusAddr: BigInt(w3 * TWO32 + ((w2 & ~3) >>> 0)),
      };
    case QI_EIOTLB_TYPE:
      return { type, gran, did: w0 >>> 16, pasid: w1 & 0xfffff, am: w2 & 0x3f, ih: (w2 & 0x40) !== 0, addr: addr12() };
    case QI_PC_TYPE:
      return { type, gran, did: w0 >>> 16, pasid: w1 & 0xfffff };
    case QI_DEIOTLB_TYPE:
      return {
        type, qdep: (w0 >>> 4) & 0x1f, pfsid: ((w0 >>> 12) & 0xf) | ((w1 >>> 20) << 4), sid: w0 >>> 16, pasid: w1 & 0xfffff,
        global: (w2 & 1) !== 0, size: (w2 & 0x800) !== 0, addr: addr12(),
      };
    case QI_PGRP_RESP_TYPE:
      return { type, pasidPresent: (w0 & 0x10) !== 0, code: (w0 >>> 12) & 0xf, rid: w0 >>> 16, pasid: w1 & 0xfffff, prgIndex: (w2 >>> 3) & 0x1ff };
    default: {
      const raw: bigint[] = [];
      for (let i = 0; i < 4; i++) raw.push((BigInt(w[i * 2 + 1]!) << 32n) | BigInt(w[i * 2]!));
      return { type, raw };
    }
  }
}
