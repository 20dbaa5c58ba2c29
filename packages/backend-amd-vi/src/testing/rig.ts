// The AMD-Vi side of the shared VMM rig (@viommu/backend-compliance/testing): one AMD-Vi unit and a
// device (DeviceID 0x0310) behind it, guest RAM at GPA `RAM_GPA`, and builders for the guest's GCR3
// table, its v2 page tables, the vIOMMU and the nested HWPT from a guest DTE.
import { RIG_RAM_GPA, call, createVmmRig, type VmmRig } from '@viommu/backend-compliance/testing';
import * as U from '@viommu/uapi';
import { type AmdViDriver, type AmdViOptions, amdVi } from '../driver/driver.js';
import { qwordsToBytes } from '@viommu/core';
import { encodeDteQwords, encodeGcr3Entry, type Dte } from '../formats/dte.js';
import { PageTable } from '../pgtable/table.js';

export { call, errno } from '@viommu/backend-compliance/testing';

export const RAM_GPA = RIG_RAM_GPA;
export const DEV_ID = 0x0310;

export interface RigOptions extends Partial<AmdViOptions> {
  ramBytes?: number;
  ats?: boolean;
  pri?: boolean;
  pasidBits?: number;
  /** A second device (DeviceID 0x0320, 'nic1'). */
  second?: boolean;
}

export interface Rig extends VmmRig<AmdViDriver> {
  /** A guest v2 (x86-64) table in guest RAM. */
  guestTable(levels?: number): PageTable;
  /** A one-level guest GCR3 table with `cr3` at `pasid`; returns its GPA. */
  gcr3(entries: [number, number][]): number;
  viommu(parent: number, type?: number, dev?: number): number;
  /** HWPT_ALLOC with a guest DTE (iommu_hwpt_amd_guest) on `ptId`. */
  nested(ptId: number, gdte: Partial<Dte> | bigint[], opts?: { len?: number; type?: number; dev?: number }): number;
}

export function createRig(o: RigOptions = {}): Rig {
  const devices = [{ name: 'nic0', rid: DEV_ID, pasidBits: o.pasidBits ?? 8, ats: o.ats ?? false, pri: o.pri ?? false }];
  if (o.second) devices.push({ name: 'nic1', rid: 0x0320, pasidBits: 8, ats: false, pri: false });
  const base = createVmmRig({ driver: amdVi({ name: 'ivhd0', ...o }), devices, ramGpa: RAM_GPA, ...(o.ramBytes !== undefined ? { ramBytes: o.ramBytes } : {}) });
  const { proc, fd, devId, galloc, gmem, guest } = base;
  return {
    ...base,
    guestTable: (levels = 4) => new PageTable(gmem, 'v2', levels),
    gcr3: (entries) => {
      const t = galloc(4096);
      for (const [pasid, cr3] of entries) guest.write(t + pasid * 8, qwordsToBytes([encodeGcr3Entry(true, cr3)]));
      return t;
    },
    viommu: (parent, type = 0x1234, dev = devId) => call(proc, fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { size: 40, type, dev_id: dev, hwpt_id: parent }).out_viommu_id,
    nested: (ptId, gdte, opts = {}) => {
      const q = Array.isArray(gdte) ? gdte : encodeDteQwords(gdte);
      const data = proc.memory.alloc(64);
      data.bytes.set(qwordsToBytes(q));
      return call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, {
        dev_id: opts.dev ?? devId, pt_id: ptId, data_type: opts.type ?? U.IOMMU_HWPT_DATA_AMD_GUEST, data_len: opts.len ?? 32, data_uptr: data.addr,
      }).out_hwpt_id;
    },
  };
}
