// Shared memory on the simulator backend (ADR 0129, 0193): a client's memfd passed over SCM_RIGHTS
// is mapped into the daemon and its pages become the simulator's physical frames (core adopts
// them), so devices, io page tables and ACCESS_RW use the client's pages themselves. Nothing is
// copied or compared per call. Our mapping goes when the simulator lets go of the pages: after
// the last of the user mapping or memfd and every pin on them.
import { F_GET_SEALS, F_SEAL_GROW, MAP_SHARED, mappableSize, PROT_RW, type FdBridge } from '@viommu/protocol';
import { SystemError } from '@viommu/uapi';
import type { BackendProcess } from './backend.js';

const PAGE = 4096;
const roundUp = (n: number) => Math.ceil(n / PAGE) * PAGE;

/**
 * Maps `length` bytes of the client's memfd `fd` into the daemon, rounded up to whole pages (the
 * last page of a file whose size is not a page multiple is still mappable, and sealed against
 * shrinking it cannot go away). Returns the bytes and the munmap that gives them back.
 */
function mapClientMemfd(bridge: FdBridge, fd: number, length: number): { bytes: Uint8Array; unmap: () => void } {
  const m = bridge.mmap(fd, roundUp(length), 0n, PROT_RW, MAP_SHARED);
  if (typeof m === 'number') throw new SystemError('ENOMEM', 'mmap', `errno ${-m}`);
  const [addr, buffer] = m;
  return { bytes: new Uint8Array(buffer), unmap: () => void bridge.munmap(addr, -1) };
}

/**
 * FD_IMPORT: a memfd in the session's process whose pages are the client's (IOAS_MAP_FILE of the
 * returned fd maps them). The passed fd stays the caller's to close.
 */
export function importMemfd(p: BackendProcess, bridge: FdBridge, fd: number): number {
  if (!p.memfdAdopt) throw new SystemError('EOPNOTSUPP', 'recvmsg', 'this backend cannot use a passed memfd');
  const size = mappableSize(bridge, fd);
  if (size <= 0) throw new SystemError('EINVAL', 'mmap', 'the memfd is empty');
  const sealGrow = (bridge.fcntl(fd, F_GET_SEALS) & F_SEAL_GROW) !== 0;
  const m = mapClientMemfd(bridge, fd, size);
  try {
    return p.memfdAdopt(m.bytes, { size, name: 'scm-rights', sealGrow, release: m.unmap });
  } catch (e) {
    m.unmap();
    throw e;
  }
}

/** MEM_SHARED: `length` bytes of user memory in the session's process that are the client's memfd pages. Returns the address. */
export function sharedMemory(p: BackendProcess, bridge: FdBridge, fd: number, length: number): number {
  if (!p.adoptMemory) throw new SystemError('EOPNOTSUPP', 'mmap', 'this backend cannot use a passed memfd');
  const size = mappableSize(bridge, fd);
  if (!Number.isSafeInteger(length) || length <= 0 || length > size) throw new SystemError('EINVAL', 'mmap', `the memfd holds ${size} bytes, ${length} asked for`);
  const m = mapClientMemfd(bridge, fd, length);
  try {
    return Number(p.adoptMemory(m.bytes, m.unmap).addr);
  } catch (e) {
    m.unmap();
    throw e;
  }
}
