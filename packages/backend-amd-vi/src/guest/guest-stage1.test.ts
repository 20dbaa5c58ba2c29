import { describe, expect, it } from '@jest/globals';
import { bytesToQwords } from '@viommu/core';
import * as U from '@viommu/uapi';
import { decodeDteQwords, decodeGcr3Entry } from '../formats/dte.js';
import { AmdGuestStage1, type GuestRam } from './guest-stage1.js';

function ram(base: number, bytes: number): GuestRam & { view: DataView } {
  const buf = new Uint8Array(bytes);
  const view = new DataView(buf.buffer);
  let next = base;
  return {
    view,
    alloc: (n) => {
      const at = Math.ceil(next / 4096) * 4096;
      next = at + n;
      return at;
    },
    readU32: (a) => view.getUint32(a - base, true),
    writeU32: (a, v) => view.setUint32(a - base, v >>> 0, true),
    write: (a, d) => buf.set(d, a - base),
  };
}

describe('AmdGuestStage1', () => {
  it('writes GCR3 entries for its PASIDs and a guest DTE (V, GV, GIoV, PPR, GCR3, DomainID) as AMD_GUEST data', () => {
    const r = ram(0x4000_0000, 1 << 20);
    const g = new AmdGuestStage1(r, { domainId: 0x1234, pasids: [0, 3], ppr: true });
    expect(g.data.type).toBe(U.IOMMU_HWPT_DATA_AMD_GUEST);
    expect(g.data.bytes.length).toBe(32);
    const dte = decodeDteQwords(bytesToQwords(g.data.bytes));
    expect(dte).toMatchObject({ v: true, tv: false, gv: true, giov: true, ppr: true, glx: 0, gcr3: g.gcr3, domainId: 0x1234, mode: 0 });
    const entry = (pasid: number) => decodeGcr3Entry(r.view.getBigUint64(g.gcr3 - 0x4000_0000 + pasid * 8, true));
    expect(entry(0)).toEqual({ valid: true, addr: g.table.root });
    expect(entry(3)).toEqual({ valid: true, addr: g.table.root });
    expect(entry(1).valid).toBe(false);
    // DomainID is DTE bits 79:64: bytes 8-9, little-endian.
    expect([g.data.bytes[8], g.data.bytes[9]]).toEqual([0x34, 0x12]);
  });

  it('withDomainId changes only the DomainID; map replaces a mapping', () => {
    const g = new AmdGuestStage1(ram(0x4000_0000, 1 << 20), { domainId: 5 });
    const other = g.withDomainId(6);
    expect(decodeDteQwords(bytesToQwords(other.bytes)).domainId).toBe(6);
    expect([...other.bytes].filter((b, i) => b !== g.data.bytes[i]).length).toBe(1);
    g.map(0x1000_0000, 0x4001_0000);
    g.map(0x1000_0000, 0x4002_0000);
    expect(g.table.lookup(0x1000_0000)).toBe(0x4002_0000);
  });
});
