import { describe, expect, it } from '@jest/globals';
import { AddressSpace } from '../host/address-space.js';
import { PhysicalMemory } from '../host/physical-memory.js';
import { copyFullUserArray, copyStructFromUser, copyUserArrayEntry, copyUserData, copyUserDataOut } from './user-data.js';

const code = (c: string) => expect.objectContaining({ code: c });

function mem() {
  const mm = new AddressSpace(new PhysicalMemory());
  const put = (bytes: number[]) => {
    const m = mm.alloc(4096);
    m.bytes.set(bytes);
    return m.addr;
  };
  return { mm, put };
}

describe('copy_struct_from_user rules', () => {
  it('zero-extends a shorter user struct and refuses a non-zero tail of a longer one with E2BIG', () => {
    const { mm, put } = mem();
    const at = put([1, 2, 3, 4, 5, 0, 0, 0]);
    expect(Array.from(copyStructFromUser(mm, at, 6, 3))).toEqual([1, 2, 3, 0, 0, 0]);
    expect(Array.from(copyStructFromUser(mm, at, 5, 8))).toEqual([1, 2, 3, 4, 5]);
    expect(() => copyStructFromUser(mm, at, 4, 8)).toThrow(code('E2BIG'));
    expect(() => copyStructFromUser(mm, 0n, 4, 4)).toThrow(code('EFAULT'));
  });

  it('iommu_copy_struct_from_user: wrong type and out-of-bounds length are EINVAL, checked before the memory', () => {
    const { mm, put } = mem();
    const uptr = put([0xef, 0xbe, 0, 0, 7, 0, 0, 0]);
    const data = (type: number, len: number, p = uptr) => ({ type, uptr: p, len, memory: mm });
    expect(Array.from(copyUserData(data(0xdead, 8), 0xdead, 8, 4))).toEqual([0xef, 0xbe, 0, 0, 7, 0, 0, 0]);
    expect(Array.from(copyUserData(data(0xdead, 4), 0xdead, 8, 4))).toEqual([0xef, 0xbe, 0, 0, 0, 0, 0, 0]);
    expect(() => copyUserData(data(0xdeae, 8), 0xdead, 8, 4)).toThrow(code('EINVAL'));
    expect(() => copyUserData(data(0xdead, 3), 0xdead, 8, 4)).toThrow(code('EINVAL'));
    // An oversized struct is EINVAL (not E2BIG) even with a zero tail.
    expect(() => copyUserData(data(0xdead, 9), 0xdead, 8, 4)).toThrow(code('EINVAL'));
    expect(() => copyUserData(data(0xdead, 8, 0n), 0xdead, 8, 4)).toThrow(code('EFAULT'));
  });

  it('iommu_copy_struct_to_user writes back only data.len bytes', () => {
    const { mm, put } = mem();
    const uptr = put([9, 9, 9, 9, 9, 9, 9, 9, 9]);
    copyUserDataOut({ type: 1, uptr, len: 6, memory: mm }, 1, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4);
    expect(Array.from(mm.read(uptr, 9))).toEqual([1, 2, 3, 4, 5, 6, 9, 9, 9]);
    expect(() => copyUserDataOut({ type: 1, uptr, len: 9, memory: mm }, 1, new Uint8Array(8), 4)).toThrow(code('EINVAL'));
  });
});

describe('user arrays', () => {
  it('copies a full array at the native stride without copying, and converts other strides entry by entry', () => {
    const { mm, put } = mem();
    const native = put([1, 0, 2, 0, 3, 0]);
    const arr = (uptr: bigint, entryLen: number, entryNum: number, type = 7) => ({ type, uptr, entryLen, entryNum, memory: mm });
    expect(Array.from(copyFullUserArray(arr(native, 2, 3), 7, 2))).toEqual([1, 0, 2, 0, 3, 0]);
    const wide = put([1, 0, 0, 2, 0, 0]);
    expect(Array.from(copyFullUserArray(arr(wide, 3, 2), 7, 2))).toEqual([1, 0, 2, 0]);
    const dirty = put([1, 0, 5, 2, 0, 0]);
    expect(() => copyFullUserArray(arr(dirty, 3, 2), 7, 2)).toThrow(code('E2BIG'));
    expect(Array.from(copyFullUserArray(arr(native, 1, 2), 7, 2))).toEqual([1, 0, 0, 0]);
    expect(() => copyFullUserArray(arr(native, 2, 0), 7, 2)).toThrow(code('EINVAL'));
    expect(() => copyFullUserArray(arr(native, 2, 1, 8), 7, 2)).toThrow(code('EINVAL'));
  });

  it('copies one entry with the struct rules and refuses an index past the end', () => {
    const { mm, put } = mem();
    const uptr = put([1, 2, 3, 4, 5, 6, 7, 8]);
    const array = { type: 3, uptr, entryLen: 4, entryNum: 2, memory: mm };
    expect(Array.from(copyUserArrayEntry(array, 3, 1, 4, 4))).toEqual([5, 6, 7, 8]);
    expect(() => copyUserArrayEntry(array, 3, 2, 4, 4)).toThrow(code('EINVAL'));
  });
});
