// The base of every iommufd object (the kernel's struct iommufd_object) and the object types.
//
// Adding an object family (how src/viommu/ and src/selftest/ plug in):
//   class Vdevice extends IommufdObject { readonly type = OBJ.VDEVICE; ... destroy() { ...drop refs... } }
//   const v = new Vdevice(ctx, ...);  ctx.objects.reserve(v);   // ID taken, invisible (ENOENT)
//   ... fallible setup; take references with ref(x) ...
//   ucmd.newObject(v)  // the dispatcher finalizes it on success, aborts it (abort() + ID freed) on failure
// or, outside an ioctl, ctx.objects.finalize(v) / ctx.objects.abort(v) yourself.
// References: every holder listed in spec section 4.1 does ref(obj) when it starts holding and
// unref(obj) when it stops; DESTROY succeeds only at users === 1 (the table's own reference).

export const OBJ = {
  ANY: 0,
  DEVICE: 1,
  HWPT_PAGING: 2,
  HWPT_NESTED: 3,
  IOAS: 4,
  ACCESS: 5,
  FAULT: 6,
  VIOMMU: 7,
  VDEVICE: 8,
  VEVENTQ: 9,
  HW_QUEUE: 10,
  SELFTEST: 11,
} as const;

export type ObjType = (typeof OBJ)[keyof typeof OBJ];

export const OBJ_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(OBJ).map(([k, v]) => [v, k]));

/** Where an object is in its life; only LIVE objects are found by lookups and DESTROY. */
export const OBJ_STATE = { NEW: 0, RESERVED: 1, LIVE: 2, DEAD: 3 } as const;

export abstract class IommufdObject {
  abstract readonly type: ObjType;
  /** The object's ID in its context (0 until reserved). */
  id = 0;
  /** Structural references: the table's own 1 plus one per holder (spec 4.4). */
  users = 1;
  /** @internal managed by ObjectTable */
  state: number = OBJ_STATE.NEW;

  /**
   * Destroys the object once it has left the table: releases what it owns and drops the references
   * it holds on other objects (unref), in the reverse order of taking them. Called exactly once.
   */
  abstract destroy(): void;

  /** Undoes a reserved, never-finalized object (failed ioctl). By default the same as destroy(). */
  abort(): void {
    this.destroy();
  }

  /**
   * Kernel-initiated teardown of what others hold on this object before it can go (the kernel's
   * pre_destroy, e.g. a DEVICE's vDEVICE). Optional.
   */
  preDestroy?(): void;
}

/** Takes a structural reference (refcount_inc(&obj->users)). */
export function ref<T extends IommufdObject>(obj: T): T {
  obj.users++;
  return obj;
}

/** Drops a structural reference. The table's own reference is never dropped this way. */
export function unref(obj: IommufdObject): void {
  if (obj.users <= 1) throw new Error(`unref of ${OBJ_NAMES[obj.type]} ${obj.id} would drop the table's reference (users ${obj.users})`);
  obj.users--;
}
