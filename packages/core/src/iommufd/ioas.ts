// The IOAS object and its ioctls (the kernel's ioas.c): thin handlers that decode the struct, do
// the checks the kernel does before reaching the io page table, and call IoPagetable (src/ioas/,
// which owns everything from the iopt_* call inward, errnos included).

import * as U from '@viommu/uapi';
import {
  SystemError,
  iommu_ioas_alloc,
  iommu_ioas_allow_iovas,
  iommu_ioas_change_process,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_unmap,
  iommu_iova_range,
} from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import { IOMMU_READ, IOMMU_WRITE } from '../driver/domain.js';
import { IoPagetable, dmaBufOf } from '../ioas/index.js';
import type { IovaRange } from '../ioas/index.js';
import { registerIoctl } from '../ioctl/registry.js';
import type { Ucmd } from '../ioctl/ucmd.js';
import { IommufdObject, OBJ } from '../object/object.js';
import type { HwptPaging } from '../hwpt/hwpt.js';

export const ULONG_MAX = (1n << 64n) - 1n;
const U64_MAX = ULONG_MAX;

const NO_HWPTS: readonly HwptPaging[] = Object.freeze([]);

export class Ioas extends IommufdObject {
  readonly type = OBJ.IOAS;
  /** Built on first use, like hwpts: an IOAS that is only allocated and destroyed is one object (ADR 0191). */
  private table: IoPagetable | undefined;
  /** Built on first use: most IOASes never get a HWPT, and a context can hold 100 k of them (issue 3). */
  private hwptList: HwptPaging[] | undefined;

  constructor(readonly ctx: IommufdContext) {
    super();
  }

  /** The IOAS's io page table (the kernel's ioas->iopt). */
  get iopt(): IoPagetable {
    return (this.table ??= new IoPagetable());
  }

  /** The HWPT_PAGING objects built on this IOAS (auto ones are reused from here). */
  get hwpts(): readonly HwptPaging[] {
    return this.hwptList ?? NO_HWPTS;
  }

  addHwpt(hwpt: HwptPaging): void {
    (this.hwptList ??= []).push(hwpt);
  }

  removeHwpt(hwpt: HwptPaging): void {
    const i = this.hwptList?.indexOf(hwpt) ?? -1;
    if (i >= 0) this.hwptList!.splice(i, 1);
  }

  destroy(): void {
    this.table?.destroy();
    if (this.ctx.vfioIoas === this) this.ctx.vfioIoas = undefined;
  }
}

/** Allocates and reserves a new IOAS (iommufd_ioas_alloc); the caller finalizes or aborts it. */
export function ioasAlloc(ctx: IommufdContext): Ioas {
  const ioas = new Ioas(ctx);
  ctx.objects.reserve(ioas);
  return ioas;
}

export function getIoas(ctx: IommufdContext, id: number): Ioas {
  return ctx.objects.get<Ioas>(id, OBJ.IOAS);
}

const MAP_FLAGS = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;

/** The map flags as IOMMU_READ/IOMMU_WRITE (IOMMU_CACHE is implied: mappings are always coherent here). */
function prot(flags: number): number {
  return (flags & U.IOMMU_IOAS_MAP_WRITEABLE ? IOMMU_WRITE : 0) | (flags & U.IOMMU_IOAS_MAP_READABLE ? IOMMU_READ : 0);
}

function ioasAllocIoctl(ucmd: Ucmd): void {
  const cmd = iommu_ioas_alloc.decode(ucmd.cmd);
  if (cmd.flags) throw new SystemError('EOPNOTSUPP', 'ioctl', 'IOAS_ALLOC flags');
  const ioas = ioasAlloc(ucmd.ctx);
  ucmd.newObject(ioas);
  iommu_ioas_alloc.set(ucmd.cmd, 'out_ioas_id', ioas.id);
  ucmd.respond();
}

