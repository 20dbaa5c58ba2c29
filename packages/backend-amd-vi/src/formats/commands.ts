// Command buffer entries (16 bytes = 4 u32, opcode in u32[1] bits 31:28; amd_iommu_types.h CMD_*).
// Pure encode/decode; addresses as bigint (this is not a hot path: one command per invalidation).

export const CMD_SIZE = 16;
export const CMD_COMPL_WAIT = 0x1;
export const CMD_INV_DEV_ENTRY = 0x2;
export const CMD_INV_IOMMU_PAGES = 0x3;
export const CMD_INV_IOTLB_PAGES = 0x4;
export const CMD_INV_IRT = 0x5;
export const CMD_COMPLETE_PPR = 0x7;
export const CMD_INV_ALL = 0x8;

/** S=1 with every address bit set: the whole address space (CMD_INV_IOMMU_ALL_PAGES_ADDRESS). */
export const INV_ALL_PAGES_ADDRESS = 0x7fff_ffff_ffff_f000n;

export type Command =
  | { op: typeof CMD_COMPL_WAIT; s: boolean; i: boolean; f: boolean; storeAddr: bigint; storeData: bigint }
  | { op: typeof CMD_INV_DEV_ENTRY; devId: number }
  | { op: typeof CMD_INV_IOMMU_PAGES; domainId: number; pasid: number; s: boolean; pde: boolean; gn: boolean; address: bigint }
  | { op: typeof CMD_INV_IOTLB_PAGES; devId: number; pasid: number; maxPend: number; queueId: number; s: boolean; gn: boolean; address: bigint }
  | { op: typeof CMD_INV_IRT; devId: number }
  | { op: typeof CMD_COMPLETE_PPR; devId: number; pasid: number; gn: boolean; tag: number; status: number }
  | { op: typeof CMD_INV_ALL }
  | { op: number; raw: Uint32Array };

const lo32 = (x: bigint): number => Number(x & 0xffff_ffffn);
const hi32 = (x: bigint): number => Number((x >> 32n) & 0xffff_ffffn);

/** Writes a command's four words into `w` (no allocation: the driver's submit path reuses `w`). */
export function commandWords(c: Command, w: Uint32Array): Uint32Array {
  w.fill(0);
  switch (c.op) {
    case CMD_COMPL_WAIT: {
      const x = c as Extract<Command, { op: 1 }>;
      w[0] = (lo32(x.storeAddr) & ~7) | (x.s ? 1 : 0) | (x.i ? 2 : 0) | (x.f ? 4 : 0);
      w[1] = hi32(x.storeAddr) & 0xfffff;
      w[2] = lo32(x.storeData);
      w[3] = hi32(x.storeData);
      break;
    }
    case CMD_INV_DEV_ENTRY:
    case CMD_INV_IRT:
      w[0] = (c as { devId: number }).devId & 0xffff;
      break;
    case CMD_INV_IOMMU_PAGES: {
      const x = c as Extract<Command, { op: 3 }>;
      w[0] = x.pasid & 0xfffff;
      w[1] = x.domainId & 0xffff;
      w[2] = (lo32(x.address) & ~0xfff) | (x.s ? 1 : 0) | (x.pde ? 2 : 0) | (x.gn ? 4 : 0);
      w[3] = hi32(x.address);
      break;
    }
    case CMD_INV_IOTLB_PAGES: {
      const x = c as Extract<Command, { op: 4 }>;
      w[0] = (x.devId & 0xffff) | (((x.pasid >> 8) & 0xff) << 16) | ((x.maxPend & 0xff) << 24);
      w[1] = (x.queueId & 0xffff) | ((x.pasid & 0xff) << 16);
      w[2] = (lo32(x.address) & ~0xfff) | (x.s ? 1 : 0) | (x.gn ? 4 : 0);
      w[3] = hi32(x.address);
      break;
    }
    case CMD_COMPLETE_PPR: {
      const x = c as Extract<Command, { op: 7 }>;
      w[0] = x.devId & 0xffff;
      w[1] = x.pasid & 0xfffff;
      w[2] = x.gn ? 4 : 0;
      w[3] = (x.tag & 0x1ff) | ((x.status & 0xf) << 12);
      break;
    }
    case CMD_INV_ALL:
      break;
    default:
      w.set((c as { raw: Uint32Array }).raw.subarray(0, 4));
      return w;
  }
  w[1] = ((w[1]! & 0x0fff_ffff) | (c.op << 28)) >>> 0;
  for (let i = 0; i < 4; i++) w[i] = w[i]! >>> 0;
  return w;
}

