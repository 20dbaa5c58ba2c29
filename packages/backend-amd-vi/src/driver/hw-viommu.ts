// EXPERIMENTAL, NOT UPSTREAM: a reduced model of AMD's out-of-tree hardware-accelerated vIOMMU
// (vendors.md section 6), only with `experimentalHwViommu: true` (ADR 0101). The guest owns a
// command buffer and an event log in its RAM (IOMMU_HW_QUEUE_ALLOC types AMD_CMD / AMD_EVT); the
// "hardware" fetches guest commands, rewrites guest DeviceIDs and DomainIDs through this vIOMMU's
// maps (vDEVICE: gDevID → hDevID; nested domains: gDomID → hDomID, unmapped gDomIDs → the parent's
// DomainID) and GPAs through the nest parent, and writes events of the guest's devices into the
// guest's event log with guest DeviceIDs. The guest-visible head/tail/status page (guest MMIO
// 0x2000-0x2fff) is one physical page the VMM mmaps; the guest's tail write is noticed when
// `service()` runs (the model's doorbell). Not modelled: PPR logs, interrupts, the IOMMU private
// address space and the VFCTRL register layout, the translate DeviceID (GPAs go through the parent
// table directly), Control-register pass-through.
import { SystemError } from '@viommu/uapi';
import { qwordsToBytes, type DriverDevice, type DriverHwQueue, type DriverVdevice, type HwQueueInitRequest, type UserData, type ViommuCore } from '@viommu/core';
import {
  CMD_COMPL_WAIT, CMD_COMPLETE_PPR, CMD_INV_ALL, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES, CMD_INV_IRT, CMD_SIZE, type Command,
  INV_ALL_PAGES_ADDRESS, decodeCommand,
} from '../formats/commands.js';
import { EVENT_FLAG_GN, EVENT_ILLEGAL_COMMAND_ERROR, LOG_ENTRY_SIZE, type EventEntry, encodeEvent } from '../formats/logs.js';
import type { AmdViDevice } from './device.js';
import type { V1Domain } from './domains.js';
import type { AmdViDriver } from './driver.js';
import { AmdViommu } from './viommu.js';

/** Out-of-tree uAPI values (AMD's branch; not in Linux 7.2.13). */
export const EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD = 3;
export const EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD = 2;
export const EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_EVT = 3;
/** iommu_viommu_amd as the latest branch has it: features u32, viommu_devid u32, out_vfmmio_mmap_offset u64, kvmfd u32, reserved u32. */
export const EXPERIMENTAL_VIOMMU_AMD_SIZE = 24;
const OUT_OFFSET = 8;

// The guest-visible VF MMIO page: guest offsets 0x2000.. relative to the page.
export const VF_CMD_HEAD = 0x00;
export const VF_CMD_TAIL = 0x08;
export const VF_EVT_HEAD = 0x10;
export const VF_EVT_TAIL = 0x18;
export const VF_STATUS = 0x20;
const STATUS_EVT_INT = 1 << 1;
const STATUS_COMWAIT_INT = 1 << 2;

interface GuestQueue {
  base: number;
  size: number;
}

export class HwViommu extends AmdViommu {
  readonly vfPage: number;
  private readonly mmapOffset: bigint;
  private readonly gdev = new Map<number, number>();
  private readonly hdev = new Map<number, number>();
  private cmd: GuestQueue | undefined;
  private evt: GuestQueue | undefined;
  /** Guest events lost because the guest log was full or absent. */
  lostEvents = 0;

  constructor(readonly amd: AmdViDriver, parent: V1Domain, private readonly core: ViommuCore, data: UserData) {
    super(amd, parent);
    if (data.type !== EXPERIMENTAL_IOMMU_VIOMMU_TYPE_AMD || data.len < OUT_OFFSET + 8 || data.len > EXPERIMENTAL_VIOMMU_AMD_SIZE) {
      super.destroy();
      throw new SystemError('EINVAL', 'ioctl', 'the AMD hardware vIOMMU needs iommu_viommu_amd');
    }
    this.vfPage = amd.host.physical.allocRun(1).firstFrame * 4096;
    this.mmapOffset = core.registerMmap(this.vfPage, 4096);
    data.memory.write(data.uptr + BigInt(OUT_OFFSET), qwordsToBytes([this.mmapOffset]));
  }

  override destroy(): void {
    this.core.unregisterMmap(this.mmapOffset);
    this.amd.host.physical.freeRun(this.vfPage / 4096);
    super.destroy();
  }

  vdeviceInit(req: { readonly dev: DriverDevice; readonly virtId: bigint }): DriverVdevice {
    if (req.virtId > 0xffffn) throw new SystemError('EINVAL', 'ioctl', 'guest DeviceID beyond 16 bits');
    const g = Number(req.virtId);
    const h = (req.dev as AmdViDevice).devId;
    if (this.gdev.has(g)) throw new SystemError('EEXIST', 'ioctl', `guest DeviceID 0x${g.toString(16)} mapped`);
    this.gdev.set(g, h);
    this.hdev.set(h, g);
    return { destroy: () => { this.gdev.delete(g); this.hdev.delete(h); } };
  }

  hwQueueSupported(type: number): boolean {
    return type === EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD || type === EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_EVT;
  }

