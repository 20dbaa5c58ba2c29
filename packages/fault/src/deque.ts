// A FIFO on a power-of-two ring: push and shift without per-operation allocation.

export class Deque<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return item;
  }

  /** Removes every item for which `pick` is true, keeping the order of both parts; returns the removed ones. */
  removeWhere(pick: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const mask = this.items.length - 1;
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      const item = this.items[(this.head + i) & mask] as T;
      if (pick(item)) removed.push(item);
      else this.items[(this.head + kept++) & mask] = item;
    }
    for (let i = kept; i < this.count; i++) this.items[(this.head + i) & mask] = undefined;
    this.count = kept;
    return removed;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
