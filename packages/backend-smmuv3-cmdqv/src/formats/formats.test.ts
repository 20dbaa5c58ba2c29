import { describe, expect, it } from '@jest/globals';
import { encodeCd, cdFromBytes } from './cd.js';
import {
  CMDQ_OP_ATC_INV, CMDQ_OP_CFGI_CD, CMDQ_OP_CFGI_STE, CMDQ_OP_CMD_SYNC, CMDQ_OP_PRI_RESP, CMDQ_OP_RESUME,
  CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA, CMDQ_OP_TLBI_S2_IPA, COMMAND_LAYOUT, type Command, decodeCommand, emptyCommand,
  encodeCommand,
} from './command.js';
import { EVT_ID_STE_FETCH_FAULT, EVT_ID_TRANSLATION_FAULT, decodeEvent, encodeEvent } from './event.js';
import { STE_CFG_NESTED, encodeSte, steFromBytes } from './ste.js';

/** Little-endian bytes of 64-bit dwords, computed independently of the codec. */
function le64(...dwords: bigint[]): Uint8Array {
  const out = new Uint8Array(dwords.length * 8);
  const view = new DataView(out.buffer);
  dwords.forEach((d, i) => view.setBigUint64(i * 8, d, true));
  return out;
}

describe('STE', () => {
  it('encodes a nested STE to the architectural bytes', () => {
    const ste = {
      v: true, config: STE_CFG_NESTED, s1ContextPtr: 0x8_1234_5640, s1CdMax: 20, s1dss: 2, s1cir: 1, s1cor: 1,
      s1csh: 3, mev: true, s2fwb: true, eats: 1, shcfg: 1, s2vmid: 0xbeef, s2t0sz: 24, s2sl0: 1, s2ir0: 1,
      s2or0: 1, s2sh0: 3, s2tg: 0, s2ps: 5, s2aa64: true, s2ptw: true, s2r: true, s2ttb: 0xf_ffff_f000,
    };
    const expected = le64(
      1n | (7n << 1n) | 0x8_1234_5640n | (20n << 59n),
      2n | (1n << 2n) | (1n << 4n) | (3n << 6n) | (1n << 19n) | (1n << 25n) | (1n << 28n) | (1n << 44n),
      0xbeefn | (24n << 32n) | (1n << 38n) | (1n << 40n) | (1n << 42n) | (3n << 44n) | (5n << 48n) | (1n << 51n) | (1n << 54n) | (1n << 58n),
      0xf_ffff_f000n,
      0n, 0n, 0n, 0n,
    );
    const bytes = encodeSte(ste);
    expect(bytes).toEqual(expected);
    expect(steFromBytes(bytes)).toMatchObject(ste);
  });

  it('decodes S1ContextPtr as an in-place address and S1CDMax from the top bits', () => {
    const ste = steFromBytes(le64(0xf800_0000_0000_0fcbn, 0n, 0n, 0n, 0n, 0n, 0n, 0n));
    expect(ste.v).toBe(true);
    expect(ste.config).toBe(5);
    expect(ste.s1fmt).toBe(0);
    expect(ste.s1ContextPtr).toBe(0xfc0);
    expect(ste.s1CdMax).toBe(31);
  });
});

describe('CD', () => {
  it('encodes a 4 KiB, 48-bit, ASID-tagged CD to the architectural bytes', () => {
    const cd = {
      t0sz: 16, tg0: 0, irgn0: 1, orgn0: 1, sh0: 3, epd1: true, v: true, ips: 5, aa64: true, r: true, a: true,
      aset: true, asid: 0x1234, ttb0: 0x1_2345_6000, mairLo: 0x0404ff44, mairHi: 0x000c0400,
    };
    const expected = le64(
      16n | (1n << 8n) | (1n << 10n) | (3n << 12n) | (1n << 30n) | (1n << 31n) | (5n << 32n) | (1n << 41n) | (1n << 45n) | (1n << 46n) | (1n << 47n) | (0x1234n << 48n),
      0x1_2345_6000n,
      0n,
      0x000c0400_0404ff44n,
      0n, 0n, 0n, 0n,
    );
    const bytes = encodeCd(cd);
    expect(bytes).toEqual(expected);
    expect(cdFromBytes(bytes)).toMatchObject(cd);
  });
});

