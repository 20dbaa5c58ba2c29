// Golden bytes for every hardware format, written out by hand from the VT-d spec bit positions
// (and Linux's iommu.h/pasid.h macros), so an encoder that moves a field fails here.
import { describe, expect, it } from '@jest/globals';
import { bytesToQwords } from '@viommu/core';
import { psiAlignedRange } from '../driver/driver.js';
import { FS_FORMAT, PageTable, SS_FORMAT, type TableMemory } from '../pgtable/table.js';
import {
  decodePageRequest, decodeQiDescriptor, decodeQiWords, qiWords, devTlbRange, encodePageRequest, encodeQiDescriptor, QI_CC_TYPE, QI_DEIOTLB_TYPE, QI_DIOTLB_TYPE,
  QI_EIOTLB_TYPE, QI_IOTLB_TYPE, QI_IWD_TYPE, QI_PC_TYPE, QI_PGRP_RESP_TYPE, type QiDescriptor,
} from './descriptors.js';
import {
  decodeContextEntry, decodePasidDirEntry, decodePasidEntry, decodeRootEntry, encodeContextEntry, encodePasidDirEntry, encodePasidEntry,
  encodeRootEntry,
} from './entries.js';
import { decodeFaultRecord, encodeFaultRecord, faultReasonName } from './fault.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const zeros = (n: number): string => '00'.repeat(n);

describe('translation structures', () => {
  it('root entry: LP/LCTP in qword 0, UP/UCTP in qword 1', () => {
    const b = encodeRootEntry({ lp: true, lctp: 0x12345000n, up: true, uctp: 0xabc000n });
    expect(hex(b)).toBe('0150341200000000' + '01c0ab0000000000');
    expect(decodeRootEntry(b)).toEqual({ lp: true, lctp: 0x12345000n, up: true, uctp: 0xabc000n });
  });

  it('scalable-mode context entry: P, DTE, PASIDE, PRE, PDTS, PASIDDIRPTR, RID_PASID', () => {
    const e = { p: true, fpd: false, dte: true, paside: true, pre: true, pdts: 3, pasidDirPtr: 0x87654000n, ridPasid: 5, ridPriv: false };
    const b = encodeContextEntry(e);
    expect(b.length).toBe(32);
    expect(hex(b)).toBe('1d46658700000000' + '0500000000000000' + zeros(16));
    expect(decodeContextEntry(b)).toEqual(e);
  });

  it('PASID directory entry', () => {
    const b = encodePasidDirEntry({ p: true, pasidTablePtr: 0x1_0000_3000n });
    expect(hex(b)).toBe('0130000001000000');
    expect(decodePasidDirEntry(b)).toEqual({ p: true, fpd: false, pasidTablePtr: 0x1_0000_3000n });
  });

  it('PASID table entry for nested translation (PGTT 3)', () => {
    const e = {
      p: true, fpd: false, aw: 2, pgtt: 3, ssade: false, ssptptr: 0x1_2345_6000n, did: 0x42, pwsnp: true, pgsnp: false,
      sre: true, ere: false, fspm: 1, wpe: true, nxe: false, smep: false, eafe: true, fsptptr: 0x7000_0000n,
    };
    const b = encodePasidEntry(e);
    expect(b.length).toBe(64);
    expect(hex(b)).toBe('c960452301000000' + '4200800000000000' + '9500007000000000' + zeros(40));
    expect(decodePasidEntry(b)).toEqual(e);
  });
});

describe('page-table entries', () => {
  function memory(): TableMemory & { words: Map<number, number> } {
    const words = new Map<number, number>();
    let next = 0x10_0000;
    return {
      words,
      readU32: (a) => words.get(a) ?? 0,
      writeU32: (a, v) => void words.set(a, v >>> 0),
      allocTable: () => (next += 0x1000),
    };
  }
  const qword = (m: ReturnType<typeof memory>, a: number): bigint => (BigInt(m.words.get(a + 4) ?? 0) << 32n) | BigInt(m.words.get(a) ?? 0);

  it('first stage: x86-64 4-level, non-leaf P|RW|US, leaf with the address in 51:12', () => {
    const m = memory();
    const t = new PageTable(m, FS_FORMAT, 4);
    t.map(0x12_3456_7000, 0x9_8765_4000, 4096, 0x27);
    // PML4 index of 0x12_3456_7000 is 0 (bits 47:39), PDPT index 0x48, PD index 0x1a2, PT index 0x167.
    expect(qword(m, t.root)).toBe(BigInt(t.root + 0x1000) | 7n);
    const leafTable = t.root + 0x3000;
    expect(qword(m, leafTable + 0x167 * 8)).toBe(0x9_8765_4027n);
    expect(t.lookup(0x12_3456_7abc)).toBe(0x9_8765_4abc);
    expect(t.unmap(0x12_3456_7000, 8192)).toBe(4096);
    expect(t.lookup(0x12_3456_7000)).toBeUndefined();
  });

  it('second stage: R/W in bits 0/1, present when either is set', () => {
    const m = memory();
    const t = new PageTable(m, SS_FORMAT, 4);
    t.map(0x4000_0000, 0x8000_1000, 4096, 0x1);
    expect(qword(m, t.root)).toBe(BigInt(t.root + 0x1000) | 3n);
    expect(t.lookup(0x4000_0010)).toBe(0x8000_1010);
  });
});