function iovaRanges(ucmd: Ucmd): number {
  const cmd = iommu_ioas_iova_ranges.decode(ucmd.cmd);
  if (cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'IOVA_RANGES __reserved');
  const ioas = getIoas(ucmd.ctx, cmd.ioas_id);
  const max = cmd.num_iovas;
  const ranges = ioas.iopt.iovaRanges();
  const elm = new Uint8Array(iommu_iova_range.size);
  for (let i = 0; i < ranges.length && i < max; i++) {
    iommu_iova_range.encode({ start: ranges[i]!.start, last: ranges[i]!.last }, elm);
    ucmd.memory.write(cmd.allowed_iovas + BigInt(i * iommu_iova_range.size), elm);
  }
  iommu_ioas_iova_ranges.set(ucmd.cmd, 'num_iovas', ranges.length);
  iommu_ioas_iova_ranges.set(ucmd.cmd, 'out_iova_alignment', BigInt(ioas.iopt.alignment));
  ucmd.respond();
  if (ranges.length > max) throw new SystemError('EMSGSIZE', 'ioctl', `${ranges.length} ranges, room for ${max}`);
  return 0;
}

function allowIovas(ucmd: Ucmd): void {
  const cmd = iommu_ioas_allow_iovas.decode(ucmd.cmd);
  if (cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'ALLOW_IOVAS __reserved');
  const ioas = getIoas(ucmd.ctx, cmd.ioas_id);
  const list: IovaRange[] = [];
  for (let i = 0; i < cmd.num_iovas; i++) {
    const r = iommu_iova_range.decode(ucmd.memory.read(cmd.allowed_iovas + BigInt(i * iommu_iova_range.size), iommu_iova_range.size));
    if (r.start >= r.last) throw new SystemError('EINVAL', 'ioctl', 'allowed range with start >= last');
    if (list.some((o) => o.start <= r.last && r.start <= o.last)) throw new SystemError('EINVAL', 'ioctl', 'allowed ranges overlap');
    ucmd.ctx.host.failNth.point('allowed-iova');
    list.push({ start: r.start, last: r.last });
  }
  ioas.iopt.allowIovas(list);
}

function checkMapFlags(flags: number, hasReserved: boolean): void {
  if (flags & ~MAP_FLAGS || hasReserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'map flags');
}

function mapIoctl(ucmd: Ucmd): void {
  const cmd = iommu_ioas_map.decode(ucmd.cmd);
  checkMapFlags(cmd.flags, cmd.__reserved !== 0);
  if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) throw new SystemError('EOVERFLOW', 'ioctl');
  if (!(cmd.flags & (U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE))) throw new SystemError('EINVAL', 'ioctl', 'neither READABLE nor WRITEABLE');
  const ioas = getIoas(ucmd.ctx, cmd.ioas_id);
  const iova = ioas.iopt.mapUser(ucmd.memory, cmd.user_va, cmd.length, {
    ...(cmd.flags & U.IOMMU_IOAS_MAP_FIXED_IOVA ? { iova: cmd.iova } : {}),
    prot: prot(cmd.flags),
    owner: ucmd.task,
    rlimitMode: ucmd.ctx.accountMode === 1 ? 1 : 0,
  });
  iommu_ioas_map.set(ucmd.cmd, 'iova', iova);
  ucmd.respond();
}

function mapFileIoctl(ucmd: Ucmd): void {
  const cmd = iommu_ioas_map_file.decode(ucmd.cmd);
  checkMapFlags(cmd.flags, false);
  if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) throw new SystemError('EOVERFLOW', 'ioctl');
  if (!(cmd.flags & (U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE))) throw new SystemError('EINVAL', 'ioctl', 'neither READABLE nor WRITEABLE');
  const ioas = getIoas(ucmd.ctx, cmd.ioas_id);
  // iopt_map_file_pages: length and overflow come before the fd lookup.
  if (cmd.length === 0n) throw new SystemError('EINVAL', 'ioctl', 'length 0');
  if (cmd.start + cmd.length - 1n > U64_MAX) throw new SystemError('EOVERFLOW', 'ioctl');
  const fd = cmd.fd | 0; // s32
  const opts = {
    ...(cmd.flags & U.IOMMU_IOAS_MAP_FIXED_IOVA ? { iova: cmd.iova } : {}),
    prot: prot(cmd.flags),
    owner: ucmd.task,
    rlimitMode: ucmd.ctx.accountMode === 1 ? (1 as const) : (0 as const),
  };
  // A dma-buf first (dma_buf_get), then any other file (fget).
  const dmabuf = dmaBufOf(ucmd.process.fileOf?.(fd));
  const iova = dmabuf ? ioas.iopt.mapDmabuf(dmabuf, cmd.start, cmd.length, opts) : ioas.iopt.mapFile(ucmd.memFileOf(fd), cmd.start, cmd.length, opts);
  iommu_ioas_map_file.set(ucmd.cmd, 'iova', iova);
  ucmd.respond();
}

