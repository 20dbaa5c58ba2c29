// The FAULT object's response table (an xarray with XA_FLAGS_ALLOC1 and a 32-bit limit): a group
// read from the fd gets the lowest free index >= 1 as its cookie, and the index is free again as
// soon as the group is answered. Cookies are small dense integers, so a plain array indexed by
// cookie plus a min-heap of freed indices gives O(1) lookup and O(log n) allocation.
import { MinHeap } from './min-heap.js';

const MAX_COOKIE = 0xffff_ffff;

export class CookieTable<T> {
  private readonly slots: (T | undefined)[] = [undefined]; // index 0 is never allocated
  private readonly free = new MinHeap(); // indices < slots.length that are empty
  private used = 0;

  get size(): number {
    return this.used;
  }

  /** Stores `value` at the lowest free cookie and returns it; 0 when every cookie is taken (EBUSY). */
  alloc(value: T): number {
    let cookie: number;
    if (this.free.size > 0) cookie = this.free.pop();
    else if (this.slots.length <= MAX_COOKIE) cookie = this.slots.push(undefined) - 1;
    else return 0;
    this.slots[cookie] = value;
    this.used++;
    return cookie;
  }

  get(cookie: number): T | undefined {
    return cookie > 0 && cookie < this.slots.length ? this.slots[cookie] : undefined;
  }

  /** Removes and returns the value stored under `cookie` (xa_erase), or undefined. */
  take(cookie: number): T | undefined {
    const value = this.get(cookie);
    if (value === undefined) return undefined;
    this.slots[cookie] = undefined;
    this.used--;
    this.free.push(cookie);
    return value;
  }

  /** Removes every value for which `pick` is true, in cookie order, and returns them. */
  takeWhere(pick: (value: T) => boolean): T[] {
    const cookies: number[] = [];
    const out: T[] = [];
    let seen = 0;
    for (let cookie = 1; cookie < this.slots.length && seen < this.used; cookie++) {
      const value = this.slots[cookie];
      if (value === undefined) continue;
      seen++;
      if (!pick(value)) continue;
      cookies.push(cookie);
      out.push(value);
    }
    // Collected first, removed after: `pick` never sees a half-updated table.
    for (const cookie of cookies) this.take(cookie);
    return out;
  }
}
