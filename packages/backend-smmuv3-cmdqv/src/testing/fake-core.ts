// A minimal stand-in for core's side of the driver interface, for driving the backend directly in
// unit tests and benchmarks: a DriverHost over one PhysicalMemory, user memory, and a ViommuCore
// with a vDEVICE table, mmap registry and collected vEVENTs.
import {
  AddressSpace, PhysicalMemory,
  type DriverDevice, type DriverHost, type DriverPagingDomain, type UserData, type UserDataArray, type ViommuCore,
} from '@viommu/core';

export class FakeHost implements DriverHost {
  readonly physical: PhysicalMemory;
  readonly user: AddressSpace;
  constructor(physical = new PhysicalMemory()) {
    this.physical = physical;
    this.user = new AddressSpace(physical);
  }
  reportPageRequest(): Promise<number> {
    return Promise.resolve(1);
  }
  failPoint(): void {}

  /** Vendor data in user memory. */
  userData(type: number, bytes: Uint8Array): UserData {
    if (bytes.length === 0) return { type, uptr: 0n, len: 0, memory: this.user };
    const m = this.user.alloc(Math.max(bytes.length, 1));
    m.bytes.set(bytes);
    return { type, uptr: m.addr, len: bytes.length, memory: this.user };
  }

  userArray(type: number, entryLen: number, entries: Uint8Array[]): UserDataArray {
    const m = this.user.alloc(Math.max(entryLen * entries.length, 1));
    entries.forEach((e, i) => m.bytes.set(e, i * entryLen));
    return { type, uptr: m.addr, entryLen, entryNum: entries.length, memory: this.user };
  }
}

export class FakeViommuCore implements ViommuCore {
  readonly vdevs = new Map<bigint, DriverDevice>();
  readonly events: { type: number; payload: Uint8Array }[] = [];
  readonly mmaps = new Map<bigint, { pa: number; length: number }>();
  private nextOffset = 0x10000n;
  constructor(
    readonly id: number,
    readonly type: number,
    readonly parent: DriverPagingDomain,
  ) {}
  reportEvent(type: number, payload: Uint8Array): undefined {
    this.events.push({ type, payload: payload.slice() });
    return undefined;
  }
  registerMmap(pa: number, length: number): bigint {
    const off = this.nextOffset;
    this.nextOffset += BigInt(length);
    this.mmaps.set(off, { pa, length });
    return off;
  }
  unregisterMmap(offset: bigint): void {
    this.mmaps.delete(offset);
  }
  findDevice(virtId: bigint): DriverDevice | undefined {
    return this.vdevs.get(virtId);
  }
  virtIdOf(dev: DriverDevice): bigint | undefined {
    for (const [k, d] of this.vdevs) if (d === dev) return k;
    return undefined;
  }
}