function copyIoctl(ucmd: Ucmd): void {
  const cmd = iommu_ioas_copy.decode(ucmd.cmd);
  checkMapFlags(cmd.flags, false);
  if (cmd.length >= ULONG_MAX || cmd.src_iova >= ULONG_MAX || cmd.dst_iova >= ULONG_MAX) throw new SystemError('EOVERFLOW', 'ioctl');
  if (!(cmd.flags & (U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE))) throw new SystemError('EINVAL', 'ioctl', 'neither READABLE nor WRITEABLE');
  const src = getIoas(ucmd.ctx, cmd.src_ioas_id);
  const list = src.iopt.getPages(cmd.src_iova, cmd.length);
  try {
    const dst = getIoas(ucmd.ctx, cmd.dst_ioas_id);
    const iova = dst.iopt.mapPages(list, { ...(cmd.flags & U.IOMMU_IOAS_MAP_FIXED_IOVA ? { iova: cmd.dst_iova } : {}), prot: prot(cmd.flags) });
    iommu_ioas_copy.set(ucmd.cmd, 'dst_iova', iova);
    ucmd.respond();
  } finally {
    list.release();
  }
}

function unmapIoctl(ucmd: Ucmd): void {
  const cmd = iommu_ioas_unmap.decode(ucmd.cmd);
  const ioas = getIoas(ucmd.ctx, cmd.ioas_id);
  let unmapped: bigint;
  if (cmd.iova === 0n && cmd.length === U64_MAX) {
    unmapped = ioas.iopt.unmapAll();
  } else {
    if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX) throw new SystemError('EOVERFLOW', 'ioctl');
    unmapped = ioas.iopt.unmap(cmd.iova, cmd.length);
    if (unmapped === 0n) throw new SystemError('ENOENT', 'ioctl', 'nothing mapped there');
  }
  iommu_ioas_unmap.set(ucmd.cmd, 'length', unmapped);
  ucmd.respond();
}

function changeProcessIoctl(ucmd: Ucmd): void {
  const cmd = iommu_ioas_change_process.decode(ucmd.cmd);
  if (cmd.__reserved) throw new SystemError('EOPNOTSUPP', 'ioctl', 'CHANGE_PROCESS __reserved');
  const tables = ucmd.ctx.objects.objects().filter((o): o is Ioas => o.type === OBJ.IOAS).map((o) => o.iopt);
  IoPagetable.changeProcess(tables, ucmd.task);
  ucmd.ctx.mm = ucmd.memory;
}

registerIoctl({ name: 'IOMMU_IOAS_ALLOC', request: U.IOMMU_IOAS_ALLOC, struct: iommu_ioas_alloc, handler: ioasAllocIoctl });
registerIoctl({ name: 'IOMMU_IOAS_IOVA_RANGES', request: U.IOMMU_IOAS_IOVA_RANGES, struct: iommu_ioas_iova_ranges, handler: iovaRanges });
registerIoctl({ name: 'IOMMU_IOAS_ALLOW_IOVAS', request: U.IOMMU_IOAS_ALLOW_IOVAS, struct: iommu_ioas_allow_iovas, handler: allowIovas });
registerIoctl({ name: 'IOMMU_IOAS_MAP', request: U.IOMMU_IOAS_MAP, struct: iommu_ioas_map, handler: mapIoctl });
registerIoctl({ name: 'IOMMU_IOAS_MAP_FILE', request: U.IOMMU_IOAS_MAP_FILE, struct: iommu_ioas_map_file, handler: mapFileIoctl });
registerIoctl({ name: 'IOMMU_IOAS_COPY', request: U.IOMMU_IOAS_COPY, struct: iommu_ioas_copy, handler: copyIoctl });
registerIoctl({ name: 'IOMMU_IOAS_UNMAP', request: U.IOMMU_IOAS_UNMAP, struct: iommu_ioas_unmap, handler: unmapIoctl });
registerIoctl({ name: 'IOMMU_IOAS_CHANGE_PROCESS', request: U.IOMMU_IOAS_CHANGE_PROCESS, struct: iommu_ioas_change_process, handler: changeProcessIoctl });