describe('commands', () => {
  const cases: [string, Parameters<typeof encodeCommand>[0], bigint, bigint][] = [
    ['CFGI_STE', { opcode: CMDQ_OP_CFGI_STE, sid: 0x10203, leaf: true }, 0x03n | (0x10203n << 32n), 1n],
    ['CFGI_CD', { opcode: CMDQ_OP_CFGI_CD, sid: 7, ssid: 0xabcde, leaf: true }, 0x05n | (0xabcden << 12n) | (7n << 32n), 1n],
    ['TLBI_NH_ASID', { opcode: CMDQ_OP_TLBI_NH_ASID, vmid: 3, asid: 0xffff }, 0x11n | (3n << 32n) | (0xffffn << 48n), 0n],
    [
      'TLBI_NH_VA range',
      { opcode: CMDQ_OP_TLBI_NH_VA, vmid: 9, asid: 5, num: 31, scale: 3, leaf: true, ttl: 3, tg: 1, addr: 0xffff_ffff_f000 },
      0x12n | (31n << 12n) | (3n << 20n) | (9n << 32n) | (5n << 48n),
      1n | (3n << 8n) | (1n << 10n) | 0xffff_ffff_f000n,
    ],
    ['TLBI_S2_IPA', { opcode: CMDQ_OP_TLBI_S2_IPA, vmid: 1, addr: 0x4000_0000 }, 0x2an | (1n << 32n), 0x4000_0000n],
    [
      'ATC_INV',
      { opcode: CMDQ_OP_ATC_INV, ssv: true, ssid: 0x10, sid: 0x100, size: 52, addr: 0 },
      0x40n | (1n << 11n) | (0x10n << 12n) | (0x100n << 32n),
      52n,
    ],
    ['PRI_RESP', { opcode: CMDQ_OP_PRI_RESP, sid: 2, ssid: 1, prgIndex: 0x1ff, resp: 2 }, 0x41n | (1n << 12n) | (2n << 32n), 0x1ffn | (2n << 12n)],
    ['RESUME', { opcode: CMDQ_OP_RESUME, sid: 4, resp: 1, stag: 0xcafe }, 0x44n | (1n << 12n) | (4n << 32n), 0xcafen],
    ['CMD_SYNC', { opcode: CMDQ_OP_CMD_SYNC, cs: 1, msh: 3, msiAttr: 0xf, msiData: 0x1234, addr: 0x8000_0004 }, 0x46n | (1n << 12n) | (3n << 22n) | (0xfn << 24n) | (0x1234n << 32n), 0x8000_0004n],
  ];
  it.each(cases)('%s encodes to golden bytes and decodes back', (_name, cmd, d0, d1) => {
    const bytes = encodeCommand(cmd);
    expect(bytes).toEqual(le64(d0, d1));
    expect(decodeCommand(bytes)).toMatchObject(cmd);
  });

  it('decodes only the fields an opcode carries', () => {
    // An NH_ASID entry with garbage in the VA dword: the decoder must not report an address.
    const cmd = decodeCommand(le64(0x11n | (1n << 32n), 0xffff_f000n));
    expect(cmd.addr).toBe(0);
    expect(cmd.vmid).toBe(1);
  });
});

describe('events', () => {
  it('encodes a stage-2 translation fault during a stage-1 table walk', () => {
    const evt = {
      id: EVT_ID_TRANSLATION_FAULT, ssv: true, ssid: 3, sid: 0x42, rnw: true, s2: true, class: 1, ttRead: true,
      inputAddr: 0x7fff_1234_5000, addr3: 0x8_0000_1000,
    };
    const bytes = encodeEvent(evt);
    expect(bytes).toEqual(
      le64(
        0x10n | (1n << 11n) | (3n << 12n) | (0x42n << 32n),
        (1n << 35n) | (1n << 39n) | (1n << 40n) | (1n << 44n),
        0x7fff_1234_5000n,
        0x8_0000_1000n,
      ),
    );
    expect(decodeEvent(bytes)).toMatchObject(evt);
  });

  it('keeps fetch addresses at 8-byte resolution', () => {
    const bytes = encodeEvent({ id: EVT_ID_STE_FETCH_FAULT, sid: 1, addr3: 0x1238 });
    expect(bytes).toEqual(le64(0x03n | (1n << 32n), 0n, 0n, 0x1238n));
    expect(decodeEvent(bytes).addr3).toBe(0x1238);
  });
});

describe('command layout', () => {
  it('decodeCommandInto reads back every field COMMAND_LAYOUT writes, for every opcode, and nothing else', () => {
    expect(COMMAND_LAYOUT.length).toBe(19);
    for (const [opcode, fields] of COMMAND_LAYOUT) {
      // Every field at its widest value (all ones; an address with its low bits clear).
      const c: Command = { ...emptyCommand(), opcode, ssv: true };
      const values = c as unknown as Record<string, number | boolean>;
      for (const f of fields) {
        if ('bit' in f) values[f.key] = true;
        else values[f.key] = (2 ** (f.hi - f.lo + 1) - 1) * (f.addr === true ? 2 ** f.lo : 1);
      }
      expect(decodeCommand(encodeCommand(c))).toEqual(c);
    }
  });

  it('decodes a full 32-bit StreamID as an unsigned number', () => {
    expect(decodeCommand(encodeCommand({ opcode: CMDQ_OP_CFGI_STE, sid: 0xffff_ffff })).sid).toBe(0xffff_ffff);
    expect(decodeEvent(encodeEvent({ id: EVT_ID_TRANSLATION_FAULT, sid: 0x8000_0001 })).sid).toBe(0x8000_0001);
  });
});
