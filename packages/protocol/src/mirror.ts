// Mirrored user memory (ADR 0120). The daemon owns the real user memory (what the IOAS pins and
// devices DMA); the client keeps a same-address copy. Before a call each side sends the pages it
// changed since the last exchange, and after the call the daemon sends back the pages the call
// changed, so both copies agree whenever control passes between them.
import { ProtocolError, type Reader, type Writer } from './buffer.js';

const PAGE = 4096;

interface Region {
  readonly addr: number;
  readonly bytes: Uint8Array;
  /** What the other side last saw. */
  readonly shadow: Uint8Array;
  // Buffer views made once, so the page compare is a memcmp without per-call allocation.
  readonly live: Buffer;
  readonly seen: Buffer;
}

export class MirrorSet {
  private readonly regions = new Map<number, Region>();

  /** Starts tracking `bytes` at `addr`; its current content is taken as already known to the peer. */
  add(addr: number, bytes: Uint8Array): void {
    const shadow = bytes.slice();
    this.regions.set(addr, {
      addr,
      bytes,
      shadow,
      live: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      seen: Buffer.from(shadow.buffer, shadow.byteOffset, shadow.byteLength),
    });
  }

  delete(addr: number): boolean {
    return this.regions.delete(addr);
  }

  has(addr: number): boolean {
    return this.regions.has(addr);
  }

  get size(): number {
    return this.regions.size;
  }

  addresses(): number[] {
    return [...this.regions.keys()];
  }

  /** Writes a memory-sync section: every run of pages that differs from the shadow (the shadow is updated). */
  writeChanges(w: Writer): number {
    const countAt = w.length;
    w.u32(0);
    let count = 0;
    for (const r of this.regions.values()) {
      const n = r.bytes.length;
      // One memcmp over the region first: most calls change nothing in most regions.
      if (r.live.compare(r.seen) === 0) continue;
      let runStart = -1;
      // One step past the last page, so a run reaching the end of the region is flushed too.
      for (let off = 0; ; off += PAGE) {
        const atEnd = off >= n;
        const dirty = !atEnd && r.live.compare(r.seen, off, Math.min(off + PAGE, n), off, Math.min(off + PAGE, n)) !== 0;
        if (dirty && runStart < 0) runStart = off;
        if (!dirty && runStart >= 0) {
          const stop = Math.min(off, n);
          w.u64(r.addr + runStart).bytes(r.bytes.subarray(runStart, stop));
          r.shadow.set(r.bytes.subarray(runStart, stop), runStart);
          count++;
          runStart = -1;
        }
        if (atEnd) break;
      }
    }
    // Patch the count in place (the writer may have grown, so go through its current bytes).
    const out = w.finish();
    new DataView(out.buffer, out.byteOffset).setUint32(countAt, count, true);
    return count;
  }

  /** Applies a memory-sync section from the peer to the live bytes and the shadow. */
  applyChanges(r: Reader): void {
    const count = r.u32();
    for (let i = 0; i < count; i++) {
      const addr = r.u64n();
      const data = r.bytes();
      const region = this.regionOf(addr, data.length);
      const off = addr - region.addr;
      region.bytes.set(data, off);
      region.shadow.set(data, off);
    }
  }

  private regionOf(addr: number, length: number): Region {
    for (const r of this.regions.values()) {
      if (addr >= r.addr && addr + length <= r.addr + r.bytes.length) return r;
    }
    throw new ProtocolError(`memory sync outside every mirrored region: 0x${addr.toString(16)}+${length}`);
  }
}
