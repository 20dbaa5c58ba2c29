// One context's object table (the kernel's ictx->objects xarray): IDs lowest-free from 1 in
// [1, 0x7fffffff] and reused at once, reserve-then-finalize, type-checked lookup, IOMMU_DESTROY,
// tombstones, and the close-time teardown passes (spec sections 4.3-4.6).
//
// IDs are array indexes (the table is dense because allocation is lowest-free); freed IDs below the
// high-water mark sit in a min-heap, so allocation and free are O(log n) however large the table.

import { MinHeap } from '@viommu/fault';
import { SystemError } from '@viommu/uapi';
import type { IommufdObject} from './object.js';
import { OBJ, OBJ_NAMES, OBJ_STATE, type ObjType } from './object.js';

export const ID_MIN = 1;
export const ID_MAX = 0x7fffffff;

/** A destroyed vDEVICE's ID, kept occupied until the context is released (spec 4.3). */
const TOMBSTONE = Symbol('tombstone');

type Slot = IommufdObject | typeof TOMBSTONE | undefined;

export class ObjectTable {
  private readonly slots: Slot[] = [undefined]; // index 0 is never used
  private readonly freeHeap = new MinHeap(); // free IDs below slots.length
  private liveCount = 0;
  private tombstones = 0;
  /** Test hook: the highest ID this table may hand out (to exercise EBUSY on exhaustion). */
  idLimit = ID_MAX;
  /** Called before every ID allocation; fault injection throws from it. */
  failPoint: ((what: string) => void) | undefined;

  /** Takes the lowest free ID for `obj`; the object stays invisible until finalize (EBUSY when full). */
  reserve(obj: IommufdObject): void {
    if (obj.state !== OBJ_STATE.NEW) throw new Error(`object already in a table (id ${obj.id})`);
    this.failPoint?.('object-id');
    let id: number;
    if (this.freeHeap.size > 0) {
      id = this.freeHeap.pop();
    } else {
      id = this.slots.length;
      if (id > this.idLimit) throw new SystemError('EBUSY', 'ioctl', 'object ID space exhausted');
      this.slots.push(undefined);
    }
    obj.id = id;
    obj.state = OBJ_STATE.RESERVED;
    this.slots[id] = obj;
  }

  /** Makes a reserved object visible to lookups. */
  finalize(obj: IommufdObject): void {
    if (obj.state !== OBJ_STATE.RESERVED || this.slots[obj.id] !== obj) throw new Error(`finalize of an object that is not reserved (id ${obj.id})`);
    obj.state = OBJ_STATE.LIVE;
    this.liveCount++;
  }

  /** Gives up a reserved object: abort() it and free its ID. */
  abort(obj: IommufdObject): void {
    if (obj.state !== OBJ_STATE.RESERVED || this.slots[obj.id] !== obj) throw new Error(`abort of an object that is not reserved (id ${obj.id})`);
    this.release(obj.id);
    obj.state = OBJ_STATE.DEAD;
    obj.abort();
  }

  /** The live object `id` of `type` (OBJ.ANY: any type); ENOENT otherwise. */
  get<T extends IommufdObject = IommufdObject>(id: number, type: ObjType): T {
    const obj = this.find(id);
    if (!obj || (type !== OBJ.ANY && obj.type !== type)) throw new SystemError('ENOENT', 'ioctl', `no ${type === OBJ.ANY ? 'object' : OBJ_NAMES[type]} with ID ${id}`);
    return obj as T;
  }

  /** The live object `id`, or undefined (free, reserved, tombstoned). */
  find(id: number): IommufdObject | undefined {
    if (!Number.isInteger(id) || id < ID_MIN || id >= this.slots.length) return undefined;
    const s = this.slots[id];
    return s !== undefined && s !== TOMBSTONE && s.state === OBJ_STATE.LIVE ? s : undefined;
  }

  /** IOMMU_DESTROY: ENOENT unless live; EBUSY unless only the table holds it; else removes and destroys it. */
  destroyById(id: number): void {
    const obj = this.find(id);
    if (!obj) throw new SystemError('ENOENT', 'ioctl', `no object with ID ${id}`);
    if (obj.users !== 1) throw new SystemError('EBUSY', 'ioctl', `${OBJ_NAMES[obj.type]} ${id} is in use (users ${obj.users})`);
    this.remove(obj);
  }

  /**
   * Kernel-initiated removal (auto HWPT after the last detach, device unbind, an owner destroying
   * a hidden object): runs preDestroy, takes the object out (leaving a tombstone if asked), then
   * destroys it. The caller must have dropped every other reference first.
   */
  remove(obj: IommufdObject, opts?: { tombstone?: boolean }): void {
    if (obj.state !== OBJ_STATE.LIVE || this.slots[obj.id] !== obj) throw new Error(`remove of an object that is not live (id ${obj.id})`);
    obj.preDestroy?.();
    if (obj.users !== 1) throw new Error(`${OBJ_NAMES[obj.type]} ${obj.id} removed with users ${obj.users}`);
    this.liveCount--;
    obj.state = OBJ_STATE.DEAD;
    if (opts?.tombstone) {
      this.slots[obj.id] = TOMBSTONE;
      this.tombstones++;
    } else {
      this.release(obj.id);
    }
    obj.destroy();
  }

  /**
   * Context release (spec 4.6): passes in ascending ID order, each destroying every live object only
   * the table holds, until a pass finds nothing live; then tombstones go. Returns the objects that
   * could not be destroyed (a leak: non-empty only on a reference-counting bug).
   */
  releaseAll(): IommufdObject[] {
    for (;;) {
      let sawLive = false;
      let destroyed = false;
      for (let id = ID_MIN; id < this.slots.length; id++) {
        const s = this.slots[id];
        if (s === undefined || s === TOMBSTONE || s.state !== OBJ_STATE.LIVE) continue;
        sawLive = true;
        if (s.users === 1) {
          this.remove(s);
          destroyed = true;
        }
      }
      if (!sawLive) break;
      if (!destroyed) return this.objects();
    }
    for (let id = ID_MIN; id < this.slots.length; id++) if (this.slots[id] === TOMBSTONE) this.release(id);
    this.tombstones = 0;
    return [];
  }

  /** Every live object in ID order. */
  objects(): IommufdObject[] {
    const out: IommufdObject[] = [];
    for (let id = ID_MIN; id < this.slots.length; id++) {
      const s = this.slots[id];
      if (s !== undefined && s !== TOMBSTONE && s.state === OBJ_STATE.LIVE) out.push(s);
    }
    return out;
  }

  get size(): number {
    return this.liveCount;
  }

  /** IDs in use of any kind: live, reserved, tombstoned (the kernel's !xa_empty). */
  get occupied(): number {
    return this.slots.length - 1 - this.freeHeap.size;
  }

  get tombstoneCount(): number {
    return this.tombstones;
  }

  /** IDs reserved but neither finalized nor aborted (must be 0 between ioctls). */
  reservedCount(): number {
    let n = 0;
    for (let id = ID_MIN; id < this.slots.length; id++) {
      const s = this.slots[id];
      if (s !== undefined && s !== TOMBSTONE && s.state === OBJ_STATE.RESERVED) n++;
    }
    return n;
  }

  private release(id: number): void {
    this.slots[id] = undefined;
    this.freeHeap.push(id);
  }
}
