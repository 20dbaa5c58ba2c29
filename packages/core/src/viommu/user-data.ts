// Driver-facing copies of vendor data between user memory and the kernel side: the rules of the
// kernel's iommu_copy_struct_{from,to}_user* helpers (include/linux/iommu.h) and of
// copy_struct_from_user, in our words. Every vIOMMU-family ioctl hands vendor data to a driver
// through these, so a driver sees exactly the errnos a Linux driver would produce.

import { SystemError } from '@viommu/uapi';
import type { UserAccess, UserData, UserDataArray } from '../driver/driver.js';

/**
 * copy_struct_from_user: `usize` bytes at `uptr` into a zeroed buffer of `ksize` bytes. Bytes the
 * kernel does not know (past `ksize`) must be zero (E2BIG); unreadable memory is EFAULT.
 */
export function copyStructFromUser(memory: UserAccess, uptr: bigint, ksize: number, usize: number, syscall = 'ioctl'): Uint8Array {
  const out = new Uint8Array(ksize);
  if (usize > ksize) {
    const tail = memory.read(uptr + BigInt(ksize), usize - ksize, syscall);
    if (tail.some((b) => b !== 0)) throw new SystemError('E2BIG', syscall, 'non-zero bytes past the known struct');
  }
  const n = Math.min(ksize, usize);
  if (n > 0) out.set(memory.read(uptr, n, syscall));
  return out;
}

/**
 * iommu_copy_struct_from_user: the type must match (EINVAL) and `len` must lie in
 * [minLen, ksize] (EINVAL, never E2BIG), then copy_struct_from_user.
 */
export function copyUserData(data: UserData, type: number, ksize: number, minLen: number): Uint8Array {
  if (data.type !== type) throw new SystemError('EINVAL', 'ioctl', `vendor data type 0x${data.type.toString(16)} is not 0x${type.toString(16)}`);
  if (data.len < minLen || data.len > ksize) throw new SystemError('EINVAL', 'ioctl', `vendor data length ${data.len} not in [${minLen}, ${ksize}]`);
  return copyStructFromUser(data.memory, data.uptr, ksize, data.len);
}

/**
 * iommu_copy_struct_to_user: the type must match and `len` lie in [minLen, ksize] (EINVAL); then
 * the first `len` bytes of `bytes` are written back to user memory (EFAULT).
 */
export function copyUserDataOut(data: UserData, type: number, bytes: Uint8Array, minLen: number): void {
  if (data.type !== type) throw new SystemError('EINVAL', 'ioctl', `vendor data type 0x${data.type.toString(16)} is not 0x${type.toString(16)}`);
  if (data.len < minLen || data.len > bytes.length) throw new SystemError('EINVAL', 'ioctl', `vendor data length ${data.len} not in [${minLen}, ${bytes.length}]`);
  data.memory.write(data.uptr, bytes.subarray(0, data.len));
}

/**
 * iommu_copy_struct_from_user_array: entry `index` of the array, with the rules of
 * copyUserData applied to `entryLen` (EINVAL for an index past the end or an empty array).
 */
export function copyUserArrayEntry(array: UserDataArray, type: number, index: number, ksize: number, minLen: number): Uint8Array {
  if (index >= array.entryNum || array.entryNum === 0) throw new SystemError('EINVAL', 'ioctl', `entry ${index} of ${array.entryNum}`);
  return copyUserData(
    { type: array.type, uptr: array.uptr + BigInt(array.entryLen) * BigInt(index), len: array.entryLen, memory: array.memory },
    type,
    ksize,
    minLen,
  );
}

/**
 * iommu_copy_struct_from_full_user_array: the whole array as `entryNum` entries of `ksize` bytes.
 * Type mismatch or an empty array → EINVAL. Equal sizes are one copy; otherwise each entry goes
 * through copy_struct_from_user (larger entries need zero tails: E2BIG; smaller are zero-extended).
 *
 * Returns a view of user memory when the array lies in one mapping and needs no conversion (the
 * fast path: no copy), else a new buffer. Callers must only read it.
 */
export function copyFullUserArray(array: UserDataArray, type: number, ksize: number): Uint8Array {
  if (array.type !== type) throw new SystemError('EINVAL', 'ioctl', `invalidation type 0x${array.type.toString(16)} is not 0x${type.toString(16)}`);
  if (array.entryNum === 0) throw new SystemError('EINVAL', 'ioctl', 'empty invalidation array');
  if (array.entryLen === ksize) return userView(array.memory, array.uptr, array.entryNum * ksize);
  const out = new Uint8Array(array.entryNum * ksize);
  const stride = BigInt(array.entryLen);
  for (let i = 0; i < array.entryNum; i++) {
    out.set(copyStructFromUser(array.memory, array.uptr + stride * BigInt(i), ksize, array.entryLen), i * ksize);
  }
  return out;
}

/** `length` bytes at `va`: a live view when one mapping holds them, else a copy (EFAULT if unmapped). */
export function userView(memory: UserAccess, va: bigint, length: number): Uint8Array {
  const m = memory.find(va);
  if (m) {
    const off = Number(va) - m.addr;
    if (off + length <= m.length) return m.bytes.subarray(off, off + length);
  }
  return memory.read(va, length);
}
