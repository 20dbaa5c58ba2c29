import { describe, expect, it } from '@jest/globals';
import { ProtocolError, Reader, Writer } from './buffer.js';
import { FrameReader, finishFrame, frameWriter } from './frames.js';
import { MirrorSet } from './mirror.js';
import { FLAG, HEADER_SIZE, OP, readHeader } from './wire.js';

function frame(id: number, payload: number[]): Uint8Array {
  const w = frameWriter();
  w.raw(Uint8Array.from(payload));
  return finishFrame(w, id, OP.IOCTL, FLAG.MEM, 22).slice();
}

describe('frames', () => {
  it('lays out the 16-byte header little-endian: length, id, opcode, flags, errno', () => {
    const f = frame(0x01020304, [9, 8, 7]);
    expect([...f.subarray(0, HEADER_SIZE)]).toEqual([19, 0, 0, 0, 4, 3, 2, 1, OP.IOCTL, 0, FLAG.MEM, 0, 22, 0, 0, 0]);
    expect(readHeader(f)).toEqual({ length: 19, id: 0x01020304, op: OP.IOCTL, flags: FLAG.MEM, errno: 22 });
  });

  it('reassembles frames split at every byte and joined together', () => {
    const a = frame(1, [1, 2, 3]);
    const b = frame(2, []);
    const c = frame(3, Array.from({ length: 5000 }, (_, i) => i & 0xff));
    const stream = new Uint8Array([...a, ...b, ...c]);
    const r = new FrameReader();
    const got = [];
    for (let i = 0; i < stream.length; i += 7) got.push(...r.push(stream.subarray(i, i + 7)));
    expect(got.map((f) => f.id)).toEqual([1, 2, 3]);
    expect([...got[0]!.payload]).toEqual([1, 2, 3]);
    expect(got[2]!.payload.length).toBe(5000);
    expect(got[2]!.payload[4999]).toBe(4999 & 0xff);
    expect(r.buffered).toBe(0);
  });

  it('rejects a length below the header or above the limit before buffering it', () => {
    const r = new FrameReader(1024);
    const big = frame(1, []);
    new DataView(big.buffer).setUint32(0, 1025, true);
    expect(() => r.push(big)).toThrow(ProtocolError);
    const small = frame(1, []);
    new DataView(small.buffer).setUint32(0, 15, true);
    expect(() => new FrameReader().push(small)).toThrow(/outside/);
  });
});

describe('payload reader', () => {
  it('refuses to read past the payload and reports trailing bytes', () => {
    const r = new Reader(Uint8Array.from([1, 0, 0]));
    expect(() => r.u32()).toThrow(ProtocolError);
    const w = new Writer().u32(5).raw(Uint8Array.from([1]));
    const r2 = new Reader(w.finish());
    expect(() => r2.bytes()).toThrow(/too short/);
    const r3 = new Reader(new Writer().u32(1).u8(0).finish());
    r3.u32();
    expect(() => r3.end()).toThrow(/trailing/);
  });
});

describe('mirrored memory', () => {
  it('sends only the changed pages, coalesced into runs, and applies them on the other side', () => {
    const client = new MirrorSet();
    const daemon = new MirrorSet();
    const a = new Uint8Array(5 * 4096);
    const b = new Uint8Array(5 * 4096);
    client.add(0x1000_0000, a);
    daemon.add(0x1000_0000, b);
    a[10] = 1; // page 0
    a[4096 + 5] = 2; // page 1 (same run)
    a[4 * 4096 + 4095] = 3; // page 4 (a second run)
    const w = new Writer();
    expect(client.writeChanges(w)).toBe(2);
    daemon.applyChanges(new Reader(w.finish()));
    expect(Buffer.compare(a, b)).toBe(0);
    // Nothing changed since: an empty section.
    const w2 = new Writer();
    expect(client.writeChanges(w2)).toBe(0);
    // The daemon's side changes go back the other way.
    b[3 * 4096] = 9;
    const w3 = new Writer();
    expect(daemon.writeChanges(w3)).toBe(1);
    client.applyChanges(new Reader(w3.finish()));
    expect(a[3 * 4096]).toBe(9);
  });

  it('flushes a changed run that reaches the end of a region whose length is not a page multiple', () => {
    const a = new Uint8Array(4096 + 100);
    const b = new Uint8Array(4096 + 100);
    const client = new MirrorSet();
    const daemon = new MirrorSet();
    client.add(0x5000, a);
    daemon.add(0x5000, b);
    a[4096 + 99] = 7;
    const w = new Writer();
    expect(client.writeChanges(w)).toBe(1);
    daemon.applyChanges(new Reader(w.finish()));
    expect(b[4096 + 99]).toBe(7);
  });

  it('refuses a change outside every region', () => {
    const m = new MirrorSet();
    m.add(0x2000, new Uint8Array(4096));
    const w = new Writer().u32(1).u64(0x2000 + 4000).bytes(new Uint8Array(200));
    expect(() => m.applyChanges(new Reader(w.finish()))).toThrow(ProtocolError);
  });
});
