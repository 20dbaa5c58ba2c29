// A minimal DriverV1 for the core's own tests and benchmarks: 4 KiB page tables kept as a map
// from IOVA page to physical page, optional dirty tracking, reserved regions and PASIDs per
// device, and a translate() that walks the attached domain. Not a hardware model.

import { SystemError } from '@viommu/uapi';
import { IOMMU_WRITE, type DirtyTracking, type DomainGeometry } from '../driver/domain.js';
import {
  DMA_WRITE,
  DOMAIN_DIRTY_TRACKING,
  DOMAIN_NEST_PARENT,
  DOMAIN_PASID,
  TRANSLATE_FAULT,
  TRANSLATE_OK,
  TRANSLATE_PAGE_REQUEST,
  type DeviceInfo,
  type DriverDevice,
  type DriverDomain,
  type DriverHost,
  type DriverPagingDomain,
  type DriverV1,
  type HwInfo,
  type ReservedRegion,
  type Translation,
} from '../driver/driver.js';

const PAGE = 4096;

export class SimpleDomain implements DriverPagingDomain {
  readonly kind = 'paging';
  readonly geometry: DomainGeometry;
  readonly dirty?: DirtyTracking;
  /** IOVA page number -> (physical page number << 2) | prot. */
  readonly pages = new Map<number, number>();
  readonly dirtyPages = new Set<number>();
  freed = false;
  faultCapable = false;

  constructor(
    readonly nestParent: boolean,
    dirty: boolean,
    apertureLast: bigint,
  ) {
    this.geometry = { apertureStart: 0n, apertureLast, pgsizeBitmap: BigInt(PAGE) };
    if (dirty) {
      const state = { tracking: false };
      const dirtyPages = this.dirtyPages;
      this.dirty = {
        get enabled() {
          return state.tracking;
        },
        setEnabled(e: boolean) {
          state.tracking = e;
        },
        readAndClear(iova: bigint, length: bigint, noClear: boolean, mark: (iova: bigint, length: bigint) => void) {
          const first = Number(iova / BigInt(PAGE));
          const last = Number((iova + length - 1n) / BigInt(PAGE));
          for (let p = first; p <= last; p++) {
            if (!dirtyPages.has(p)) continue;
            mark(BigInt(p) * BigInt(PAGE), BigInt(PAGE));
            if (!noClear) dirtyPages.delete(p);
          }
        },
      };
    }
  }

  map(iova: bigint, pa: bigint, length: bigint, prot: number): void {
    const n = Number(length / BigInt(PAGE));
    const v = Number(iova / BigInt(PAGE));
    const p = Number(pa / BigInt(PAGE));
    for (let i = 0; i < n; i++) {
      if (this.pages.has(v + i)) throw new Error(`SimpleDomain: page 0x${((v + i) * PAGE).toString(16)} mapped twice`);
    }
    for (let i = 0; i < n; i++) this.pages.set(v + i, (p + i) * 4 + prot);
  }

  unmap(iova: bigint, length: bigint): bigint {
    const n = Number(length / BigInt(PAGE));
    const v = Number(iova / BigInt(PAGE));
    let done = 0n;
    for (let i = 0; i < n; i++) if (this.pages.delete(v + i)) done += BigInt(PAGE);
    return done;
  }

  iovaToPhys(iova: bigint): bigint | undefined {
    const e = this.pages.get(Number(iova / BigInt(PAGE)));
    return e === undefined ? undefined : BigInt(Math.floor(e / 4) * PAGE) + (iova % BigInt(PAGE));
  }

  enforceCacheCoherency(): boolean {
    return true;
  }

  setFaultCapable(capable: boolean): void {
    this.faultCapable = capable;
  }

  free(): void {
    if (this.freed) throw new Error('SimpleDomain freed twice');
    this.freed = true;
  }
}

export interface SimpleDriverOptions {
  name?: string;
  /** hw_info type and bytes to report; absent = the driver has no hw_info hook. */
  hwInfo?: { type: number; data: Uint8Array };
  dirtyTracking?: boolean;
  /** Reserved regions every device reports. */
  reserved?: ReservedRegion[];
  apertureLast?: bigint;
}

class SimpleDevice implements DriverDevice {
  constructor(
    readonly info: DeviceInfo,
    readonly dirtyTracking: boolean,
    private readonly resv: ReservedRegion[],
  ) {}
  get maxPasidLog2() {
    return this.info.pasidBits;
  }
  get atsUsable() {
    return this.info.ats;
  }
  readonly pci = true;
  readonly enforceCacheCoherency = false;
  reservedRegions(): readonly ReservedRegion[] {
    return this.resv;
  }
}

export interface SimpleDriver extends DriverV1 {
  /** Domains allocated and not freed. */
  readonly liveDomains: Set<SimpleDomain>;
  /** What is attached where: `${name}/${pasid}` -> domain. */
  readonly attachments: Map<string, DriverDomain>;
}

export function simpleDriver(opts: SimpleDriverOptions = {}): SimpleDriver {
  const liveDomains = new Set<SimpleDomain>();
  const attachments = new Map<string, DriverDomain>();
  let host: DriverHost | undefined;
  const driver: SimpleDriver = {
    apiVersion: 1,
    name: opts.name ?? 'simple0',
    liveDomains,
    attachments,
    probe(h) {
      host = h;
    },
    probeDevice(info) {
      return new SimpleDevice(info, opts.dirtyTracking ?? false, opts.reserved ?? []);
    },
    ...(opts.hwInfo
      ? {
          hwInfo(_dev: DriverDevice, requested: number): HwInfo {
            if (requested !== 0 && requested !== opts.hwInfo!.type) throw new SystemError('EOPNOTSUPP', 'ioctl', 'hw info type');
            return opts.hwInfo!;
          },
        }
      : {}),
    allocPagingDomain(dev, flags) {
      if (flags & ~(DOMAIN_NEST_PARENT | DOMAIN_DIRTY_TRACKING | DOMAIN_PASID)) throw new SystemError('EOPNOTSUPP', 'ioctl');
      host?.failPoint('simple:domain');
      const d = new SimpleDomain((flags & DOMAIN_NEST_PARENT) !== 0, (flags & DOMAIN_DIRTY_TRACKING) !== 0, opts.apertureLast ?? (1n << 48n) - 1n);
      const free = d.free.bind(d);
      d.free = () => {
        free();
        liveDomains.delete(d);
      };
      liveDomains.add(d);
      void dev;
      return d;
    },
    attach(dev, pasid, domain) {
      const key = `${dev.info.name}/${pasid}`;
      if (domain) attachments.set(key, domain);
      else attachments.delete(key);
    },
    translate(dev, pasid, iova, access, out: Translation) {
      const d = attachments.get(`${dev.info.name}/${pasid}`);
      if (!(d instanceof SimpleDomain)) {
        out.reason = 'no domain';
        return TRANSLATE_FAULT;
      }
      const e = d.pages.get(Math.floor(iova / PAGE));
      if (e === undefined || (access & DMA_WRITE && !(e & IOMMU_WRITE))) {
        out.reason = 'not mapped';
        return d.faultCapable ? TRANSLATE_PAGE_REQUEST : TRANSLATE_FAULT;
      }
      if (access & DMA_WRITE) d.dirtyPages.add(Math.floor(iova / PAGE));
      out.pa = Math.floor(e / 4) * PAGE + (iova % PAGE);
      out.length = PAGE - (iova % PAGE);
      return TRANSLATE_OK;
    },
  };
  return driver;
}
