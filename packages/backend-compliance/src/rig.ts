// A VMM-like rig for a backend's own end-to-end tests and benchmarks, at the raw ioctl level (the
// compliance suite's buildFlow goes through @viommu/client instead): a simulated host with one
// IOMMU and its devices, a process with /dev/iommu open and the first device bound, guest RAM
// mapped in an IOAS at IOVA = GPA (what a nest parent's stage-2 translates), and a bump allocator
// over that RAM for the guest's own tables. What differs per vendor (its nested HWPT data, its
// invalidation entries, its guest table formats) stays in the backend, built on top of this.
// Free of @jest/globals, so benchmarks can use it through `@viommu/backend-compliance/testing`.

import { createSimHost, type DriverV1, type SimDeviceSpec, type SimHost, type SimProcess } from '@viommu/core';
import * as U from '@viommu/uapi';
import { GuestMemory } from './kit.js';

/** Where guest RAM starts unless the vendor says otherwise. */
export const RIG_RAM_GPA = 0x4000_0000;

/** Encodes `fields`, issues the ioctl, and decodes the written-back struct. */
export function call<C extends U.StructCodec>(proc: U.Process, fd: number, req: number, codec: C, fields: Partial<ReturnType<C['decode']>> = {}): ReturnType<C['decode']> {
  const bytes = codec.encode(fields as never);
  proc.ioctl(fd, req, bytes);
  return codec.decode(bytes) as ReturnType<C['decode']>;
}

/** The errno code `f` threw, or undefined when it returned. */
export function errno(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

/** Guest table memory addressed by GPA, handing out zeroed 4 KiB tables (the vendors' TableMemory shape). */
export interface GuestTableMemory {
  readU32(gpa: number): number;
  writeU32(gpa: number, value: number): void;
  allocTable(): number;
}

export interface VmmRigOptions<D extends DriverV1> {
  /** The backend's driver instance; the devices sit behind it (by its name). */
  readonly driver: D;
  /** The devices (without `iommu`); the first is opened and bound when the rig is made. */
  readonly devices: readonly Omit<SimDeviceSpec, 'iommu'>[];
  /** Default RIG_RAM_GPA. */
  readonly ramGpa?: number;
  /** Default 4 MiB. */
  readonly ramBytes?: number;
}

export interface VmmRig<D extends DriverV1> {
  readonly host: SimHost;
  readonly drv: D;
  readonly proc: SimProcess;
  /** /dev/iommu. */
  readonly fd: number;
  /** The first device's cdev fd and its iommufd device ID. */
  readonly dfd: number;
  readonly devId: number;
  /** The IOAS guest RAM is mapped in. */
  readonly ioas: number;
  /** Guest RAM as the VMM holds it (its user memory). */
  readonly ram: { readonly addr: bigint; readonly bytes: Uint8Array };
  readonly guest: GuestMemory;
  /** Zeroed guest RAM of `bytes` at a 4 KiB aligned GPA. */
  galloc(bytes: number): number;
  /** The guest's table memory over its RAM. */
  readonly gmem: GuestTableMemory;
  /** Opens and binds another device of the host. */
  bind(name: string): { dfd: number; devId: number };
  write(gpa: number, text: string): void;
  read(gpa: number, n: number): string;
  /**
   * GET_HW_INFO of the first device into fresh user memory of `len` bytes, pre-filled with 0xaa so a
   * test sees what the kernel zero-fills; with `type`, asks for that type (FLAG_INPUT_TYPE).
   */
  hwInfo(len: number, type?: number): ReturnType<typeof U.iommu_hw_info.decode> & { readonly data: Uint8Array };
  /** HWPT_ALLOC of a NEST_PARENT paging HWPT on the IOAS. */
  nestParent(dev?: number): number;
  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT of the (first) device. */
  attach(hwpt: number, dfd?: number): void;
}

export function createVmmRig<D extends DriverV1>(o: VmmRigOptions<D>): VmmRig<D> {
  const drv = o.driver;
  const host = createSimHost({ iommus: [drv], devices: o.devices.map((d) => ({ ...d, iommu: drv.name })) });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const ramGpa = o.ramGpa ?? RIG_RAM_GPA;
  const ramBytes = o.ramBytes ?? 4 << 20;
  const ram = proc.memory.alloc(ramBytes);
  const guest = new GuestMemory(ramGpa, ram.bytes);
  const galloc = (bytes: number): number => guest.alloc(bytes, 4096);
  const gmem: GuestTableMemory = {
    readU32: (gpa) => guest.readU32(gpa),
    writeU32: (gpa, v) => guest.writeU32(gpa, v),
    allocTable: () => galloc(4096),
  };
  const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
  call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, {
    ioas_id: ioas, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
    user_va: ram.addr, length: BigInt(ramBytes), iova: BigInt(ramGpa),
  });
  const bind = (name: string): { dfd: number; devId: number } => {
    const dfd = proc.open(host.device(name).path);
    return { dfd, devId: call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd }).out_devid };
  };
  const first = o.devices[0];
  if (!first) throw new Error('createVmmRig: give at least one device');
  const { dfd, devId } = bind(first.name);
  return {
    host, drv, proc, fd, dfd, devId, ioas, ram, guest, galloc, gmem, bind,
    write: (gpa, text) => guest.write(gpa, new TextEncoder().encode(text)),
    read: (gpa, n) => new TextDecoder().decode(guest.read(gpa, n)),
    hwInfo: (len, type) => {
      const data = proc.memory.alloc(len);
      data.bytes.fill(0xaa);
      const input = type === undefined ? {} : { flags: U.IOMMU_HW_INFO_FLAG_INPUT_TYPE, in_data_type: type };
      return { ...call(proc, fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: devId, data_len: len, data_uptr: data.addr, ...input }), data: data.bytes };
    },
    nestParent: (dev = devId) => call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: dev, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_NEST_PARENT }).out_hwpt_id,
    attach: (hwpt, d = dfd) => {
      call(proc, d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: hwpt });
    },
  };
}
