// The EXPERIMENTAL (not upstream) hardware vIOMMU: guest command buffer and event log in guest RAM,
// guest DeviceID / DomainID rewriting, and proof that it is off by default.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { CMD_COMPL_WAIT, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, type Command, buildInvAddress, encodeCommand } from '../formats/commands.js';
import { EVENT_ILLEGAL_COMMAND_ERROR, EVENT_IO_PAGE_FAULT, decodeEvent } from '../formats/logs.js';
import { PERM_R, PERM_W } from '../pgtable/table.js';
import { RAM_GPA, call, createRig, errno } from '../testing/rig.js';
import type { HwViommu} from './hw-viommu.js';
import {
  EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD, EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_EVT, EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD, VF_CMD_HEAD,
  VF_CMD_TAIL, VF_EVT_TAIL,
} from './hw-viommu.js';

const IOVA = 0x1000_0000;
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function setup() {
  const r = createRig({ nested: true, experimentalHwViommu: true });
  const s2 = r.nestParent();
  const data = r.proc.memory.alloc(24);
  const v = call(r.proc, r.fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, {
    size: 40, type: EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD, dev_id: r.devId, hwpt_id: s2, data_len: 24, data_uptr: data.addr,
  }).out_viommu_id;
  const offset = new DataView(data.bytes.buffer, data.bytes.byteOffset).getBigUint64(8, true);
  const vf = r.proc.mmap(r.fd, 4096, offset).bytes;
  const vfView = new DataView(vf.buffer, vf.byteOffset, 4096);
  call(r.proc, r.fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: v, dev_id: r.devId, virt_id: 0x20n });
  const queue = (type: number) => {
    const gpa = r.galloc(4096);
    call(r.proc, r.fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, { size: 40, viommu_id: v, type, index: 0, nesting_parent_iova: BigInt(gpa), length: 4096n });
    return gpa;
  };
  const cmdGpa = queue(EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD);
  const evtGpa = queue(EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_EVT);
  const table = r.guestTable();
  table.map(IOVA, RAM_GPA + 0x20000, 4096, PERM_R | PERM_W);
  r.write(RAM_GPA + 0x20000, 'one');
  r.write(RAM_GPA + 0x21000, 'two');
  const gcr3 = r.gcr3([[0, table.root]]);
  r.attach(r.nested(v, { v: true, gv: true, giov: true, gcr3, domainId: 5 }));
  const hwv = [...r.drv.hwViommus][0] as HwViommu;
  let tail = 0;
  const guestCommands = (...cmds: Command[]) => {
    for (const c of cmds) {
      r.ram.bytes.set(encodeCommand(c), cmdGpa - RAM_GPA + tail);
      tail += 16;
    }
    vfView.setUint32(VF_CMD_TAIL, tail, true); // the guest's tail write, straight into the mmapped page
    hwv.service();
  };
  return { r, v, vfView, table, evtGpa, guestCommands, hwv };
}

