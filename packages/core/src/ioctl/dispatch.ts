// The iommufd ioctl dispatcher, in the kernel's exact order (spec 3.1):
//   1. command number outside the table -> the VFIO type1 compatibility handler (ENOTTY if unknown)
//   2. read the u32 `size` at the argument (EFAULT)
//   3. empty slot or a different full request number -> ENOTTY
//   4. size < the command's minimum -> EINVAL
//   5. copy the struct: a short one is zero-extended; bytes past sizeof must be zero (E2BIG)
//   6. run the handler; a new object it handed over is finalized on success, aborted on failure.

import { SystemError, type IoctlArg } from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import type { AddressSpace } from '../host/address-space.js';
import { IOMMUFD_CMD_BASE, IOMMUFD_TABLE_LEN, ioctlSlot } from './registry.js';
import { Ucmd, UserArg, type UcmdProcess } from './ucmd.js';

/** The VFIO container compatibility ioctls (spec 12), set by src/vfio-compat.ts. */
export type CompatHandler = (ctx: IommufdContext, request: number, user: UserArg, memory: AddressSpace, proc: UcmdProcess) => number;
let compatHandler: CompatHandler | undefined;

export function setVfioCompatHandler(h: CompatHandler): void {
  compatHandler = h;
}

export function dispatchIommufdIoctl(ctx: IommufdContext, proc: UcmdProcess, memory: AddressSpace, request: number, arg: IoctlArg): number {
  request >>>= 0;
  const nr = request & 0xff;
  const user = new UserArg(arg, memory);
  if (nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= IOMMUFD_TABLE_LEN) {
    if (!compatHandler) throw new SystemError('ENOTTY', 'ioctl');
    return compatHandler(ctx, request, user, memory, proc);
  }
  const userSize = user.readU32(0);
  const op = ioctlSlot(nr);
  if (!op || op.request >>> 0 !== request) throw new SystemError('ENOTTY', 'ioctl');
  if (userSize < (op.minSize ?? op.struct.minSize)) throw new SystemError('EINVAL', 'ioctl', `size ${userSize} below the minimum ${op.minSize ?? op.struct.minSize} of ${op.name}`);
  const base = arenaTop;
  try {
    const cmd = copyStructFromArg(user, op.struct.size, userSize);
    const ucmd = new Ucmd(ctx, cmd, userSize, memory, user, proc);
    let rc: number | void;
    try {
      rc = op.handler(ucmd);
    } catch (e) {
      if (ucmd.newObj) ctx.objects.abort(ucmd.newObj);
      throw e;
    }
    if (ucmd.newObj) ctx.objects.finalize(ucmd.newObj);
    return rc ?? 0;
  } finally {
    arenaTop = base;
  }
}

// The kernel's copy of each ioctl's struct lives on its stack; ours lives in this arena, used as a
// stack (a handler that ends up in a nested ioctl gets the next region). One long-lived buffer for
// every call matters on the hot path: a fresh small Uint8Array sits on the JS heap, and the codec's
// `.buffer` then moves it to a malloc'd backing store on every ioctl, which also keeps the codec's
// DataView cache missing. So Ucmd.cmd is valid only until the handler returns.
const ARENA = new ArrayBuffer(1 << 16);
let arenaTop = 0;

/** A zeroed `size`-byte region of the arena (a fresh array if the arena is exhausted). */
function arenaAlloc(size: number): Uint8Array {
  const start = arenaTop;
  const end = start + ((size + 7) & ~7);
  if (end > ARENA.byteLength) return new Uint8Array(size);
  arenaTop = end;
  const cmd = new Uint8Array(ARENA, start, size);
  cmd.fill(0);
  return cmd;
}

/** copy_struct_from_user over the ioctl argument. */
function copyStructFromArg(user: UserArg, ksize: number, usize: number): Uint8Array {
  if (usize > ksize) {
    // The kernel scans the whole tail, however large `size` is, in chunks; so do we.
    const CHUNK = 1 << 16;
    for (let off = ksize; off < usize; off += CHUNK) {
      const tail = user.read(off, Math.min(CHUNK, usize - off));
      for (let i = 0; i < tail.length; i++) if (tail[i] !== 0) throw new SystemError('E2BIG', 'ioctl', 'non-zero bytes past the known struct');
    }
  }
  const cmd = arenaAlloc(ksize);
  user.readInto(usize < ksize ? cmd.subarray(0, usize) : cmd, 0);
  return cmd;
}
