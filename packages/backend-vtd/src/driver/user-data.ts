// Copies of vendor data between user memory and the driver with the kernel's rules
// (include/linux/iommu.h __iommu_copy_struct_{from,to}_user, copy_struct_from_user).
// TODO(core): core has the same helpers in src/viommu/user-data.ts but does not export them from
// its index yet; switch to them once it does.
import type { UserData, UserDataArray } from '@viommu/core';
import { SystemError } from '@viommu/uapi';

function copyStruct(data: { memory: UserData['memory'] }, uptr: bigint, ksize: number, usize: number): Uint8Array {
  const out = new Uint8Array(ksize);
  if (usize > ksize) {
    const tail = data.memory.read(uptr + BigInt(ksize), usize - ksize, 'ioctl');
    if (tail.some((b) => b !== 0)) throw new SystemError('E2BIG', 'ioctl', 'non-zero bytes past the known struct');
  }
  const n = Math.min(ksize, usize);
  if (n > 0) out.set(data.memory.read(uptr, n, 'ioctl'));
  return out;
}

/** iommu_copy_struct_from_user: type must match, len in [minLen, ksize] (EINVAL). */
export function copyFromUser(data: UserData, type: number, ksize: number, minLen: number): Uint8Array {
  if (data.type !== type) throw new SystemError('EINVAL', 'ioctl', `vendor data type ${data.type} is not ${type}`);
  if (data.len < minLen || data.len > ksize) throw new SystemError('EINVAL', 'ioctl', `vendor data length ${data.len}`);
  return copyStruct(data, data.uptr, ksize, data.len);
}

/** iommu_copy_struct_to_user. */
export function copyToUser(data: UserData, type: number, bytes: Uint8Array, minLen: number): void {
  if (data.type !== type) throw new SystemError('EINVAL', 'ioctl', `vendor data type ${data.type} is not ${type}`);
  if (data.len < minLen || data.len > bytes.length) throw new SystemError('EINVAL', 'ioctl', `vendor data length ${data.len}`);
  data.memory.write(data.uptr, bytes.subarray(0, data.len));
}

/**
 * iommu_copy_struct_from_full_user_array into `into` (entryNum * ksize bytes): type mismatch or an
 * empty array → EINVAL; entries of another length go through copy_struct_from_user one by one.
 */
export function copyFullArray(array: UserDataArray, type: number, ksize: number, into: Uint8Array): void {
  if (array.type !== type) throw new SystemError('EINVAL', 'ioctl', `invalidation type ${array.type} is not ${type}`);
  if (array.entryNum === 0) throw new SystemError('EINVAL', 'ioctl', 'empty invalidation array');
  if (array.entryLen === ksize) {
    const m = array.memory.find(array.uptr);
    const length = array.entryNum * ksize;
    if (m) {
      const off = Number(array.uptr) - m.addr;
      if (off + length <= m.length) {
        into.set(m.bytes.subarray(off, off + length));
        return;
      }
    }
    into.set(array.memory.read(array.uptr, length, 'ioctl'));
    return;
  }
  for (let i = 0; i < array.entryNum; i++) {
    into.set(copyStruct(array, array.uptr + BigInt(array.entryLen) * BigInt(i), ksize, array.entryLen), i * ksize);
  }
}
