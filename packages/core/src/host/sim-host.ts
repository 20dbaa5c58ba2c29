// The simulated host (blueprint 3.1): one physical memory, the registered IOMMU drivers, the
// devices behind them, and processes that open /dev/iommu and the devices' VFIO cdevs.
//
//   const host = createSimHost({ iommus: [smmuv3Cmdqv({ name: 'smmu0' })],
//                                devices: [{ name: 'nic0', iommu: 'smmu0', rid: 0x100, pasidBits: 20, pri: true }] });
//   const proc = host.spawn();  const fd = proc.open('/dev/iommu');
//   await host.device('nic0').dma.read(iova, 64);
//
// createSimHost() with no options registers the selftest mock driver (ADR 0003) and no devices.

import type { Clock, FaultQueueOptions } from '@viommu/fault';
import { SystemError } from '@viommu/uapi';
import '../families.js';
import { IommufdContext } from '../context.js';
import { SimDevice } from '../device/sim-device.js';
import { VfioDeviceFile } from '../device/vfio-cdev.js';
import { assertDriverV1, PAGE_RESP_INVALID, type DeviceInfo, type DriverDevice, type DriverHost, type DriverV1, type PageRequest } from '../driver/driver.js';
import { IommufdFile } from '../iommufd-file.js';
import { MemlockUser } from '../ioas/index.js';
import type { IommufdObject } from '../object/object.js';
import type { OpenFile } from '../process/file.js';
import { SimProcess } from '../process/sim-process.js';
import { AddressSpace } from './address-space.js';
import { defaultDriver } from './default-driver.js';
import { FailNth } from './fail-nth.js';
import type { HostCore } from './host-core.js';
import { PhysicalMemory } from './physical-memory.js';

export interface SimDeviceSpec {
  readonly name: string;
  /** The name of the IOMMU (driver instance) the device sits behind. */
  readonly iommu: string;
  readonly rid: number;
  readonly pasidBits?: number;
  readonly pri?: boolean;
  readonly ats?: boolean;
  /** PCI PASID control register bits (default clear). */
  readonly pasidExec?: boolean;
  readonly pasidPriv?: boolean;
  /** Driver-specific extras, passed to probeDevice untouched. */
  readonly flags?: number;
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface SimHostOptions {
  /** Driver instances (a backend factory's result) or zero-argument factories. Default: the selftest mock. */
  readonly iommus?: readonly (DriverV1 | (() => DriverV1))[];
  readonly devices?: readonly SimDeviceSpec[];
  /**
   * Simulator policy, not Linux: a page-request group a FAULT queue holds unanswered for this many
   * milliseconds is answered IOMMU_PAGE_RESP_FAILURE, so a DMA waiting on it fails (EFAULT) instead
   * of hanging. Default: no timeout (as in Linux).
   */
  readonly faultResponseTimeoutMs?: number;
  /** The clock of that timeout (tests pass a ManualClock from @viommu/fault). Default: real time. */
  readonly faultClock?: Clock;
}

export interface SpawnOptions {
  /** The user the process runs as; processes of one uid share pinned-page accounting. Default 0. */
  readonly uid?: number;
  /** RLIMIT_MEMLOCK in bytes. Default unlimited. */
  readonly memlockLimit?: number;
  /** Default true (root). */
  readonly capIpcLock?: boolean;
  /** Default true (root). */
  readonly capSysResource?: boolean;
}

export interface SimHost extends HostCore {
  spawn(opts?: SpawnOptions): SimProcess;
  /** The device named `name` (throws if there is none). */
  device(name: string): SimDevice;
  /**
   * Adds a device at run time: PCI devices get the next VFIO cdev; `cdev: false` makes one without
   * (the selftest's mock devices, bound through IOMMU_TEST_CMD instead).
   */
  addDevice(spec: SimDeviceSpec, opts?: { cdev?: boolean }): SimDevice;
  /** Removes a device added without a cdev (it must not be bound). */
  removeDevice(name: string): void;
  /** The driver named `name`. */
  driver(name: string): DriverV1;
  /** Live iommufd contexts (for the invariant checker). */
  readonly contexts: ReadonlySet<IommufdContext>;
  /** Objects a context release could not destroy (a reference leak; empty in a correct model). */
  readonly leaks: readonly IommufdObject[];
}

export function createSimHost(options: SimHostOptions = {}): SimHost {
  return new SimHostImpl(options);
}

class SimHostImpl implements SimHost, DriverHost {
  readonly physical = new PhysicalMemory();
  readonly failNth = new FailNth();
  readonly drivers = new Map<string, DriverV1>();
  readonly devices = new Map<string, SimDevice>();
  readonly contexts = new Set<IommufdContext>();
  readonly leaks: IommufdObject[] = [];
  readonly faultQueueOptions: FaultQueueOptions;
  private readonly byDriverDevice = new Map<DriverDevice, SimDevice>();
  private readonly users = new Map<number, MemlockUser>();
  private nextCdev = 0;

