// An open file behind a process fd: the iommufd, a VFIO device cdev, or an event-queue fd (FAULT,
// VEVENTQ). Another family adds a file kind by implementing OpenFile and installing it with
// `ucmd.installFd(file)` (or `process.installFd(file)`); the process routes every fd syscall to it.

import type { IoctlArg } from '@viommu/uapi';
import type { FrameRun } from '../host/physical-memory.js';

export interface MmapResult {
  addr: bigint;
  bytes: Uint8Array;
}

export interface OpenFile {
  /** For messages: 'iommufd', 'vfio-device', 'fault', 'veventq', ... */
  readonly kind: string;
  ioctl?(request: number, arg: IoctlArg): number;
  read?(buf: Uint8Array): number;
  write?(buf: Uint8Array): number;
  /** Resolves with revents (POLL* bits); must resolve by `timeoutMs` (negative = no timeout). */
  poll?(events: number, timeoutMs: number): Promise<number>;
  /** Maps part of the file; `unmap` is called on munmap or process exit. */
  mmap?(length: number, offset: bigint): FileMapping;
  /** The last fd referring to the file was closed. */
  release(): void;
}

/** What a file's mmap hands the process: physical frames to map, and what to do on munmap. */
export interface FileMapping {
  readonly run: FrameRun;
  readonly runOffset: number;
  readonly writable: boolean;
  unmap(): void;
}