export function encodeCommand(c: Command): Uint8Array {
  const w = commandWords(c, new Uint32Array(4));
  return new Uint8Array(w.buffer.slice(0));
}

export function decodeCommand(w: ArrayLike<number>): Command {
  const w0 = w[0]! >>> 0;
  const w1 = w[1]! >>> 0;
  const w2 = w[2]! >>> 0;
  const w3 = w[3]! >>> 0;
  const op = w1 >>> 28;
  const addr = (BigInt(w3) << 32n) | BigInt((w2 & ~0xfff) >>> 0);
  switch (op) {
    case CMD_COMPL_WAIT:
      return { op, s: (w0 & 1) !== 0, i: (w0 & 2) !== 0, f: (w0 & 4) !== 0, storeAddr: (BigInt(w1 & 0xfffff) << 32n) | BigInt((w0 & ~7) >>> 0), storeData: (BigInt(w3) << 32n) | BigInt(w2) };
    case CMD_INV_DEV_ENTRY:
      return { op, devId: w0 & 0xffff };
    case CMD_INV_IRT:
      return { op, devId: w0 & 0xffff };
    case CMD_INV_IOMMU_PAGES:
      return { op, domainId: w1 & 0xffff, pasid: w0 & 0xfffff, s: (w2 & 1) !== 0, pde: (w2 & 2) !== 0, gn: (w2 & 4) !== 0, address: BigInt.asUintN(64, addr) };
    case CMD_INV_IOTLB_PAGES:
      return {
        op, devId: w0 & 0xffff, pasid: (((w0 >>> 16) & 0xff) << 8) | ((w1 >>> 16) & 0xff), maxPend: w0 >>> 24, queueId: w1 & 0xffff,
        s: (w2 & 1) !== 0, gn: (w2 & 4) !== 0, address: BigInt.asUintN(64, addr),
      };
    case CMD_COMPLETE_PPR:
      return { op, devId: w0 & 0xffff, pasid: w1 & 0xfffff, gn: (w2 & 4) !== 0, tag: w3 & 0x1ff, status: (w3 >>> 12) & 0xf };
    case CMD_INV_ALL:
      return { op };
    default:
      return { op, raw: Uint32Array.from([w0, w1, w2, w3]) };
  }
}

/**
 * The address/S encoding of INVALIDATE_IOMMU_PAGES / IOTLB_PAGES for the inclusive range
 * [start, last], as iommu.c builds it: one page with S=0; else S=1 with the address bits below the
 * range's size set to 1 (the size is 2^fls(start ^ last), so an 8 KiB range needs no 1s); sizes
 * beyond 2^52 become "everything".
 */
export function buildInvAddress(start: bigint, last: bigint): { address: bigint; s: boolean } {
  const a = BigInt.asUintN(64, start) & ~0xfffn;
  const szLg2 = (a ^ BigInt.asUintN(64, last)).toString(2).length;
  if (a === BigInt.asUintN(64, last) || szLg2 <= 12) return { address: a, s: false };
  if (szLg2 > 52) return { address: INV_ALL_PAGES_ADDRESS, s: true };
  const ones = szLg2 > 13 ? ((1n << BigInt(szLg2 - 1)) - 1n) & ~0xfffn : 0n;
  return { address: a | ones, s: true };
}

/**
 * invRange from the command's raw words 2 and 3 (no bigint: the hardware's hot path). Writes
 * [first, last] page numbers into `out`; returns true for "everything".
 */
export function invRangeWords(w2: number, w3: number, out: { first: number; last: number }): boolean {
  const page = (w3 >>> 0) * 2 ** 20 + ((w2 >>> 0) >>> 12);
  if ((w2 & 1) === 0) {
    out.first = out.last = page;
    return false;
  }
  let t = 0;
  let p = page;
  while (t < 52 && p % 2 === 1) {
    p = (p - 1) / 2;
    t++;
  }
  if (t >= 40) return true;
  const n = 2 ** (t + 1);
  out.first = Math.floor(page / n) * n;
  out.last = out.first + n - 1;
  return false;
}

/** Decodes the address/S pair into an inclusive page-number range [first, last] (4 KiB pages). */
export function invRange(address: bigint, s: boolean): { first: number; last: number; all: boolean } {
  const page = address >> 12n;
  if (!s) return { first: Number(page), last: Number(page), all: false };
  let t = 0;
  while (t < 52 && ((page >> BigInt(t)) & 1n) === 1n) t++;
  if (t >= 40) return { first: 0, last: Number.MAX_SAFE_INTEGER, all: true };
  const n = 1n << BigInt(t + 1);
  const first = (page / n) * n;
  return { first: Number(first), last: Number(first + n - 1n), all: false };
}
