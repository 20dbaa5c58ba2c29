// Walking the IOVA space as spans (the kernel's interval_tree_span_iter and double_span.h, in our
// words): given ranges that may overlap, yield the used spans (unions of touching ranges) and the
// holes between them inside a window. Pure functions over sorted arrays.

import type { IovaRange } from './types.js';

export interface Span {
  start: bigint;
  last: bigint;
  used: boolean;
}

/**
 * The spans of `ranges` (sorted by start, possibly overlapping) over [first, last]: used spans are
 * unions of ranges that overlap or touch, holes are what lies between, clipped to the window.
 */
export function spans(ranges: readonly IovaRange[], first: bigint, last: bigint): Span[] {
  const out: Span[] = [];
  let cur = first;
  let i = 0;
  while (i < ranges.length && ranges[i]!.last < first) i++;
  while (cur <= last) {
    const r = ranges[i];
    if (!r || r.start > last) {
      out.push({ start: cur, last, used: false });
      break;
    }
    if (r.start > cur) {
      out.push({ start: cur, last: r.start - 1n, used: false });
      cur = r.start;
    }
    // Union of every range that overlaps or touches the current used span.
    let usedLast = r.last;
    i++;
    while (i < ranges.length && ranges[i]!.start <= usedLast + 1n) {
      if (ranges[i]!.last > usedLast) usedLast = ranges[i]!.last;
      i++;
    }
    const end = usedLast < last ? usedLast : last;
    out.push({ start: cur, last: end, used: true });
    if (usedLast >= last) break;
    cur = usedLast + 1n;
  }
  return out;
}

/** Smallest power of two >= n (n > 0). */
export function roundupPowOfTwo(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

/** 1 << (index of the lowest set bit of n); n > 0. */
export function lowestBit(n: bigint): bigint {
  return n & -n;
}
