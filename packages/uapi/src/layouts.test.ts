// Every struct, field and constant of the Linux 7.2.13 fact table must be present with identical numbers.
import { describe, expect, it } from '@jest/globals';
import type { StructCodec } from './codec.js';
import * as uapi from './index.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Layout = { size: number; fields: { name: string; offset: number; size: number }[] };
const layouts = JSON.parse(readFileSync(join(__dirname, 'testdata', 'layouts.json'), 'utf8')) as {
  structs: Record<string, Layout>;
  constants: Record<string, number>;
};

const structs = layouts.structs;
const exported = uapi as unknown as Record<string, unknown>;

function codecFor(cName: string): StructCodec {
  const codec = exported[cName.replace('.', '_')] as StructCodec | undefined;
  if (!codec) throw new Error(`@viommu/uapi has no codec for ${cName}`);
  return codec;
}

describe('struct layouts match Linux 7.2.13', () => {
  it('covers every struct of the fact table', () => {
    expect(Object.keys(structs).length).toBeGreaterThan(60);
    for (const name of Object.keys(structs)) expect(() => codecFor(name)).not.toThrow();
  });

  it.each(Object.entries(structs).filter(([n]) => n !== 'iommu_test_cmd'))('%s', (name, layout) => {
    const codec = codecFor(name);
    const isUnionMember = name.startsWith('iommu_test_cmd.');
    // A union member's codec spans the whole command; the table gives the member's own size.
    expect(codec.size).toBe(isUnionMember ? structs.iommu_test_cmd!.size : layout.size);
    const got = Object.fromEntries(Object.entries(codec.fields).map(([f, s]) => [f, { offset: s.offset, size: s.size }]));
    for (const f of layout.fields) expect([f.name, got[f.name]]).toEqual([f.name, { offset: f.offset, size: f.size }]);
    if (!isUnionMember) expect(Object.keys(got).sort()).toEqual(layout.fields.map((f) => f.name).sort());
  });

  it('iommu_test_cmd: header, union at 16, last at 64', () => {
    const layout = structs.iommu_test_cmd!;
    expect(uapi.iommu_test_cmd.size).toBe(layout.size);
    for (const f of layout.fields) {
      const member = structs[`iommu_test_cmd.${f.name}`];
      if (member) {
        expect(f.offset).toBe(16);
        expect(member.size).toBe(f.size);
      } else {
        expect(uapi.iommu_test_cmd.fields[f.name as 'size']).toMatchObject({ offset: f.offset, size: f.size });
      }
    }
  });
});

describe('constants match Linux 7.2.13', () => {
  it.each(Object.entries(layouts.constants))('%s = %d', (name, value) => {
    expect(exported[name]).toBe(value);
  });
});

describe('ioctl minimum sizes are offsetofend(last field) of the kernel dispatch table', () => {
  // From drivers/iommu/iommufd/main.c: IOCTL_OP(ioctl, fn, struct, last).
  const lastField: Record<string, string> = {
    IOMMU_DESTROY: 'id', IOMMU_FAULT_QUEUE_ALLOC: 'out_fault_fd', IOMMU_GET_HW_INFO: '__reserved',
    IOMMU_HW_QUEUE_ALLOC: 'length', IOMMU_HWPT_ALLOC: '__reserved', IOMMU_HWPT_GET_DIRTY_BITMAP: 'data',
    IOMMU_HWPT_INVALIDATE: '__reserved', IOMMU_HWPT_SET_DIRTY_TRACKING: '__reserved',
    IOMMU_IOAS_ALLOC: 'out_ioas_id', IOMMU_IOAS_ALLOW_IOVAS: 'allowed_iovas',
    IOMMU_IOAS_CHANGE_PROCESS: '__reserved', IOMMU_IOAS_COPY: 'src_iova',
    IOMMU_IOAS_IOVA_RANGES: 'out_iova_alignment', IOMMU_IOAS_MAP: 'iova', IOMMU_IOAS_MAP_FILE: 'iova',
    IOMMU_IOAS_UNMAP: 'length', IOMMU_OPTION: 'val64', IOMMU_VDEVICE_ALLOC: 'virt_id',
    IOMMU_VEVENTQ_ALLOC: 'out_veventq_fd', IOMMU_VFIO_IOAS: '__reserved', IOMMU_VIOMMU_ALLOC: 'out_viommu_id',
    IOMMU_TEST_CMD: 'last',
  };
  it.each([...uapi.IOMMUFD_IOCTLS, uapi.IOMMU_TEST_IOCTL])('$name', (d) => {
    const layout = structs[d.struct.name]!;
    const last = layout.fields.find((f) => f.name === lastField[d.name])!;
    expect(d.struct.minSize).toBe(last.offset + last.size);
  });

  it('spot values a C programmer can check by hand', () => {
    expect(uapi.iommu_ioas_map.minSize).toBe(40);
    expect(uapi.iommu_hw_info.minSize).toBe(32);
    expect(uapi.iommu_hwpt_alloc.minSize).toBe(24);
    expect(uapi.iommu_viommu_alloc.minSize).toBe(24);
    expect(uapi.iommu_test_cmd.minSize).toBe(68);
  });
});