describe('experimental hardware vIOMMU (experimentalHwViommu: true; NOT upstream)', () => {
  it('guest INVALIDATE_IOMMU_PAGES with its gDomID ends the stale translation; COMPLETION_WAIT stores into guest RAM', async () => {
    const { r, vfView, table, guestCommands } = setup();
    const nic = r.host.device('nic0');
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('one');
    table.remap(IOVA, RAM_GPA + 0x21000, PERM_R | PERM_W);
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('one'); // stale
    const sem = r.galloc(4096);
    guestCommands(
      { op: CMD_INV_IOMMU_PAGES, domainId: 4, pasid: 0, pde: true, gn: true, ...buildInvAddress(BigInt(IOVA), BigInt(IOVA + 0xfff)) }, // another gDomID
      { op: CMD_COMPL_WAIT, s: true, i: false, f: false, storeAddr: BigInt(sem), storeData: 1n },
    );
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('one');
    guestCommands(
      { op: CMD_INV_IOMMU_PAGES, domainId: 5, pasid: 0, pde: true, gn: true, ...buildInvAddress(BigInt(IOVA), BigInt(IOVA + 0xfff)) },
      { op: CMD_COMPL_WAIT, s: true, i: false, f: false, storeAddr: BigInt(sem), storeData: 0x55n },
    );
    expect(text(await nic.dma.read(BigInt(IOVA), 3))).toBe('two');
    expect(r.ram.bytes[sem - RAM_GPA]).toBe(0x55);
    expect(vfView.getUint32(VF_CMD_HEAD, true)).toBe(64);
  });

  it('a command naming an unmapped guest DeviceID is illegal: a guest event, the processor stops on it', () => {
    const { r, vfView, evtGpa, guestCommands } = setup();
    const before = r.drv.hostLog.length;
    guestCommands({ op: CMD_INV_DEV_ENTRY, devId: 0x20 }, { op: CMD_INV_DEV_ENTRY, devId: 0x99 });
    expect(vfView.getUint32(VF_CMD_HEAD, true)).toBe(16);
    expect(vfView.getUint32(VF_EVT_TAIL, true)).toBe(16);
    expect(decodeEvent(r.ram.bytes.subarray(evtGpa - RAM_GPA, evtGpa - RAM_GPA + 16)).code).toBe(EVENT_ILLEGAL_COMMAND_ERROR);
    expect(r.drv.hostLog.length).toBe(before);
  });

  it('faults of the guest\'s device land in the guest event log with the guest DeviceID, not in the host log', async () => {
    const { r, vfView, evtGpa } = setup();
    const before = r.drv.hostLog.length;
    await expect(r.host.device('nic0').dma.read(0x3000_0000n, 4)).rejects.toMatchObject({ code: 'EFAULT' });
    expect(vfView.getUint32(VF_EVT_TAIL, true)).toBe(16);
    expect(decodeEvent(r.ram.bytes.subarray(evtGpa - RAM_GPA, evtGpa - RAM_GPA + 16))).toMatchObject({ code: EVENT_IO_PAGE_FAULT, devId: 0x20, address: 0x3000_0000n });
    expect(r.drv.hostLog.length).toBe(before);
  });

  it('off by default: type 3 is just the upstream destroy-only vIOMMU and HW queues are EOPNOTSUPP', () => {
    const r = createRig({ nested: true });
    const v = r.viommu(r.nestParent(), EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD);
    const gpa = r.galloc(4096);
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, {
      size: 40, viommu_id: v, type: EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD, index: 0, nesting_parent_iova: BigInt(gpa), length: 4096n,
    }))).toBe('EOPNOTSUPP');
    expect(r.drv.hwViommus.size).toBe(0);
  });
});

describe('experimental hardware vIOMMU: hostile guests', () => {
  it('a guest INVALIDATE_IOMMU_ALL never touches another domain; guest DeviceIDs are 16 bits', async () => {
    const r = createRig({ nested: true, experimentalHwViommu: true, second: true });
    // nic1 on its own plain v1 domain, with a translation cached.
    const nic1 = r.bind('nic1');
    const plain = call(r.proc, r.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: nic1.devId, pt_id: r.ioas }).out_hwpt_id;
    r.attach(plain, nic1.dfd);
    r.write(RAM_GPA + 0x30000, 'mine');
    r.write(RAM_GPA + 0x31000, 'moved');
    const dev1 = r.host.device('nic1');
    expect(text(await dev1.dma.read(BigInt(RAM_GPA + 0x30000), 4))).toBe('mine');
    // Change nic1's table behind the caches' back: only an invalidation of nic1's domain would show it.
    const dom1 = r.drv.device(0x0320)!.domain as unknown as { table: { remap(i: number, p: number, perm: number): void; lookup(i: number): number } };
    dom1.table.remap(RAM_GPA + 0x30000, dom1.table.lookup(RAM_GPA + 0x31000), PERM_R | PERM_W);
    // A guest on the experimental vIOMMU (nic0) issues INVALIDATE_IOMMU_ALL.
    const s2 = r.nestParent();
    const data = r.proc.memory.alloc(24);
    const v = call(r.proc, r.fd, U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, { size: 40, type: EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD, dev_id: r.devId, hwpt_id: s2, data_len: 24, data_uptr: data.addr }).out_viommu_id;
    expect(errno(() => call(r.proc, r.fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: v, dev_id: r.devId, virt_id: 0x1_0000n }))).toBe('EINVAL');
    call(r.proc, r.fd, U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, { viommu_id: v, dev_id: r.devId, virt_id: 0x20n });
    const cmdGpa = r.galloc(4096);
    call(r.proc, r.fd, U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, { size: 40, viommu_id: v, type: EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD, index: 0, nesting_parent_iova: BigInt(cmdGpa), length: 4096n });
    r.ram.bytes.set(encodeCommand({ op: 0x8 } as Command), cmdGpa - RAM_GPA);
    const hwv = [...r.drv.hwViommus][0] as HwViommu;
    const vf = r.proc.mmap(r.fd, 4096, new DataView(data.bytes.buffer, data.bytes.byteOffset).getBigUint64(8, true)).bytes;
    new DataView(vf.buffer, vf.byteOffset).setUint32(VF_CMD_TAIL, 16, true);
    hwv.service();
    expect(new DataView(vf.buffer, vf.byteOffset).getUint32(VF_CMD_HEAD, true)).toBe(16);
    expect(text(await dev1.dma.read(BigInt(RAM_GPA + 0x30000), 4))).toBe('mine'); // still the cached translation
  });
});
