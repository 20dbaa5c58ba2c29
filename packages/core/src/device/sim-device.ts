// A simulated device behind an IOMMU (blueprint 3.1): a PCI function exposed as a VFIO cdev, or a
// selftest mock device. Its DMA goes through the driver's translate(), which walks the hardware
// model's own tables; an untranslatable access rejects with EFAULT carrying the vendor's reason,
// or, for a PRI-capable device on a fault-capable domain, becomes a page request that settles the
// DMA when userspace answers.

import { SystemError } from '@viommu/uapi';
import {
  DMA_READ,
  DMA_WRITE,
  NO_PASID,
  PAGE_RESP_SUCCESS,
  TRANSLATE_FAULT,
  TRANSLATE_OK,
  type DeviceInfo,
  type DriverDevice,
  type DriverV1,
  type PageRequest,
  type Translation,
} from '../driver/driver.js';
import type { PhysicalMemory } from '../host/physical-memory.js';

/** A DMA that could not be translated. */
export class DmaFaultError extends SystemError {
  constructor(
    readonly iova: bigint,
    readonly pasid: number,
    /** The vendor's fault reason (e.g. 'F_TRANSLATION'). */
    readonly reason: string,
  ) {
    super('EFAULT', 'dma', `${reason} at iova 0x${iova.toString(16)}${pasid !== NO_PASID ? ` pasid ${pasid}` : ''}`);
  }
}

export interface DmaOptions {
  /** The PASID the device tags the request with; NO_PASID (default) for requests without one. */
  pasid?: number;
}

/** What a bound device does with a page request; set by the iommufd device object while bound. */
export type PageRequestRoute = (req: PageRequest) => Promise<number>;

/** A DMA retried after a successful page response may fault again; bound the retries. */
const MAX_PRI_RETRIES = 4;

export class SimDevice {
  /** The iommufd DEVICE object bound to this device, while bound (set by src/device/). */
  bound: unknown;
  /** Where page requests go while the device is bound. */
  pageRequestRoute: PageRequestRoute | undefined;
  readonly dma: { read: (iova: bigint, length: number, opts?: DmaOptions) => Promise<Uint8Array>; write: (iova: bigint, bytes: Uint8Array, opts?: DmaOptions) => Promise<void> };
  private readonly tr: Translation = { pa: 0, length: 0, reason: '' };

  constructor(
    readonly info: DeviceInfo,
    /** The VFIO cdev index (path /dev/vfio/devices/vfio<index>), or -1 for a device without a cdev (selftest mock). */
    readonly index: number,
    readonly driver: DriverV1,
    readonly ddev: DriverDevice,
    private readonly physical: PhysicalMemory,
  ) {
    this.dma = {
      read: (iova, length, opts) => this.dmaRead(iova, length, opts?.pasid ?? NO_PASID),
      write: (iova, bytes, opts) => this.dmaWrite(iova, bytes, opts?.pasid ?? NO_PASID),
    };
  }

  get name(): string {
    return this.info.name;
  }

  get path(): string {
    return `/dev/vfio/devices/vfio${this.index}`;
  }

  private async dmaRead(iova: bigint, length: number, pasid: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.walk(iova, length, pasid, DMA_READ, (pa, pos, n) => this.physical.read(pa, out.subarray(pos, pos + n)));
    return out;
  }

  private async dmaWrite(iova: bigint, bytes: Uint8Array, pasid: number): Promise<void> {
    await this.walk(iova, bytes.length, pasid, DMA_WRITE, (pa, pos, n) => this.physical.write(pa, bytes.subarray(pos, pos + n)));
  }

  /** Translates [iova, iova + length) piece by piece, calling `each` for every contiguous piece. */
  private async walk(iova: bigint, length: number, pasid: number, access: number, each: (pa: number, pos: number, n: number) => void): Promise<void> {
    if (iova < 0n || iova + BigInt(length) > BigInt(Number.MAX_SAFE_INTEGER)) throw new DmaFaultError(iova, pasid, 'iova out of the modelled range');
    const base = Number(iova);
    let pos = 0;
    let retries = 0;
    while (pos < length) {
      const tr = this.tr;
      const rc = this.driver.translate(this.ddev, pasid, base + pos, access, tr);
      if (rc === TRANSLATE_OK) {
        const n = Math.min(tr.length, length - pos);
        each(tr.pa, pos, n);
        pos += n;
        retries = 0;
        continue;
      }
      if (rc === TRANSLATE_FAULT || !this.info.pri || !this.pageRequestRoute || retries >= MAX_PRI_RETRIES) {
        throw new DmaFaultError(BigInt(base + pos), pasid, tr.reason || 'untranslated');
      }
      const reason = tr.reason;
      const code = await this.pageRequestRoute({ pasid, addr: BigInt(base + pos), perm: access, grpid: 0, last: true });
      if (code !== PAGE_RESP_SUCCESS) throw new DmaFaultError(BigInt(base + pos), pasid, reason || 'page request failed');
      retries++;
    }
  }
}
