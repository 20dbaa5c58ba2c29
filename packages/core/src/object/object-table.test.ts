import { describe, expect, it } from '@jest/globals';
import { IommufdObject, OBJ, ref, unref } from './object.js';
import { ObjectTable } from './object-table.js';
import { errnoOf } from '../testing/harness.js';

class Thing extends IommufdObject {
  readonly type;
  destroyed = 0;
  aborted = 0;
  holds: IommufdObject[] = [];
  constructor(type: (typeof OBJ)[keyof typeof OBJ] = OBJ.IOAS, readonly log: number[] = []) {
    super();
    this.type = type;
  }
  destroy(): void {
    this.destroyed++;
    this.log.push(this.id);
    for (const h of this.holds) unref(h);
  }
  override abort(): void {
    this.aborted++;
  }
}

function add(t: ObjectTable, type?: (typeof OBJ)[keyof typeof OBJ], log?: number[]): Thing {
  const o = new Thing(type, log);
  t.reserve(o);
  t.finalize(o);
  return o;
}

describe('ObjectTable', () => {
  it('hands out the lowest free ID from 1 and reuses freed IDs at once', () => {
    const t = new ObjectTable();
    const a = add(t);
    const b = add(t);
    const c = add(t);
    expect([a.id, b.id, c.id]).toEqual([1, 2, 3]);
    t.destroyById(2);
    t.destroyById(1);
    expect(add(t).id).toBe(1);
    expect(add(t).id).toBe(2);
    expect(add(t).id).toBe(4);
  });

  it('keeps a reserved object invisible until finalized, and abort frees its ID', () => {
    const t = new ObjectTable();
    const o = new Thing();
    t.reserve(o);
    expect(o.id).toBe(1);
    expect(errnoOf(() => t.get(1, OBJ.ANY))).toBe('ENOENT');
    expect(errnoOf(() => t.destroyById(1))).toBe('ENOENT');
    t.abort(o);
    expect(o.aborted).toBe(1);
    expect(add(t).id).toBe(1);
  });

  it('type-checks lookups: another type is ENOENT, ANY finds it, 0 never exists', () => {
    const t = new ObjectTable();
    add(t, OBJ.IOAS);
    expect(t.get(1, OBJ.IOAS).id).toBe(1);
    expect(t.get(1, OBJ.ANY).id).toBe(1);
    expect(errnoOf(() => t.get(1, OBJ.HWPT_PAGING))).toBe('ENOENT');
    expect(errnoOf(() => t.get(0, OBJ.ANY))).toBe('ENOENT');
    expect(errnoOf(() => t.get(-1, OBJ.ANY))).toBe('ENOENT');
  });

  it('DESTROY is EBUSY while another holder has a reference, and works once it is dropped', () => {
    const t = new ObjectTable();
    const ioas = add(t);
    const hwpt = add(t, OBJ.HWPT_PAGING);
    hwpt.holds.push(ref(ioas));
    expect(errnoOf(() => t.destroyById(ioas.id))).toBe('EBUSY');
    expect(ioas.destroyed).toBe(0);
    t.destroyById(hwpt.id);
    expect(ioas.users).toBe(1);
    t.destroyById(ioas.id);
    expect(ioas.destroyed).toBe(1);
  });

  it('EBUSY when the ID space is exhausted', () => {
    const t = new ObjectTable();
    t.idLimit = 3;
    add(t);
    add(t);
    add(t);
    expect(errnoOf(() => add(t))).toBe('EBUSY');
    t.destroyById(2);
    expect(add(t).id).toBe(2);
  });

  it('a tombstone keeps its ID (ENOENT for lookups and DESTROY) until the context is released', () => {
    const t = new ObjectTable();
    add(t);
    const v = add(t, OBJ.VDEVICE);
    t.remove(v, { tombstone: true });
    expect(v.destroyed).toBe(1);
    expect(errnoOf(() => t.destroyById(2))).toBe('ENOENT');
    expect(add(t).id).toBe(3);
    expect(t.tombstoneCount).toBe(1);
    expect(t.occupied).toBe(3);
    expect(t.releaseAll()).toEqual([]);
    expect(t.occupied).toBe(0);
    expect(add(t).id).toBe(1);
  });

  it('release destroys in ascending-ID passes, freeing holders before what they hold', () => {
    const t = new ObjectTable();
    const log: number[] = [];
    const ioas = add(t, OBJ.IOAS, log); // 1
    const viommu = add(t, OBJ.VIOMMU, log); // 2, held by 4
    const hwpt = add(t, OBJ.HWPT_PAGING, log); // 3, holds 1; held by 2
    const vdev = add(t, OBJ.VDEVICE, log); // 4, holds 2
    hwpt.holds.push(ref(ioas));
    viommu.holds.push(ref(hwpt));
    vdev.holds.push(ref(viommu));
    expect(t.releaseAll()).toEqual([]);
    // Pass 1: 1 busy, 2 busy, 3 busy, 4 free -> destroyed (drops 2). Pass 2: 2 (drops 3), 3 (drops 1). Pass 3: 1.
    expect(log).toEqual([4, 2, 3, 1]);
  });

  it('release reports objects it cannot destroy (a reference leak)', () => {
    const t = new ObjectTable();
    const a = add(t);
    ref(a);
    expect(t.releaseAll().map((o) => o.id)).toEqual([1]);
  });

  it('stays fast and correct across many allocations and frees', () => {
    const t = new ObjectTable();
    const objs = Array.from({ length: 10000 }, () => add(t));
    for (let i = 0; i < objs.length; i += 3) t.destroyById(objs[i]!.id);
    const again = Array.from({ length: 3334 }, () => add(t).id);
    expect(again.slice(0, 3)).toEqual([1, 4, 7]);
    expect(again[again.length - 1]).toBe(10000);
    expect(t.size).toBe(10000);
    expect(add(t).id).toBe(10001);
  });
});