describe('invalidation queue descriptors', () => {
  const cases: [string, QiDescriptor, string][] = [
    ['context-cache, device-selective', { type: QI_CC_TYPE, gran: 3, did: 0, sid: 0x310, fm: 0 }, '3100000010030000' + zeros(8)],
    ['IOTLB, page-selective', { type: QI_IOTLB_TYPE, gran: 3, dw: false, dr: false, did: 9, am: 0, ih: false, addr: 0x5000n }, '3200090000000000' + '0050000000000000'],
    ['device-TLB', { type: QI_DIOTLB_TYPE, sid: 0x310, pfsid: 0x310, qdep: 0, size: true, addr: 0x1000n }, '0300000010031003' + '0110000000000000'],
    ['invalidation wait', { type: QI_IWD_TYPE, intr: false, sw: true, fence: true, pd: false, statusData: 0xdeadbeef, statusAddr: 0x9000n }, '65000000efbeadde' + '0090000000000000'],
    ['PASID-based IOTLB', { type: QI_EIOTLB_TYPE, gran: 3, did: 0x42, pasid: 5, am: 2, ih: true, addr: 0x1234_4000n }, '3600420005000000' + '4240341200000000'],
    ['PASID cache', { type: QI_PC_TYPE, gran: 1, did: 7, pasid: 0x12345 }, '1700070045230100' + zeros(8)],
    ['PASID-based device-TLB', { type: QI_DEIOTLB_TYPE, sid: 0x310, pfsid: 0x310, qdep: 0, pasid: 5, global: false, size: false, addr: 0x2000n }, '0800100305001003' + '0020000000000000'],
    ['page group response', { type: QI_PGRP_RESP_TYPE, pasidPresent: true, code: 1, rid: 0x310, pasid: 3, prgIndex: 7 }, '1910100303000000' + '3800000000000000'],
  ];
  it.each(cases)('%s', (_name, d, golden) => {
    const b = encodeQiDescriptor(d);
    expect(b.length).toBe(32);
    expect(hex(b)).toBe(golden + zeros(16));
    expect(decodeQiDescriptor(b)).toEqual(d);
    // The queues' number-based writer and reader agree with the bigint codec bit for bit.
    const w = new Uint32Array(8);
    qiWords(d, w);
    expect(hex(new Uint8Array(w.buffer))).toBe(golden + zeros(16));
    expect(decodeQiWords(w)).toEqual(d);
  });

  it('an unknown type decodes raw (the hardware reports IQE for it)', () => {
    const b = new Uint8Array(32);
    b[0] = 0xf;
    expect(decodeQiDescriptor(b)).toMatchObject({ type: 0xf, raw: expect.any(Array) });
  });

  it('device-TLB size encoding: lowest clear address bit gives the range; all ones below bit 63 = everything', () => {
    expect(devTlbRange(0x5000n, false)).toEqual([0x5000n, 4096n]);
    expect(devTlbRange(0x2000n, true)).toEqual([0x2000n, 0x2000n]);
    expect(devTlbRange(0x7000n, true)).toEqual([0n, 0x10000n]);
    expect(devTlbRange((1n << 63n) - 1n - 0xfffn, true)).toEqual([0n, 0n]);
  });

  it('the aligned PSI range of cache.c (order 52 = everything)', () => {
    expect(psiAlignedRange(0x1000n, 0x1fffn)).toEqual([0x1000n, 0]);
    expect(psiAlignedRange(0x1000n, 0x2fffn)).toEqual([0n, 2]);
    expect(psiAlignedRange(0x1234_5000n, 0x1234_5fffn)).toEqual([0x1234_5000n, 0]);
    expect(psiAlignedRange(0x4000n, 0x7fffn)).toEqual([0x4000n, 2]);
    expect(psiAlignedRange(0n, (1n << 64n) - 0x1001n)).toEqual([0n, 52]);
  });
});

describe('page requests and fault records', () => {
  it('page request descriptor', () => {
    const d = { pasidPresent: true, rid: 0x310, pasid: 3, exe: false, priv: false, read: true, write: true, lpig: true, prgIndex: 7, addr: 0x6000_0000n };
    const b = encodePageRequest(d);
    expect(hex(b)).toBe('0101100303000000' + '3f00006000000000' + zeros(16));
    expect(decodePageRequest(b)).toEqual(d);
  });

  it('fault recording register: reason in 103:96, source-id 79:64, PASID 123:104, T (read) 126, F 127', () => {
    const r = { addr: 0x1234_5000n, sid: 0x310, pasidPresent: true, reason: 0x71, pasid: 5, read: true, f: true };
    const [lo, hi] = encodeFaultRecord(r);
    expect(lo).toBe(0x1234_5000n);
    expect(hi).toBe(0xc000_0000_0000_0000n | (5n << 40n) | (0x71n << 32n) | (1n << 31n) | 0x310n);
    expect(decodeFaultRecord(lo, hi)).toEqual(r);
    expect(faultReasonName(0x71)).toBe('DMAR_0x71_SM_FS_NOT_PRESENT');
    expect(bytesToQwords(new Uint8Array(16)).length).toBe(2);
  });
});
