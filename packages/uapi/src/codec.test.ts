import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { defineStruct, u8, u16, u32, u64, u64s } from './codec.js';
import { allStructCodecs, roundTrips } from './selfcheck.js';
import * as selftest from './selftest.js';
import * as structs from './structs.js';
import * as vfio from './vfio.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('golden byte vectors', () => {
  it('iommu_ioas_map', () => {
    const b = structs.iommu_ioas_map.encode({ flags: 6, ioas_id: 2, user_va: 0x7f0000001000n, length: 0x200000n, iova: 0x1000000n });
    expect(hex(b)).toBe(
      '28000000' + '06000000' + '02000000' + '00000000' + '00100000007f0000' + '0000200000000000' + '0000000100000000',
    );
  });

  it('iommu_hwpt_alloc with the selftest data type', () => {
    const b = structs.iommu_hwpt_alloc.encode({ flags: 4, dev_id: 5, pt_id: 3, data_type: 0xdead, data_len: 8, data_uptr: 0x1234n, fault_id: 9 });
    expect(b.length).toBe(48);
    expect(hex(b)).toBe(
      '30000000' + '04000000' + '05000000' + '03000000' + '00000000' + '00000000' + 'adde0000' + '08000000' + '3412000000000000' + '09000000' + '00000000',
    );
  });

  it('iommu_hw_info: in_data_type and out_data_type share offset 24', () => {
    const b = structs.iommu_hw_info.encode({ in_data_type: 2 });
    expect(structs.iommu_hw_info.decode(b).out_data_type).toBe(2);
    structs.iommu_hw_info.set(b, 'out_max_pasid_log2', 20);
    expect(b[28]).toBe(20);
  });

  it('iommu_hwpt_arm_smmuv3 holds the STE as two little-endian u64', () => {
    const b = structs.iommu_hwpt_arm_smmuv3.encode({ ste: [0x0000000000000005n, 0x1122334455667788n] });
    expect(hex(b)).toBe('0500000000000000' + '8877665544332211');
  });

  it('vfio_device_bind_iommufd defaults argsz', () => {
    expect(hex(vfio.vfio_device_bind_iommufd.encode({ iommufd: 3 }))).toBe('18000000' + '00000000' + '03000000' + '00000000' + '0000000000000000');
  });

  it('iommu_test_cmd.mock_domain puts the op header first and the union at 16', () => {
    const b = selftest.iommu_test_cmd_mock_domain.encode({ op: 2, id: 1 });
    expect(b.length).toBe(72);
    b.set([7, 0, 0, 0], 20);
    expect(selftest.iommu_test_cmd_mock_domain.decode(b)).toMatchObject({ size: 72, op: 2, id: 1, out_hwpt_id: 7 });
  });
});

describe('codec rules', () => {
  const s = defineStruct('t', 24, { a: u8(0), b: u16(2), c: u32(4), d: u64(8), e: u64s(16, 1) }, { last: 'c' });

  it('computes the minimum size from the last mandatory field', () => {
    expect(s.minSize).toBe(8);
  });

  it('rejects values that do not fit', () => {
    expect(() => s.encode({ a: 256 })).toThrow(RangeError);
    expect(() => s.encode({ c: -1 })).toThrow(RangeError);
    expect(() => s.encode({ d: 1n << 64n })).toThrow(RangeError);
    expect(() => s.encode({ e: [1n, 2n] })).toThrow(RangeError);
  });

  it('rejects a buffer too short for the struct', () => {
    expect(() => s.decode(new Uint8Array(23))).toThrow(RangeError);
    expect(() => s.get(new Uint8Array(30), 'd', 10)).toThrow(RangeError);
  });

  it('accepts safe-integer numbers for u64 fields', () => {
    expect(s.decode(s.encode({ d: 0x1f_ffff_ffff_ffff as unknown as bigint })).d).toBe(0x1f_ffff_ffff_ffffn);
  });

  it('encodes into a larger buffer at an offset, touching only its own bytes', () => {
    const big = new Uint8Array(40).fill(0xaa);
    s.encode({ c: 1 }, big, 8);
    expect(big[7]).toBe(0xaa);
    expect(big[32]).toBe(0xaa);
    expect(s.decode(big, 8).c).toBe(1);
  });

  it('rejects a field past sizeof at definition', () => {
    expect(() => defineStruct('bad', 8, { x: u64(4) })).toThrow(/runs past/);
  });
});

describe('round trips', () => {
  const codecs = allStructCodecs();

  it.each(codecs.map((c) => [c.name, c] as const))('%s: patterned image', (_name, c) => {
    expect(roundTrips(c)).toBe(true);
  });

  it('random byte images decode and re-encode to the same covered bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom(...codecs), fc.uint8Array({ minLength: 72, maxLength: 72 }), (c, raw) => {
        const image = raw.slice(0, c.size);
        const again = c.encode(c.decode(image) as never);
        for (const f of Object.values(c.fields)) {
          expect(hex(again.subarray(f.offset, f.offset + f.size))).toBe(hex(image.subarray(f.offset, f.offset + f.size)));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random values encode and decode unchanged', () => {
    const c = structs.iommu_hwpt_get_dirty_bitmap;
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (id, iova, len) => {
        const v = c.decode(c.encode({ hwpt_id: id, iova, length: len }));
        expect([v.hwpt_id, v.iova, v.length, v.size]).toEqual([id, iova, len, 48]);
      }),
    );
  });
});

describe('views of one buffer (the cached DataView honours byteOffset)', () => {
  it('get/set/decode/encode through subarrays at different offsets of one buffer', () => {
    const c = structs.iommu_ioas_map;
    const backing = new Uint8Array(3 * c.size + 5);
    const a = backing.subarray(1, 1 + c.size);
    const b = backing.subarray(5 + c.size); // odd offset, room for two structs
    c.encode({ ioas_id: 7, iova: 0x1000n }, a);
    c.encode({ ioas_id: 9, length: 0x2000n }, b, c.size);
    c.set(b, 'flags', 3);
    expect(c.get(a, 'ioas_id')).toBe(7);
    expect(c.decode(b, c.size)).toMatchObject({ size: c.size, ioas_id: 9, length: 0x2000n, flags: 0 });
    expect(c.get(b, 'flags')).toBe(3);
    expect(c.decode(a)).toMatchObject({ size: c.size, ioas_id: 7, iova: 0x1000n });
    // The same bytes as a fresh, offset-free copy.
    expect(hex(c.encode({ ioas_id: 9, length: 0x2000n }))).toBe(hex(b.slice(c.size, 2 * c.size)));
    expect(backing[0]).toBe(0);
  });

  it('works on SharedArrayBuffer-backed bytes too', () => {
    const c = structs.iommu_destroy;
    const bytes = new Uint8Array(new SharedArrayBuffer(64)).subarray(16, 16 + c.size);
    c.set(bytes, 'id', 0xdeadbeef);
    expect(c.decode(bytes)).toEqual({ size: 0, id: 0xdeadbeef });
    expect(new Uint8Array(bytes.buffer)[20]).toBe(0xef);
  });
});
