// Event queue records: 32 bytes, 4 dwords (vendors.md 2.9; field positions of arm-smmu-v3.h).
import { type BitField, bytesFromWords, getAddr, hi32, lo32, readFields, setAddr, wordsFromBytes, writeFields } from './bits.js';

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

/** Field positions common to every event; dwords 2 and 3 (the addresses) follow below. */
const EVENT_FIELDS: readonly BitField<SmmuEvent>[] = [
  { key: 'id', d: 0, hi: 7, lo: 0 },
  { key: 'ssv', d: 0, bit: 11 },
  { key: 'ssid', d: 0, hi: 31, lo: 12 },
  { key: 'sid', d: 0, hi: 63, lo: 32 },
  { key: 'stag', d: 1, hi: 15, lo: 0 },
  { key: 'stall', d: 1, bit: 31 },
  { key: 'pnu', d: 1, bit: 33 },
  { key: 'ind', d: 1, bit: 34 },
  { key: 'rnw', d: 1, bit: 35 },
  { key: 's2', d: 1, bit: 39 },
  { key: 'class', d: 1, hi: 41, lo: 40 },
  { key: 'ttRead', d: 1, bit: 44 },
];

export function decodeEventWords(w: Uint32Array): SmmuEvent {
  const e = readFields(w, EVENT_FIELDS, emptyEvent());
  e.inputAddr = w[5]! * 0x1_0000_0000 + w[4]!;
  e.addr3 = hasFetchAddr(e.id) ? getAddr(w, 3, 51, 3) : getAddr(w, 3, 51, 12);
  return e;
}

export function decodeEvent(bytes: Uint8Array): SmmuEvent {
  return decodeEventWords(wordsFromBytes(bytes.subarray(0, EVT_SIZE), new Uint32Array(8)));
}

export function encodeEventWords(e: Partial<SmmuEvent> & { id: number }, w: Uint32Array = new Uint32Array(8)): Uint32Array {
  const f = { ...emptyEvent(), ...e };
  w.fill(0);
  writeFields(w, EVENT_FIELDS, f);
  w[4] = lo32(f.inputAddr);
  w[5] = hi32(f.inputAddr);
  if (hasFetchAddr(f.id)) setAddr(w, 3, 51, 3, f.addr3 - (f.addr3 % 8));
  else setAddr(w, 3, 51, 12, f.addr3 - (f.addr3 % 4096));
  return w;
}

export function encodeEvent(e: Partial<SmmuEvent> & { id: number }): Uint8Array {
  return bytesFromWords(encodeEventWords(e));
}
