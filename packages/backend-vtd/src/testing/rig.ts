// A VMM-like rig for tests and benchmarks: a simulated host with one VT-d unit and a device, a
// process with /dev/iommu open and the device bound, guest RAM mapped at GPA `RAM_GPA` in an IOAS,
// and a guest first-stage page table builder over that RAM.
import { createSimHost, type SimHost, type SimProcess } from '@viommu/core';
import * as U from '@viommu/uapi';
import { type VtdDriver, vtd } from '../driver/driver.js';
import type { VtdFeatures } from '../hw/regs.js';
import { FS_A, FS_P, FS_RW, FS_US } from '../pgtable/pte.js';
import { FS_FORMAT, PageTable, type TableMemory } from '../pgtable/table.js';

export const RAM_GPA = 0x4000_0000;

export function call<C extends U.StructCodec>(proc: U.Process, fd: number, req: number, codec: C, fields: Partial<ReturnType<C['decode']>> = {}): ReturnType<C['decode']> {
  const bytes = codec.encode(fields as never);
  proc.ioctl(fd, req, bytes);
  return codec.decode(bytes) as ReturnType<C['decode']>;
}

export function errno(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

export interface RigOptions {
  features?: Partial<VtdFeatures>;
  ramBytes?: number;
  pasidBits?: number;
  ats?: boolean;
  pri?: boolean;
  /** Also create 'nic1' (source-id 0x0320) behind the same unit, unbound. */
  secondDevice?: boolean;
}

export interface Rig {
  host: SimHost;
  drv: VtdDriver;
  proc: SimProcess;
  fd: number;
  dfd: number;
  devId: number;
  ioas: number;
  ram: { addr: bigint; bytes: Uint8Array };
  /** Guest RAM allocator (GPA), zeroed, 4 KiB aligned. */
  galloc(bytes: number): number;
  /** Guest-RAM table memory addressed by GPA. */
  gmem: TableMemory;
  /** A fresh guest first stage. */
  guestTable(levels?: number): PageTable;
  write(gpa: number, text: string): void;
  nestParent(): number;
  nested(parent: number, s1: Partial<ReturnType<typeof U.iommu_hwpt_vtd_s1.decode>>, flags?: number, faultId?: number): number;
  attach(hwpt: number): void;
  invalidate(hwpt: number, entries: { addr: bigint; npages: bigint; flags?: number; __reserved?: number }[], opts?: { type?: number; entryLen?: number; entryNum?: number }): { entryNum: number; error?: string };
}

/** Leaf bits of a guest first-stage page: present, user, accessed, writable unless read-only. */
export const GUEST_RW = FS_P | FS_US | FS_RW | FS_A;
export const GUEST_RO = FS_P | FS_US | FS_A;

export function createRig(o: RigOptions = {}): Rig {
  const drv = vtd({ name: 'dmar0', features: o.features });
  const host = createSimHost({
    iommus: [drv],
    devices: [
      { name: 'nic0', iommu: 'dmar0', rid: 0x0310, pasidBits: o.pasidBits ?? 8, ats: o.ats ?? false, pri: o.pri ?? false },
      ...(o.secondDevice ? [{ name: 'nic1', iommu: 'dmar0', rid: 0x0320, pasidBits: 8 }] : []),
    ],
  });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const ramBytes = o.ramBytes ?? 4 << 20;
  const ram = proc.memory.alloc(ramBytes);
  let next = 0;
  const view = new DataView(ram.bytes.buffer, ram.bytes.byteOffset, ram.bytes.byteLength);
  const galloc = (bytes: number): number => {
    next = Math.ceil(next / 4096) * 4096;
    const gpa = RAM_GPA + next;
    next += bytes;
    if (next > ramBytes) throw new RangeError('guest RAM exhausted');
    ram.bytes.fill(0, gpa - RAM_GPA, gpa - RAM_GPA + bytes);
    return gpa;
  };
  const gmem: TableMemory = {
    readU32: (gpa) => view.getUint32(gpa - RAM_GPA, true),
    writeU32: (gpa, v) => view.setUint32(gpa - RAM_GPA, v >>> 0, true),
    allocTable: () => galloc(4096),
  };
  const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
  call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
    ioas_id: ioas, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
    user_va: ram.addr, length: BigInt(ramBytes), iova: BigInt(RAM_GPA),
  });
  const dfd = proc.open(host.device('nic0').path);
  const devId = call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }).out_devid;
  const rig: Rig = {
    host, drv, proc, fd, dfd, devId, ioas, ram, galloc, gmem,
    guestTable: (levels = 4) => new PageTable(gmem, FS_FORMAT, levels),
    write: (gpa, text) => ram.bytes.set(new TextEncoder().encode(text), gpa - RAM_GPA),
    nestParent: () => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: devId, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id,
    nested: (parent, s1, flags = 0, faultId) => {
      const data = proc.memory.alloc(24);
      data.bytes.set(U.iommu_hwpt_vtd_s1.encode({ addr_width: 48, ...s1 }));
      return call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
        dev_id: devId, pt_id: parent, flags: flags | (faultId !== undefined ? U.IOMMU_HWPT_FAULT_ID_VALID : 0),
        data_type: U.IOMMU_HWPT_DATA_VTD_S1, data_len: 24, data_uptr: data.addr, fault_id: faultId ?? 0,
      }).out_hwpt_id;
    },
    attach: (hwpt) => {
      call(proc, dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: hwpt });
    },
    invalidate: (hwpt, entries, opts = {}) => {
      const len = opts.entryLen ?? 24;
      const buf = proc.memory.alloc(Math.max(1, entries.length) * len);
      entries.forEach((e, i) => buf.bytes.set(U.iommu_hwpt_vtd_s1_invalidate.encode({ flags: 0, __reserved: 0, ...e }), i * len));
      const inv = U.iommu_hwpt_invalidate.encode({
        hwpt_id: hwpt, data_uptr: buf.addr, data_type: opts.type ?? U.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, entry_len: len,
        entry_num: opts.entryNum ?? entries.length,
      });
      const error = errno(() => proc.ioctl(fd, U.IOMMU_HWPT_INVALIDATE, inv));
      return { entryNum: U.iommu_hwpt_invalidate.decode(inv).entry_num, error };
    },
  };
  return rig;
}
