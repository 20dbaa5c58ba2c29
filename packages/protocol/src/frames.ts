// Cutting a byte stream into frames, and building frames. The reader rejects a length below the
// header size or above the limit before buffering anything of it, so a lying peer costs nothing.
import { ProtocolError, Writer } from './buffer.js';
import { DEFAULT_MAX_FRAME, HEADER_SIZE, readHeader, writeHeader, type FrameHeader } from './wire.js';

export interface Frame extends FrameHeader {
  payload: Uint8Array;
}

export class FrameReader {
  private buf = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;

  constructor(private readonly maxFrame = DEFAULT_MAX_FRAME) {}

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Appends `chunk` and returns every frame now complete (payloads are copies, safe to keep). */
  push(chunk: Uint8Array): Frame[] {
    this.append(chunk);
    const out: Frame[] = [];
    for (;;) {
      const avail = this.end - this.start;
      if (avail < HEADER_SIZE) break;
      const h = readHeader(this.buf.subarray(this.start));
      if (h.length < HEADER_SIZE || h.length > this.maxFrame) {
        throw new ProtocolError(`frame length ${h.length} outside [${HEADER_SIZE}, ${this.maxFrame}]`);
      }
      if (avail < h.length) break;
      const payload = this.buf.slice(this.start + HEADER_SIZE, this.start + h.length);
      this.start += h.length;
      out.push({ ...h, payload });
    }
    if (this.start === this.end) this.start = this.end = 0;
    return out;
  }

  private append(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      let size = this.buf.length;
      while (size < live + chunk.length) size *= 2;
      const next = size === this.buf.length ? this.buf : new Uint8Array(size);
      // set() copies correctly even when source and target share the buffer (compaction in place).
      next.set(this.buf.subarray(this.start, this.end), 0);
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }
}

/** A writer with room for the header; fill the payload, then `frame()`. */
export function frameWriter(initial = 256): Writer {
  return new Writer(initial, HEADER_SIZE);
}

/** Writes the header into the writer's reserved bytes and returns the whole frame. */
export function finishFrame(w: Writer, id: number, op: number, flags: number, errno = 0): Uint8Array {
  const bytes = w.finish();
  writeHeader(bytes, { length: bytes.length, id, op, flags, errno });
  return bytes;
}

/** A frame with an empty payload (a bare error reply, for one). */
export function bareFrame(id: number, op: number, flags: number, errno: number): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  writeHeader(b, { length: HEADER_SIZE, id, op, flags, errno });
  return b;
}
