// The VFIO type1 container ioctls on the iommufd (spec 12; the kernel's vfio_compat.c): legacy
// VMMs drive the "compat IOAS" with them. Command numbers below 0x80 reach here from the dispatcher.

import {
  SystemError,
  VFIO_GET_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_SET_IOMMU,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_API_VERSION,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_DMA_CC_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
} from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import { IOMMU_READ, IOMMU_WRITE } from '../driver/domain.js';
import { setVfioCompatHandler } from '../ioctl/dispatch.js';
import type { UcmdProcess, UserArg } from '../ioctl/ucmd.js';
import type { AddressSpace } from '../host/address-space.js';
import { OBJ_STATE } from '../object/object.js';
import { MemlockUser, UnmapError, ULONG_MAX } from '../ioas/index.js';
import type { Ioas } from './ioas.js';


/** The current compat IOAS (get_compat_ioas): ENODEV when none is selected. */
export function getCompatIoas(ctx: IommufdContext): Ioas {
  const ioas = ctx.vfioIoas as Ioas | undefined;
  if (!ioas || ioas.state !== OBJ_STATE.LIVE) throw new SystemError('ENODEV', 'ioctl', 'no compat IOAS');
  return ioas;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
}
function putU64(b: Uint8Array, o: number, v: bigint): void {
  for (let i = 0; i < 8; i++) b[o + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

function intArg(user: UserArg): number {
  return typeof user.arg === 'number' ? user.arg : 0;
}

function checkExtension(ctx: IommufdContext, type: number): number {
  switch (type) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return ctx.noIommuMode ? 0 : 1;
    case VFIO_DMA_CC_IOMMU: {
      const ioas = getCompatIoas(ctx);
      return ioas.hwpts.every((h) => h.enforceCacheCoherency) ? 1 : 0;
    }
    default:
      // VFIO_NOIOMMU_IOMMU needs CONFIG_VFIO_NOIOMMU, which the modelled kernel does not set.
      return 0;
  }
}

function setIommu(ctx: IommufdContext, type: number): number {
  if ((type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) || ctx.noIommuMode) throw new SystemError('EINVAL', 'ioctl', `VFIO_SET_IOMMU type ${type}`);
  const ioas = getCompatIoas(ctx);
  // Type1 (not v2) unmaps may split mappings, which needs small pages.
  if (type === VFIO_TYPE1_IOMMU) ioas.iopt.setHugePages(false);
  return 0;
}

function mapDma(ctx: IommufdContext, user: UserArg, memory: AddressSpace, proc: UcmdProcess): number {
  const minsz = 32;
  const map = user.read(0, minsz);
  const argsz = u32(map, 0);
  const flags = u32(map, 4);
  if (argsz < minsz || flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) throw new SystemError('EINVAL', 'ioctl', 'VFIO_IOMMU_MAP_DMA argsz/flags');
  const prot = (flags & VFIO_DMA_MAP_FLAG_READ ? IOMMU_READ : 0) | (flags & VFIO_DMA_MAP_FLAG_WRITE ? IOMMU_WRITE : 0);
  const ioas = getCompatIoas(ctx);
  // Type1 maps at a fixed IOVA, and accepts a mapping without any permission.
  ioas.iopt.mapUser(memory, u64(map, 8), u64(map, 24), { iova: u64(map, 16), prot, owner: proc.task ?? { mm: memory, user: new MemlockUser(0), memlockLimit: Infinity, capIpcLock: true }, rlimitMode: ctx.accountMode === 1 ? 1 : 0 });
  return 0;
}

function unmapDma(ctx: IommufdContext, user: UserArg): number {
  const minsz = 24;
  const unmap = user.read(0, minsz);
  const argsz = u32(unmap, 0);
  const flags = u32(unmap, 4);
  if (argsz < minsz || flags & ~VFIO_DMA_UNMAP_FLAG_ALL) throw new SystemError('EINVAL', 'ioctl', 'VFIO_IOMMU_UNMAP_DMA argsz/flags');
  const ioas = getCompatIoas(ctx);
  const iova = u64(unmap, 8);
  const size = u64(unmap, 16);
  if (flags & VFIO_DMA_UNMAP_FLAG_ALL && (iova !== 0n || size !== 0n)) throw new SystemError('EINVAL', 'ioctl', 'UNMAP_ALL with a range');
  if (!(flags & VFIO_DMA_UNMAP_FLAG_ALL) && !ioas.iopt.hugePages) {
    // Type1 (v1) may unmap part of a mapping: cut areas so that the range's first and last bytes
    // are area ends (a failed cut returns before anything is written back). Nothing lies below
    // IOVA 0, so no cut there; the sum wraps as an unsigned long.
    const ends = [(iova + size - 1n) & ULONG_MAX];
    if (iova !== 0n) ends.push(iova - 1n);
    ioas.iopt.cutIova(ends);
  }
  let unmapped = 0n;
  let err: unknown;
  try {
    unmapped = flags & VFIO_DMA_UNMAP_FLAG_ALL ? ioas.iopt.unmapAll() : ioas.iopt.unmap(iova, size);
  } catch (e) {
    err = e;
    // An unmap that failed part way keeps what it removed, and reports it.
    if (e instanceof UnmapError) unmapped = e.unmapped;
  }
  // The partial count goes back even when the unmap failed part way.
  putU64(unmap, 16, unmapped);
  user.write(0, unmap);
  if (err) throw err;
  return 0;
}

function pageSizes(ioas: Ioas): bigint {
  const ULONG = (1n << 64n) - 1n;
  const PAGE = 4096n;
  let bitmap = ULONG;
  for (const d of ioas.iopt.domains()) bitmap &= d.geometry.pgsizeBitmap;
  if (bitmap & (PAGE - 1n)) {
    bitmap &= ~(PAGE - 1n) & ULONG;
    bitmap |= PAGE;
  }
  const align = BigInt(ioas.iopt.alignment);
  return bitmap > align ? bitmap : align;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(o, v, true);
}

/** VFIO_IOMMU_GET_INFO: page sizes, then the DMA_AVAIL and IOVA_RANGE capabilities as room allows. */
function getInfo(ctx: IommufdContext, user: UserArg): number {
  const INFO_SIZE = 24;
  let minsz = 16; // offsetofend(iova_pgsizes)
  const head = user.read(0, minsz);
  const argsz = u32(head, 0);
  if (argsz < minsz) throw new SystemError('EINVAL', 'ioctl', 'VFIO_IOMMU_GET_INFO argsz');
  minsz = Math.min(argsz, INFO_SIZE);
  const ioas = getCompatIoas(ctx);
  const info = new Uint8Array(INFO_SIZE);
  let flags = 1; // VFIO_IOMMU_INFO_PGSIZES
  putU64(info, 8, pageSizes(ioas));
  const ranges = ioas.iopt.iovaRanges();
  // Each capability writes itself only where the user's buffer has room for it.
  const fills: ((at: number, avail: number) => number)[] = [
    (at, avail) => {
      const cap = new Uint8Array(12);
      cap[0] = 3; // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
      cap[2] = 1; // version
      putU32(cap, 8, 0xffffffff);
      if (avail >= cap.length) user.write(at, cap);
      return cap.length;
    },
    (at, avail) => {
      const n = ranges.length;
      for (let i = 0; i < n; i++) {
        if (avail >= 16 + 16 * (i + 1)) {
          const r = new Uint8Array(16);
          putU64(r, 0, ranges[i]!.start);
          putU64(r, 8, ranges[i]!.last);
          user.write(at + 16 + 16 * i, r);
        }
      }
      if (avail >= 16 + 16 * n) {
        const hdr = new Uint8Array(16);
        hdr[0] = 1; // VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
        hdr[2] = 1;
        putU32(hdr, 8, n);
        user.write(at, hdr);
      }
      return 16 + 16 * n;
    },
  ];
  let total = INFO_SIZE;
  let lastCap = -1;
  for (const fill of fills) {
    const size = argsz > total ? fill(total, argsz - total) : fill(total, 0);
    const aligned = (size + 7) & ~7;
    if (lastCap >= 0 && argsz >= total) {
      const next = new Uint8Array(4);
      putU32(next, 0, total);
      user.write(lastCap + 4, next);
    }
    lastCap = total;
    total += aligned;
  }
  if (argsz >= total) putU32(info, 16, INFO_SIZE);
  putU32(info, 0, total);
  flags |= 2; // VFIO_IOMMU_INFO_CAPS
  putU32(info, 4, flags);
  user.write(0, info.subarray(0, minsz));
  return 0;
}

export function vfioCompatIoctl(ctx: IommufdContext, request: number, user: UserArg, memory: AddressSpace, proc: UcmdProcess): number {
  switch (request) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_SET_IOMMU:
      return setIommu(ctx, intArg(user));
    case VFIO_CHECK_EXTENSION:
      return checkExtension(ctx, intArg(user));
    case VFIO_IOMMU_GET_INFO:
      return getInfo(ctx, user);
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(ctx, user, memory, proc);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(ctx, user);
    default:
      throw new SystemError('ENOTTY', 'ioctl');
  }
}

setVfioCompatHandler(vfioCompatIoctl);
