// Event queue records: 32 bytes, 4 dwords (vendors.md 2.9; field positions of arm-smmu-v3.h).
import { bytesFromWords, getAddr, getBit, getBits, hi32, lo32, setAddr, setBit, setBits, wordsFromBytes } from './bits.js';

export const EVT_SIZE = 32;

export const EVT_ID_UUT = 0x01;
export const EVT_ID_BAD_STREAMID_CONFIG = 0x02;
export const EVT_ID_STE_FETCH_FAULT = 0x03;
export const EVT_ID_BAD_STE_CONFIG = 0x04;
export const EVT_ID_BAD_ATS_TREQ = 0x05;
export const EVT_ID_STREAM_DISABLED_FAULT = 0x06;
export const EVT_ID_TRANSL_FORBIDDEN = 0x07;
export const EVT_ID_BAD_SUBSTREAMID_CONFIG = 0x08;
export const EVT_ID_CD_FETCH_FAULT = 0x09;
export const EVT_ID_BAD_CD_CONFIG = 0x0a;
export const EVT_ID_WALK_EABT = 0x0b;
export const EVT_ID_TRANSLATION_FAULT = 0x10;
export const EVT_ID_ADDR_SIZE_FAULT = 0x11;
export const EVT_ID_ACCESS_FAULT = 0x12;
export const EVT_ID_PERMISSION_FAULT = 0x13;
export const EVT_ID_TLB_CONFLICT = 0x20;
export const EVT_ID_CFG_CONFLICT = 0x21;
export const EVT_ID_PAGE_REQUEST = 0x24;
export const EVT_ID_VMS_FETCH_FAULT = 0x25;

/** CLASS: what the stage-1 side was doing when a stage-2 fault happened. */
export const EVT_CLASS_CD = 0;
export const EVT_CLASS_TT = 1;
export const EVT_CLASS_IN = 2;

export interface SmmuEvent {
  id: number;
  ssv: boolean;
  ssid: number;
  sid: number;
  stag: number;
  stall: boolean;
  /** Privileged (1) or unprivileged (0) transaction. */
  pnu: boolean;
  /** Instruction (1) or data (0). */
  ind: boolean;
  /** Read (1) or write (0). */
  rnw: boolean;
  s2: boolean;
  class: number;
  ttRead: boolean;
  /** The input address (IOVA), dword 2. */
  inputAddr: number;
  /** Dword 3: the faulting IPA ([51:12]) for translation faults, or the fetch address ([51:3]). */
  addr3: number;
}

export function emptyEvent(): SmmuEvent {
  return {
    id: 0, ssv: false, ssid: 0, sid: 0, stag: 0, stall: false, pnu: false, ind: false, rnw: false, s2: false,
    class: 0, ttRead: false, inputAddr: 0, addr3: 0,
  };
}

/** Events whose dword 3 is a fetch address ([51:3]) rather than an IPA ([51:12]). */
function hasFetchAddr(id: number): boolean {
  return id === EVT_ID_STE_FETCH_FAULT || id === EVT_ID_CD_FETCH_FAULT || id === EVT_ID_WALK_EABT || id === EVT_ID_VMS_FETCH_FAULT;
}

export function decodeEventWords(w: Uint32Array): SmmuEvent {
  const id = getBits(w, 0, 7, 0);
  return {
    id,
    ssv: getBit(w, 0, 11),
    ssid: getBits(w, 0, 31, 12),
    sid: getBits(w, 0, 63, 32),
    stag: getBits(w, 1, 15, 0),
    stall: getBit(w, 1, 31),
    pnu: getBit(w, 1, 33),
    ind: getBit(w, 1, 34),
    rnw: getBit(w, 1, 35),
    s2: getBit(w, 1, 39),
    class: getBits(w, 1, 41, 40),
    ttRead: getBit(w, 1, 44),
    inputAddr: w[5]! * 0x1_0000_0000 + w[4]!,
    addr3: hasFetchAddr(id) ? getAddr(w, 3, 51, 3) : getAddr(w, 3, 51, 12),
  };
}

export function decodeEvent(bytes: Uint8Array): SmmuEvent {
  return decodeEventWords(wordsFromBytes(bytes.subarray(0, EVT_SIZE), new Uint32Array(8)));
}

export function encodeEventWords(e: Partial<SmmuEvent> & { id: number }, w: Uint32Array = new Uint32Array(8)): Uint32Array {
  const f = { ...emptyEvent(), ...e };
  w.fill(0);
  setBits(w, 0, 7, 0, f.id);
  setBit(w, 0, 11, f.ssv);
  setBits(w, 0, 31, 12, f.ssid);
  setBits(w, 0, 63, 32, f.sid);
  setBits(w, 1, 15, 0, f.stag);
  setBit(w, 1, 31, f.stall);
  setBit(w, 1, 33, f.pnu);
  setBit(w, 1, 34, f.ind);
  setBit(w, 1, 35, f.rnw);
  setBit(w, 1, 39, f.s2);
  setBits(w, 1, 41, 40, f.class);
  setBit(w, 1, 44, f.ttRead);
  w[4] = lo32(f.inputAddr);
  w[5] = hi32(f.inputAddr);
  if (hasFetchAddr(f.id)) setAddr(w, 3, 51, 3, f.addr3 - (f.addr3 % 8));
  else setAddr(w, 3, 51, 12, f.addr3 - (f.addr3 % 4096));
  return w;
}

export function encodeEvent(e: Partial<SmmuEvent> & { id: number }): Uint8Array {
  return bytesFromWords(encodeEventWords(e));
}