  constructor(options: SimHostOptions) {
    this.faultQueueOptions = {
      ...(options.faultResponseTimeoutMs !== undefined ? { responseTimeoutMs: options.faultResponseTimeoutMs } : {}),
      ...(options.faultClock ? { clock: options.faultClock } : {}),
    };
    const iommus = options.iommus ?? [defaultDriver];
    for (const entry of iommus) {
      const d = typeof entry === 'function' ? entry() : entry;
      assertDriverV1(d);
      if (this.drivers.has(d.name)) throw new TypeError(`two IOMMUs named ${d.name}`);
      this.drivers.set(d.name, d);
      d.probe(this);
    }
    for (const spec of options.devices ?? []) this.addDevice(spec);
  }

  spawn(opts: SpawnOptions = {}): SimProcess {
    const uid = opts.uid ?? 0;
    let user = this.users.get(uid);
    if (!user) this.users.set(uid, (user = new MemlockUser(uid)));
    return new SimProcess(this, new AddressSpace(this.physical), {
      user,
      memlockLimit: opts.memlockLimit ?? Infinity,
      capIpcLock: opts.capIpcLock ?? true,
      capSysResource: opts.capSysResource ?? true,
    });
  }

  device(name: string): SimDevice {
    const d = this.devices.get(name);
    if (!d) throw new Error(`no device named ${name}`);
    return d;
  }

  driver(name: string): DriverV1 {
    const d = this.drivers.get(name);
    if (!d) throw new Error(`no IOMMU named ${name}`);
    return d;
  }

  addDevice(spec: SimDeviceSpec, opts: { cdev?: boolean } = {}): SimDevice {
    if (this.devices.has(spec.name)) throw new Error(`two devices named ${spec.name}`);
    const driver = this.driver(spec.iommu);
    const info: DeviceInfo = {
      name: spec.name,
      rid: spec.rid,
      pasidBits: spec.pasidBits ?? 0,
      pri: spec.pri ?? false,
      ats: spec.ats ?? false,
      ...(spec.pasidExec !== undefined ? { pasidExec: spec.pasidExec } : {}),
      ...(spec.pasidPriv !== undefined ? { pasidPriv: spec.pasidPriv } : {}),
      ...(spec.flags !== undefined ? { flags: spec.flags } : {}),
      ...(spec.extra !== undefined ? { extra: spec.extra } : {}),
    };
    const ddev = driver.probeDevice(info);
    const dev = new SimDevice(info, opts.cdev === false ? -1 : this.nextCdev++, driver, ddev, this.physical);
    this.devices.set(spec.name, dev);
    this.byDriverDevice.set(ddev, dev);
    return dev;
  }

  removeDevice(name: string): void {
    const dev = this.device(name);
    if (dev.bound) throw new Error(`device ${name} is still bound`);
    this.devices.delete(name);
    this.byDriverDevice.delete(dev.ddev);
    dev.driver.releaseDevice?.(dev.ddev);
  }

  openPath(proc: SimProcess, path: string): OpenFile {
    if (path === '/dev/iommu') {
      const ctx = new IommufdContext(this, proc.memory);
      this.contexts.add(ctx);
      ctx.onRelease = (c) => {
        this.contexts.delete(c);
        this.leaks.push(...c.leaked);
      };
      return new IommufdFile(ctx, proc, proc.memory);
    }
    const m = /^\/dev\/vfio\/devices\/vfio(\d+)$/.exec(path);
    if (m) {
      const index = Number(m[1]);
      for (const dev of this.devices.values()) if (dev.index === index) return new VfioDeviceFile(dev, proc);
    }
    throw new SystemError('ENOENT', 'open', path);
  }

  /**
   * fork: a child's fd of an iommufd gets its own view of the same context (another file
   * reference), so its ioctls pin and charge the child's memory, as current->mm would.
   */
  forkFile(file: OpenFile, child: SimProcess): OpenFile | undefined {
    if (!(file instanceof IommufdFile)) return undefined;
    file.ctx.holdFile();
    return new IommufdFile(file.ctx, child, child.memory);
  }

  // DriverHost
  reportPageRequest(ddev: DriverDevice, req: PageRequest): Promise<number> {
    const dev = this.byDriverDevice.get(ddev);
    if (!dev?.pageRequestRoute) return Promise.resolve(PAGE_RESP_INVALID);
    return dev.pageRequestRoute(req);
  }

  failPoint(what: string): void {
    this.failNth.point(what);
  }
}
