// A VMM-like rig for tests and benchmarks: a simulated host with one AMD-Vi unit and a device
// (DeviceID 0x0310), a process with /dev/iommu open and the device bound, guest RAM mapped at GPA
// `RAM_GPA` in an IOAS, and builders for the guest's GCR3 table and v2 page tables in that RAM.
import { createSimHost, type SimHost, type SimProcess } from '@viommu/core';
import * as U from '@viommu/uapi';
import { type AmdViDriver, type AmdViOptions, amdVi } from '../driver/driver.js';
import { encodeDteQwords, encodeGcr3Entry, qwordsToBytes, type Dte } from '../formats/dte.js';
import { PageTable, type TableMemory } from '../pgtable/table.js';

export const RAM_GPA = 0x4000_0000;
export const DEV_ID = 0x0310;

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

export interface RigOptions extends Partial<AmdViOptions> {
  ramBytes?: number;
  ats?: boolean;
  pri?: boolean;
  pasidBits?: number;
  /** A second device (DeviceID 0x0320, 'nic1'). */
  second?: boolean;
}

export type Rig = ReturnType<typeof createRig>;

export function createRig(o: RigOptions = {}) {
  const drv: AmdViDriver = amdVi({ name: 'ivhd0', ...o });
  const devices = [{ name: 'nic0', iommu: 'ivhd0', rid: DEV_ID, pasidBits: o.pasidBits ?? 8, ats: o.ats ?? false, pri: o.pri ?? false }];
  if (o.second) devices.push({ name: 'nic1', iommu: 'ivhd0', rid: 0x0320, pasidBits: 8, ats: false, pri: false });
  const host: SimHost = createSimHost({ iommus: [drv], devices });
  const proc: SimProcess = host.spawn();
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
  const bind = (name: string): { dfd: number; devId: number } => {
    const dfd = proc.open(host.device(name).path);
    return { dfd, devId: call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }).out_devid };
  };
  const { dfd, devId } = bind('nic0');
  const rig = {
    host, drv, proc, fd, dfd, devId, ioas, ram, galloc, gmem, bind,
    /** A guest v2 (x86-64) table in guest RAM. */
    guestTable: (levels = 4) => new PageTable(gmem, 'v2', levels),
    /** A one-level guest GCR3 table with `cr3` at `pasid`; returns its GPA. */
    gcr3: (entries: [number, number][]) => {
      const t = galloc(4096);
      for (const [pasid, cr3] of entries) ram.bytes.set(qwordsToBytes([encodeGcr3Entry(true, cr3)]), t - RAM_GPA + pasid * 8);
      return t;
    },
    write: (gpa: number, text: string) => ram.bytes.set(new TextEncoder().encode(text), gpa - RAM_GPA),
    read: (gpa: number, n: number) => new TextDecoder().decode(ram.bytes.subarray(gpa - RAM_GPA, gpa - RAM_GPA + n)),
    nestParent: (dev = devId) => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id,
    viommu: (parent: number, type = 0x1234, dev = devId) => call(proc, fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { size: 40, type, dev_id: dev, hwpt_id: parent }).out_viommu_id,
    /** HWPT_ALLOC with a guest DTE (iommu_hwpt_amd_guest) on `ptId`. */
    nested: (ptId: number, gdte: Partial<Dte> | bigint[], opts: { len?: number; type?: number; dev?: number } = {}) => {
      const q = Array.isArray(gdte) ? gdte : encodeDteQwords(gdte);
      const data = proc.memory.alloc(64);
      data.bytes.set(qwordsToBytes(q));
      return call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
        dev_id: opts.dev ?? devId, pt_id: ptId, data_type: opts.type ?? U.IOMMU_HWPT_DATA_AMD_GUEST, data_len: opts.len ?? 32, data_uptr: data.addr,
      }).out_hwpt_id;
    },
    attach: (hwpt: number, d = dfd) => {
      call(proc, d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: hwpt });
    },
  };
  return rig;
}
