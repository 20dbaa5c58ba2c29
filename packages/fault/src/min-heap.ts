// A binary min-heap of numbers: the "lowest free number" allocators (FAULT cookies here, object
// IDs in @viommu/core) hand out the smallest freed number first, as the kernel's xarray does.

export class MinHeap {
  private readonly h: number[] = [];

  get size(): number {
    return this.h.length;
  }

  push(n: number): void {
    const h = this.h;
    let i = h.push(n) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]! <= n) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = n;
  }

  /** Removes and returns the smallest number; the heap must not be empty. */
  pop(): number {
    const h = this.h;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r]! < h[l]! ? r : l;
        if (h[c]! >= last) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
