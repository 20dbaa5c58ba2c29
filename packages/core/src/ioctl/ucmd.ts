// One ioctl call as a handler sees it (the kernel's struct iommufd_ucmd): the kernel's copy of the
// struct, the size userspace passed, the context, and the caller's memory for side buffers.

import { SystemError, type IoctlArg } from '@viommu/uapi';
import type { IommufdContext } from '../context.js';
import type { AddressSpace } from '../host/address-space.js';
import type { IommufdObject } from '../object/object.js';
import type { OpenFile } from '../process/file.js';
import type { MemFile } from '../host/mem-file.js';
import { MemlockUser, type PinOwner } from '../ioas/index.js';

const ROOT_USER = new MemlockUser(0);

/** A number argument used as a user pointer: a non-zero non-negative integer. */
function isPointer(a: IoctlArg): a is number {
  return typeof a === 'number' && a > 0 && Number.isSafeInteger(a);
}

/** The caller's side of an ioctl argument: struct bytes, a pointer into user memory, or NULL. */
export class UserArg {
  constructor(
    readonly arg: IoctlArg,
    private readonly memory: AddressSpace,
  ) {}

  /** Copies `length` bytes at `offset` of the argument in (EFAULT when not readable). */
  read(offset: number, length: number): Uint8Array {
    const a = this.arg;
    if (a instanceof Uint8Array) {
      if (offset + length > a.length) throw new SystemError('EFAULT', 'ioctl', 'argument shorter than its size');
      return a.slice(offset, offset + length);
    }
    if (isPointer(a)) return this.memory.read(BigInt(a) + BigInt(offset), length);
    throw new SystemError('EFAULT', 'ioctl', 'NULL or invalid argument pointer');
  }

  /**
   * The little-endian u32 at `offset` (the `size` word every iommufd struct starts with). Reads an
   * in-process argument in place: the dispatcher calls this on every ioctl, so no copy.
   */
  readU32(offset: number): number {
    const a = this.arg;
    if (a instanceof Uint8Array) {
      if (offset + 4 > a.length) throw new SystemError('EFAULT', 'ioctl', 'argument shorter than its size');
      return (a[offset]! | (a[offset + 1]! << 8) | (a[offset + 2]! << 16) | (a[offset + 3]! << 24)) >>> 0;
    }
    const b = this.read(offset, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  /** Copies `dst.length` bytes at `offset` of the argument into `dst` (EFAULT when not readable). */
  readInto(dst: Uint8Array, offset: number): void {
    const a = this.arg;
    if (a instanceof Uint8Array) {
      if (offset + dst.length > a.length) throw new SystemError('EFAULT', 'ioctl', 'argument shorter than its size');
      for (let i = 0; i < dst.length; i++) dst[i] = a[offset + i]!;
      return;
    }
    dst.set(this.read(offset, dst.length));
  }

  /** Copies bytes out at `offset` of the argument (EFAULT when not writable). */
  write(offset: number, bytes: Uint8Array): void {
    const a = this.arg;
    if (a instanceof Uint8Array) {
      if (offset + bytes.length > a.length) throw new SystemError('EFAULT', 'ioctl', 'argument shorter than its size');
      a.set(bytes, offset);
      return;
    }
    if (isPointer(a)) {
      this.memory.write(BigInt(a) + BigInt(offset), bytes);
      return;
    }
    throw new SystemError('EFAULT', 'ioctl', 'NULL or invalid argument pointer');
  }
}

export interface UcmdProcess {
  installFd(file: OpenFile): number;
  uninstallFd(fd: number): void;
  // Optional so that test doubles need not provide them; Ucmd supplies root-like defaults.
  /** The calling task as the io page table charges it (mm, user, RLIMIT_MEMLOCK, CAP_IPC_LOCK). */
  readonly task?: PinOwner;
  /** CAP_SYS_RESOURCE (IOMMU_OPTION RLIMIT_MODE SET). */
  readonly capSysResource?: boolean;
  /** The file behind `fd` as a MemFile (a non-shmem stand-in for other files); EBADF if not open. */
  memFileOf?(fd: number): MemFile;
  /** The open file behind `fd`, or undefined. */
  fileOf?(fd: number): OpenFile | undefined;
}

export class Ucmd {
  /** The object this ioctl is creating: finalized by the dispatcher on success, aborted on failure. */
  newObj: IommufdObject | undefined;

  constructor(
    readonly ctx: IommufdContext,
    /**
     * The kernel's copy of the struct: sizeof bytes, zero past the user's size. Handlers may edit it;
     * it is reused once the handler returns, so keep values decoded from it, never the bytes.
     */
    readonly cmd: Uint8Array,
    /** The `size` userspace passed. */
    readonly userSize: number,
    /** The caller's address space: side buffers (data_uptr, allowed_iovas, ...) are read and written here. */
    readonly memory: AddressSpace,
    readonly user: UserArg,
    readonly process: UcmdProcess,
  ) {}

  /** iommufd_ucmd_respond: copies min(user size, sizeof) bytes of `cmd` back to the caller (EFAULT). */
  respond(length = this.cmd.length): void {
    this.user.write(0, this.cmd.subarray(0, Math.min(this.userSize, length)));
  }

  /** Hands the dispatcher a reserved object to finalize on success or abort on failure. */
  newObject(obj: IommufdObject): void {
    if (this.newObj) throw new Error('one new object per ioctl');
    this.newObj = obj;
  }

  /** The calling task (for pinning and accounting); root without limits when the process does not say. */
  get task(): PinOwner {
    return this.process.task ?? { mm: this.memory, user: ROOT_USER, memlockLimit: Infinity, capIpcLock: true };
  }

  get capSysResource(): boolean {
    return this.process.capSysResource ?? true;
  }

  /** The MemFile behind `fd` (MAP_FILE); EBADF when the process cannot resolve it. */
  memFileOf(fd: number): MemFile {
    if (!this.process.memFileOf) throw new SystemError('EBADF', 'ioctl');
    return this.process.memFileOf(fd);
  }

  /** Installs an fd for a new file in the calling process (fault and vEVENTQ fds). */
  installFd(file: OpenFile): number {
    return this.process.installFd(file);
  }
}
