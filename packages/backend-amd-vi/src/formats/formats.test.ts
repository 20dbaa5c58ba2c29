// Golden bytes per hardware format (values computed independently from the AMD IOMMU spec layouts
// in amd_iommu_types.h), and round trips.
import { describe, expect, it } from '@jest/globals';
import {
  CMD_COMPL_WAIT, CMD_COMPLETE_PPR, CMD_INV_ALL, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES, CMD_INV_IRT, INV_ALL_PAGES_ADDRESS,
  buildInvAddress, decodeCommand, encodeCommand, invRange, invRangeWords,
} from './commands.js';
import { decodeDte, encodeDte, encodeGcr3Entry, decodeGcr3Entry } from './dte.js';
import { EVENT_FLAG_PR, EVENT_FLAG_RW, EVENT_IO_PAGE_FAULT, decodeEvent, decodePpr, encodeEvent, encodePpr } from './logs.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const words = (b: Uint8Array): Uint32Array => new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + 16));

describe('device table entry', () => {
  const dte = {
    v: true, tv: true, mode: 4, hostRoot: 0x1234_5000, giov: true, gv: true, glx: 1, gcr3: 0x1_2345_6000, ir: true, iw: true, domainId: 0x42, i: true, gpm: 1,
  };
  it('encodes V/TV/Mode/root/GIoV/GV/GLX/GCR3 fragments/IR/IW/DomainID/I/GPM at their bits', () => {
    expect(hex(encodeDte(dte))).toBe('035834120000c07942008a460110000000000000000040000000000000000000');
  });
  it('decodes what it encodes, reassembling the three GCR3 fragments', () => {
    const d = decodeDte(encodeDte(dte));
    expect(d).toMatchObject(dte);
    expect(d.gcr3).toBe(0x1_2345_6000);
  });
  it('GCR3 entries: valid bit and [51:12]', () => {
    expect(encodeGcr3Entry(true, 0x4001_2000)).toBe(0x4001_2001n);
    expect(decodeGcr3Entry(0x000f_ffff_ffff_f001n)).toEqual({ valid: true, addr: 0x000f_ffff_ffff_f000 });
  });
});

describe('command buffer entries', () => {
  it('INVALIDATE_IOMMU_PAGES with a 32 KiB range: S, PDE, address with the size ones', () => {
    const { address, s } = buildInvAddress(0x10000n, 0x17fffn);
    expect([address, s]).toEqual([0x13000n, true]);
    const b = encodeCommand({ op: CMD_INV_IOMMU_PAGES, domainId: 0x42, pasid: 0, s, pde: true, gn: false, address });
    expect(hex(b)).toBe('00000000420000300330010000000000');
    expect(decodeCommand(words(b))).toEqual({ op: CMD_INV_IOMMU_PAGES, domainId: 0x42, pasid: 0, s: true, pde: true, gn: false, address: 0x13000n });
  });
  it('COMPLETION_WAIT with a store address and 64-bit data', () => {
    const c = { op: CMD_COMPL_WAIT, s: true, i: false, f: false, storeAddr: 0x1_2345_6780n, storeData: 0xdead_beef_0000_0001n } as const;
    expect(hex(encodeCommand(c))).toBe('816745230100001001000000efbeadde');
    expect(decodeCommand(words(encodeCommand(c)))).toEqual(c);
  });
  it('INVALIDATE_IOTLB_PAGES splits the PASID over two words; GN', () => {
    const c = { op: CMD_INV_IOTLB_PAGES, devId: 0x310, pasid: 0x1234, maxPend: 0, queueId: 0x310, s: false, gn: true, address: 0x5000n } as const;
    expect(hex(encodeCommand(c))).toBe('10031200100334400450000000000000');
    expect(decodeCommand(words(encodeCommand(c)))).toEqual(c);
  });
  it('COMPLETE_PPR_REQUEST: tag and status in word 3', () => {
    const c = { op: CMD_COMPLETE_PPR, devId: 0x310, pasid: 5, gn: true, tag: 0x1a, status: 2 } as const;
    expect(hex(encodeCommand(c))).toBe('1003000005000070040000001a200000');
    expect(decodeCommand(words(encodeCommand(c)))).toEqual(c);
  });
  it('DEVTAB_ENTRY, INTERRUPT_TABLE and IOMMU_ALL opcodes', () => {
    expect(hex(encodeCommand({ op: CMD_INV_DEV_ENTRY, devId: 0xbeef }))).toBe('efbe0000000000200000000000000000');
    expect(hex(encodeCommand({ op: CMD_INV_IRT, devId: 0x10 }))).toBe('10000000000000500000000000000000');
    expect(hex(encodeCommand({ op: CMD_INV_ALL }))).toBe('00000000000000800000000000000000');
  });
  it('range encoding follows build_inv_address and decodes back to the covering range', () => {
    expect(buildInvAddress(0x5000n, 0x5fffn)).toEqual({ address: 0x5000n, s: false });
    expect(buildInvAddress(0x4000n, 0x5fffn)).toEqual({ address: 0x4000n, s: true }); // 8 KiB: no ones
    expect(buildInvAddress(0n, (1n << 60n) - 1n)).toEqual({ address: INV_ALL_PAGES_ADDRESS, s: true });
    expect(invRange(0x4000n, true)).toEqual({ first: 4, last: 5, all: false });
    expect(invRange(0x13000n, true)).toEqual({ first: 0x10, last: 0x17, all: false });
    expect(invRange(INV_ALL_PAGES_ADDRESS, true).all).toBe(true);
    // The largest encodable size, 2^52 bytes: bit 51 clear, [50:12] set.
    expect(invRange(0x0007_ffff_ffff_f000n, true)).toEqual({ first: 0, last: 2 ** 40 - 1, all: false });
  });
});

describe('event and PPR log entries', () => {
  it('IO_PAGE_FAULT: DeviceID, DomainID, flags, code, address', () => {
    const e = { code: EVENT_IO_PAGE_FAULT, devId: 0x310, pasid: 0, domainId: 7, flags: EVENT_FLAG_RW | EVENT_FLAG_PR, address: 0x4000_1000n };
    expect(hex(encodeEvent(e))).toBe('10030000070030200010004000000000');
    expect(decodeEvent(encodeEvent(e))).toEqual(e);
  });
  it('PPR: DeviceID, split PASID, tag with LAST_PAGE, R/W/GN flags, type 1', () => {
    const p = { devId: 0x310, pasid: 0x12345, tag: 0x201, exec: false, read: true, write: true, user: false, rsvd: false, gn: true, type: 1, address: 0x7000n };
    expect(hex(encodePpr(p))).toBe('10034523010624110070000000000000');
    expect(decodePpr(encodePpr(p))).toEqual(p);
  });
});

describe('invRangeWords (the hardware path) agrees with invRange', () => {
  it('for single pages, power-of-two ranges and everything', () => {
    const out = { first: 0, last: 0 };
    for (const [start, last] of [[0x5000n, 0x5fffn], [0x4000n, 0x5fffn], [0x10000n, 0x17fffn], [0x1_2340_0000n, 0x1_237f_ffffn], [0n, (1n << 60n) - 1n]] as const) {
      const { address, s } = buildInvAddress(start, last);
      const w = new DataView(encodeCommand({ op: CMD_INV_IOMMU_PAGES, domainId: 1, pasid: 0, s, pde: false, gn: false, address }).buffer);
      const all = invRangeWords(w.getUint32(8, true), w.getUint32(12, true), out);
      const ref = invRange(address, s);
      expect(all).toBe(ref.all);
      if (!all) expect(out).toEqual({ first: ref.first, last: ref.last });
    }
  });
});