  hwQueueInit(req: HwQueueInitRequest): DriverHwQueue {
    if (!this.hwQueueSupported(req.type)) throw new SystemError('EOPNOTSUPP', 'ioctl', 'HW queue type');
    if (req.index !== 0) throw new SystemError('EINVAL', 'ioctl', 'only index 0 (no event/PPR log B)');
    const len = req.length;
    if ((len & (len - 1)) !== 0 || len < 4096 || len > 512 * 1024) throw new SystemError('EINVAL', 'ioctl', `queue length ${len}`);
    const isCmd = req.type === EXPERIMENTAL_IOMMU_HW_QUEUE_TYPE_AMD_CMD;
    if (isCmd ? this.cmd : this.evt) throw new SystemError('EEXIST', 'ioctl', 'queue exists');
    const q = { base: req.basePa, size: len };
    if (isCmd) this.cmd = q;
    else this.evt = q;
    const mem = this.amd.host.physical;
    for (const off of isCmd ? [VF_CMD_HEAD, VF_CMD_TAIL] : [VF_EVT_HEAD, VF_EVT_TAIL]) mem.writeU32(this.vfPage + off, 0);
    return { destroy: () => { if (isCmd) this.cmd = undefined; else this.evt = undefined; } };
  }

  private hDomOf(gDomId: number): number {
    return this.gdom.get(gDomId)?.hDomId ?? this.parent.domainId;
  }

  /**
   * The doorbell: fetch guest commands from head to the tail the guest wrote into the VF page.
   * A command naming an unmapped guest DeviceID, or a store outside guest RAM, is illegal: an
   * ILLEGAL_COMMAND_ERROR in the guest's event log, and the processor stops on it.
   */
  service(): void {
    const q = this.cmd;
    if (!q) return;
    const mem = this.amd.host.physical;
    let head = mem.readU32(this.vfPage + VF_CMD_HEAD) % q.size;
    const tail = mem.readU32(this.vfPage + VF_CMD_TAIL) % q.size;
    const w = new Uint32Array(4);
    while (head !== tail) {
      for (let i = 0; i < 4; i++) w[i] = mem.readU32(q.base + head + i * 4);
      if (!this.execute(w)) {
        this.guestEvent({ code: EVENT_ILLEGAL_COMMAND_ERROR, devId: 0, pasid: 0, domainId: 0, flags: 0, address: BigInt(q.base + head) });
        break;
      }
      head = (head + CMD_SIZE) % q.size;
    }
    mem.writeU32(this.vfPage + VF_CMD_HEAD, head);
  }

  private execute(w: Uint32Array): boolean {
    const c = decodeCommand(w);
    const host: Command[] = [];
    const hDev = (g: number): number | undefined => this.gdev.get(g);
    switch (c.op) {
      case CMD_COMPL_WAIT: {
        const x = c as Extract<Command, { op: 1 }>;
        if (x.s) {
          const pa = this.parent.iovaToPhys(x.storeAddr);
          if (pa === undefined || (x.storeAddr & 7n) !== 0n) return false;
          this.amd.host.physical.write(Number(pa), qwordsToBytes([x.storeData]));
        }
        if (x.i) this.setStatus(STATUS_COMWAIT_INT);
        return true;
      }
      case CMD_INV_DEV_ENTRY:
      case CMD_INV_IRT: {
        const h = hDev((c as { devId: number }).devId);
        if (h === undefined) return false;
        host.push({ ...(c as Extract<Command, { op: 2 }>), devId: h });
        break;
      }
      case CMD_INV_IOTLB_PAGES: {
        const x = c as Extract<Command, { op: 4 }>;
        const h = hDev(x.devId);
        if (h === undefined) return false;
        host.push({ ...x, devId: h, queueId: h });
        break;
      }
      case CMD_COMPLETE_PPR: {
        const x = c as Extract<Command, { op: 7 }>;
        const h = hDev(x.devId);
        if (h === undefined) return false;
        host.push({ ...x, devId: h });
        break;
      }
      case CMD_INV_IOMMU_PAGES: {
        const x = c as Extract<Command, { op: 3 }>;
        host.push({ ...x, domainId: this.hDomOf(x.domainId) });
        break;
      }
      case CMD_INV_ALL:
        // Everything of this guest only: its domains and its devices, never another guest's.
        for (const d of new Set([this.parent.domainId, ...this.hostDomainIds()])) {
          host.push({ op: CMD_INV_IOMMU_PAGES, domainId: d, pasid: 0, s: true, pde: true, gn: false, address: INV_ALL_PAGES_ADDRESS });
        }
        for (const h of this.gdev.values()) host.push({ op: CMD_INV_DEV_ENTRY, devId: h });
        break;
      default:
        return false;
    }
    this.amd.submit(host);
    return true;
  }

  private setStatus(bit: number): void {
    const mem = this.amd.host.physical;
    mem.writeU32(this.vfPage + VF_STATUS, mem.readU32(this.vfPage + VF_STATUS) | bit);
  }

  /** A host event of one of this guest's devices: into the guest's log with guest IDs. Returns whether it was this guest's. */
  forwardEvent(e: EventEntry): boolean {
    const g = this.hdev.get(e.devId);
    if (g === undefined) return false;
    let gDom = e.domainId;
    if ((e.flags & EVENT_FLAG_GN) === 0) for (const [gd, info] of this.gdom) if (info.hDomId === e.domainId) gDom = gd;
    this.guestEvent({ ...e, devId: g, domainId: gDom });
    return true;
  }

  private guestEvent(e: EventEntry): void {
    const q = this.evt;
    const mem = this.amd.host.physical;
    if (!q) {
      this.lostEvents++;
      return;
    }
    const tail = mem.readU32(this.vfPage + VF_EVT_TAIL) % q.size;
    const next = (tail + LOG_ENTRY_SIZE) % q.size;
    if (next === mem.readU32(this.vfPage + VF_EVT_HEAD) % q.size) {
      this.lostEvents++;
      return;
    }
    mem.write(q.base + tail, encodeEvent(e));
    mem.writeU32(this.vfPage + VF_EVT_TAIL, next);
    this.setStatus(STATUS_EVT_INT);
  }
}
