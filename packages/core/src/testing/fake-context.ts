// A context for unit tests of an object family through the real ioctl dispatcher, without a host:
// physical memory, one address space, an IommufdContext on a stand-in host, and stand-in DEVICE and
// HWPT_PAGING objects (the core's own ones are tested elsewhere) that tests add to the table. The
// vIOMMU tests (viommu.test.ts, hw-queue.test.ts) build their drivers on it.

import type { StructCodec } from '@viommu/uapi';
import { IommufdContext } from '../context.js';
import type { DriverDevice, DriverPagingDomain, DriverV1 } from '../driver/driver.js';
import { AddressSpace } from '../host/address-space.js';
import { FailNth } from '../host/fail-nth.js';
import type { HostCore } from '../host/host-core.js';
import { PhysicalMemory } from '../host/physical-memory.js';
import { dispatchIommufdIoctl } from '../ioctl/dispatch.js';
import type { Ioas } from '../iommufd/ioas.js';
import { IommufdObject, OBJ } from '../object/object.js';
import type { OpenFile } from '../process/file.js';

/** A bound device as far as the object table and the vIOMMU family look at one. */
export class FakeDevice extends IommufdObject {
  readonly type = OBJ.DEVICE;
  vdev: IommufdObject | undefined;
  destroying = false;
  constructor(
    readonly driver: DriverV1,
    readonly dev: DriverDevice,
  ) {
    super();
  }
  destroy(): void {}
}

/** A paging HWPT: its driver and domain, whether it is a nest parent, and its IOAS (none by default). */
export class FakeHwpt extends IommufdObject {
  readonly type = OBJ.HWPT_PAGING;
  readonly autoDomain = false;
  constructor(
    readonly driver: DriverV1,
    readonly domain: DriverPagingDomain,
    readonly nestParent: boolean,
    readonly ioas: Ioas = undefined as unknown as Ioas,
  ) {
    super();
  }
  destroy(): void {}
}

export function fakeContext() {
  const physical = new PhysicalMemory();
  const mm = new AddressSpace(physical);
  const host = { physical, failNth: new FailNth(), drivers: new Map(), devices: new Map() } as unknown as HostCore;
  const ctx = new IommufdContext(host, mm);
  // The process side of the dispatcher: fds from 3 up, so an ioctl that returns one can be read back.
  const fds: (OpenFile | undefined)[] = [];
  const proc = {
    installFd(f: OpenFile) {
      fds.push(f);
      return fds.length + 2;
    },
    uninstallFd(fd: number) {
      fds[fd - 3] = undefined;
    },
  };
  const file = (fd: number) => fds[fd - 3]!;
  const ioctl = (request: number, bytes: Uint8Array | number) => dispatchIommufdIoctl(ctx, proc, mm, request, bytes);
  /** Encodes `fields`, dispatches the ioctl, and decodes the written-back struct. */
  const call = <C extends StructCodec>(request: number, codec: C, fields: Partial<ReturnType<C['decode']>>) => {
    const bytes = codec.encode(fields as never);
    ioctl(request, bytes);
    return codec.decode(bytes) as ReturnType<C['decode']>;
  };
  /** The code `fn` threw, or 'no error'. */
  const errno = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as { code: string }).code;
    }
    return 'no error';
  };
  /** Puts a stand-in object in the table as an ioctl would (reserve, then finalize). */
  const add = <T extends IommufdObject>(o: T): T => {
    ctx.objects.reserve(o);
    ctx.objects.finalize(o);
    return o;
  };
  return { physical, mm, host, ctx, proc, file, ioctl, call, errno, add };
}
