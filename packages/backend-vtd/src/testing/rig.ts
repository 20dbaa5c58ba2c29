// The VT-d side of the shared VMM rig (@viommu/backend-compliance/testing): one VT-d unit and a
// device (source-id 0x0310) behind it, guest RAM at GPA `RAM_GPA`, a guest first-stage page table
// builder over that RAM, and the nested HWPT (iommu_hwpt_vtd_s1) and its HWPT_INVALIDATE.
import { RIG_RAM_GPA, call, createVmmRig, errno, type VmmRig } from '@viommu/backend-compliance/testing';
import * as U from '@viommu/uapi';
import { type VtdDriver, vtd } from '../driver/driver.js';
import type { VtdFeatures } from '../hw/regs.js';
import { FS_A, FS_P, FS_RW, FS_US } from '../pgtable/pte.js';
import { FS_FORMAT, PageTable } from '../pgtable/table.js';

export { call, errno } from '@viommu/backend-compliance/testing';

export const RAM_GPA = RIG_RAM_GPA;

export interface RigOptions {
  features?: Partial<VtdFeatures>;
  ramBytes?: number;
  pasidBits?: number;
  ats?: boolean;
  pri?: boolean;
  /** Also create 'nic1' (source-id 0x0320) behind the same unit, unbound. */
  secondDevice?: boolean;
}

export interface Rig extends VmmRig<VtdDriver> {
  /** A fresh guest first stage. */
  guestTable(levels?: number): PageTable;
  nested(parent: number, s1: Partial<ReturnType<typeof U.iommu_hwpt_vtd_s1.decode>>, flags?: number, faultId?: number): number;
  invalidate(hwpt: number, entries: { addr: bigint; npages: bigint; flags?: number; __reserved?: number }[], opts?: { type?: number; entryLen?: number; entryNum?: number }): { entryNum: number; error?: string };
}

/** Leaf bits of a guest first-stage page: present, user, accessed, writable unless read-only. */
export const GUEST_RW = FS_P | FS_US | FS_RW | FS_A;
export const GUEST_RO = FS_P | FS_US | FS_A;

export function createRig(o: RigOptions = {}): Rig {
  const base = createVmmRig({
    driver: vtd({ name: 'dmar0', features: o.features }),
    devices: [
      { name: 'nic0', rid: 0x0310, pasidBits: o.pasidBits ?? 8, ats: o.ats ?? false, pri: o.pri ?? false },
      ...(o.secondDevice ? [{ name: 'nic1', rid: 0x0320, pasidBits: 8 }] : []),
    ],
    ramGpa: RAM_GPA,
    ...(o.ramBytes !== undefined ? { ramBytes: o.ramBytes } : {}),
  });
  const { proc, fd, devId, gmem } = base;
  return {
    ...base,
    guestTable: (levels = 4) => new PageTable(gmem, FS_FORMAT, levels),
    nested: (parent, s1, flags = 0, faultId) => {
      const data = proc.memory.alloc(24);
      data.bytes.set(U.iommu_hwpt_vtd_s1.encode({ addr_width: 48, ...s1 }));
      return call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
        dev_id: devId, pt_id: parent, flags: flags | (faultId !== undefined ? U.IOMMU_HWPT_FAULT_ID_VALID : 0),
        data_type: U.IOMMU_HWPT_DATA_VTD_S1, data_len: 24, data_uptr: data.addr, fault_id: faultId ?? 0,
      }).out_hwpt_id;
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
}
