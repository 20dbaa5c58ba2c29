// Both synchronous channels against a scripted daemon on a real Unix socket. The daemon runs in a
// worker thread (its own event loop), so it keeps answering while this thread blocks in a call.
// The direct channel needs @viommu/native's addon (ABI 5); without it that half skips.
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { SystemError } from '@viommu/uapi';
import { DirectChannel, isDirectBridge, type ChannelEvents, type DirectBridge } from './direct-channel.js';
import { WorkerChannel, type SyncChannel } from './sync-channel.js';

const ADDON = process.env['VIOMMU_NATIVE_ADDON'] ?? join(__dirname, '../../native/build/Release/viommu_native.node');
const addon: DirectBridge | undefined = (() => {
  if (!existsSync(ADDON)) return undefined;
  const a = createRequire(__filename)(ADDON) as unknown;
  return isDirectBridge(a) ? a : undefined;
})();

// Requests the scripted daemon understands (op), each answered by a REPLY with the same id.
const ECHO = 100; // reply payload = request payload
const EVENTS_FIRST = 101; // u32 n: n PUSH frames (id 7, payload u32 i), then the reply
const BIG = 102; // u32 size: a reply payload of `size` bytes, byte i = i * 7 mod 251
const HANG_UP = 103; // the daemon closes the connection instead of answering
const SILENT = 104; // never answered
const EVENTS_LATER = 105; // u32 n: the reply at once, n PUSH frames 20 ms later
const FLOOD = 106; // u32 n, u32 size: n PUSH frames of `size` bytes; tells the test how much Node had to buffer

const DAEMON = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
function frame(id, op, flags, payload) {
  const f = Buffer.alloc(16 + payload.length);
  f.writeUInt32LE(f.length, 0); f.writeUInt32LE(id, 4); f.writeUInt16LE(op, 8); f.writeUInt16LE(flags, 10);
  payload.copy(f, 16);
  return f;
}
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n, 0); return b; };
const server = net.createServer((sock) => {
  let pending = Buffer.alloc(0);
  sock.on('error', () => {});
  sock.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 16 && pending.length >= pending.readUInt32LE(0)) {
      const len = pending.readUInt32LE(0);
      const id = pending.readUInt32LE(4), op = pending.readUInt16LE(8);
      const body = Buffer.from(pending.subarray(16, len));
      pending = pending.subarray(len);
      if (op === ${ECHO}) sock.write(frame(id, op, 1, body));
      else if (op === ${EVENTS_FIRST}) {
        for (let i = 0; i < body.readUInt32LE(0); i++) sock.write(frame(7, 16, 4, u32(i)));
        sock.write(frame(id, op, 1, u32(0xabcd)));
      } else if (op === ${BIG}) {
        const p = Buffer.alloc(body.readUInt32LE(0));
        for (let i = 0; i < p.length; i++) p[i] = (i * 7) % 251;
        sock.write(frame(id, op, 1, p));
      } else if (op === ${HANG_UP}) sock.destroy();
      else if (op === ${EVENTS_LATER}) {
        sock.write(frame(id, op, 1, Buffer.alloc(0)));
        setTimeout(() => { for (let i = 0; i < body.readUInt32LE(0); i++) sock.write(frame(7, 16, 4, u32(i))); }, 20);
      } else if (op === ${FLOOD}) {
        const n = body.readUInt32LE(0), size = body.readUInt32LE(4);
        for (let i = 0; i < n; i++) { const p = Buffer.alloc(size); p.writeUInt32LE(i, 0); sock.write(frame(7, 16, 4, p)); }
        parentPort.postMessage({ buffered: sock.writableLength });
      }
    }
  });
});
server.listen(workerData.path, () => parentPort.postMessage({ listening: true }));
parentPort.on('message', () => server.close(() => process.exit(0)));
`;

function request(id: number, op: number, ...args: Array<number | number[]>): Uint8Array {
  const words = args.flat();
  const f = new Uint8Array(16 + 4 * words.length);
  const v = new DataView(f.buffer);
  v.setUint32(0, f.length, true);
  v.setUint32(4, id, true);
  v.setUint16(8, op, true);
  words.forEach((w, i) => v.setUint32(16 + 4 * i, w, true));
  return f;
}

const word = (f: Uint8Array, at: number) => new DataView(f.buffer, f.byteOffset).getUint32(at, true);
const tick = () => new Promise<void>((r) => setImmediate(r));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SystemError);
    return (e as SystemError).code;
  }
  return undefined;
}

interface Recorder extends ChannelEvents {
  frames: Uint8Array[];
  closed: string[];
}
const recorder = (): Recorder => {
  const r: Recorder = { frames: [], closed: [], onFrame: (f) => r.frames.push(f), onClosed: (m) => r.closed.push(m) };
  return r;
};

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

type Open = (path: string, events: ChannelEvents, timeoutMs: number) => Promise<SyncChannel>;
const kinds: Array<[string, Open | undefined]> = [
  ['worker channel', (p, e, t) => WorkerChannel.open(p, e, t)],
  ['direct channel', addon ? (p, e, t) => DirectChannel.open(p, e, t, addon) : undefined],
];

describe.each(kinds)('%s', (_name, open) => {
  const maybe = open ? it : it.skip;
  let daemon: Worker;
  let path: string;
  let messages: Array<{ buffered?: number }>;
  const channels: SyncChannel[] = [];

  beforeEach(async () => {
    path = join(mkdtempSync(join(tmpdir(), 'viommu-channel-')), 'd.sock');
    messages = [];
    daemon = new Worker(DAEMON, { eval: true, workerData: { path } });
    await new Promise<void>((resolve) =>
      daemon.on('message', (m: { listening?: boolean; buffered?: number }) => (m.listening ? resolve() : messages.push(m))),
    );
  });
  afterEach(async () => {
    for (const c of channels.splice(0)) c.close();
    daemon.postMessage('stop');
    await new Promise((r) => daemon.once('exit', r));
  });

  const connect = async (events: ChannelEvents, timeoutMs = 30_000) => {
    const c = await open!(path, events, timeoutMs);
    channels.push(c);
    return c;
  };

  maybe('a call returns its reply; frames pushed before it are delivered afterwards, in order, from the event loop', async () => {
    const ev = recorder();
    const c = await connect(ev);
    const reply = c.call(request(1, EVENTS_FIRST, 5), 1, 'ioctl');
    expect([reply.length, word(reply, 4), word(reply, 16)]).toEqual([20, 1, 0xabcd]);
    // Not inside the call: the caller's code runs first.
    expect(ev.frames.length).toBe(0);
    await until(() => ev.frames.length === 5);
    expect(ev.frames.map((f) => [word(f, 4), word(f, 16)])).toEqual([0, 1, 2, 3, 4].map((i) => [7, i]));
    // The next call is unaffected.
    const again = c.call(request(2, ECHO, 42), 2, 'ioctl');
    expect(word(again, 16)).toBe(42);
  });

  maybe('frames pushed between calls arrive through the event loop', async () => {
    const ev = recorder();
    const c = await connect(ev);
    c.call(request(1, EVENTS_LATER, 3), 1, 'ioctl');
    c.hold();
    await until(() => ev.frames.length === 3);
    c.release();
    expect(ev.frames.map((f) => word(f, 16))).toEqual([0, 1, 2]);
  });

  maybe('a reply larger than any buffer arrives whole, twice', async () => {
    const c = await connect(recorder());
    for (const id of [1, 2]) {
      const size = 8 * 1024 * 1024 + 13;
      const reply = c.call(request(id, BIG, size), id, 'read');
      expect(reply.length).toBe(16 + size);
      let bad = 0;
      for (let i = 0; i < size; i++) if (reply[16 + i] !== (i * 7) % 251) bad++;
      expect(bad).toBe(0);
    }
  });

  maybe('a request larger than the socket buffer goes out whole', async () => {
    const c = await connect(recorder());
    const words = Array.from({ length: 1 << 20 }, (_, i) => i);
    const reply = c.call(request(1, ECHO, words), 1, 'write');
    expect(reply.length).toBe(16 + 4 * words.length);
    expect([word(reply, 16 + 4 * 12345), word(reply, reply.length - 4)]).toEqual([12345, (1 << 20) - 1]);
  });

  maybe('the daemon closing mid-call fails it with ECONNRESET, reports the close, then ENOTCONN', async () => {
    const ev = recorder();
    const c = await connect(ev);
    expect(codeOf(() => c.call(request(1, HANG_UP), 1, 'ioctl'))).toBe('ECONNRESET');
    expect(c.closed).toBe(true);
    await until(() => ev.closed.length === 1);
    expect(codeOf(() => c.call(request(2, ECHO), 2, 'ioctl'))).toBe('ENOTCONN');
  });

  maybe('no answer within the timeout is ETIMEDOUT, and the connection is closed', async () => {
    const c = await connect(recorder(), 150);
    const t0 = Date.now();
    expect(codeOf(() => c.call(request(1, SILENT), 1, 'ioctl'))).toBe('ETIMEDOUT');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(codeOf(() => c.call(request(2, ECHO), 2, 'ioctl'))).toBe('ENOTCONN');
  });

  maybe('a call made while paused cannot read its reply: it times out (the documented contract)', async () => {
    const c = await connect(recorder(), 100);
    c.pauseReading();
    expect(codeOf(() => c.call(request(1, ECHO, 1), 1, 'ioctl'))).toBe('ETIMEDOUT');
    expect(c.closed).toBe(true);
  });

  maybe('connecting to nothing is ECONNREFUSED', async () => {
    await expect(open!(join(path, '..', 'nobody.sock'), recorder(), 1000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  maybe('paused, nothing is read and the daemon has to buffer; resumed, every frame arrives in order', async () => {
    const ev = recorder();
    const c = await connect(ev);
    c.hold();
    c.pauseReading();
    const n = 2000;
    c.send(request(1, FLOOD, n, 4096));
    await until(() => messages.length === 1);
    // 8 MiB pushed: the kernel's socket buffers took part, Node in the daemon holds the rest.
    expect(messages[0]!.buffered).toBeGreaterThan(0);
    for (let i = 0; i < 10; i++) await tick();
    expect(ev.frames.length).toBe(0);
    c.resumeReading();
    await until(() => ev.frames.length === n);
    c.release();
    let order = 0;
    for (let i = 0; i < n; i++) if (word(ev.frames[i]!, 16) === i && ev.frames[i]!.length === 16 + 4096) order++;
    expect(order).toBe(n);
    // A call works again afterwards.
    expect(word(c.call(request(2, ECHO, 9), 2, 'ioctl'), 16)).toBe(9);
  });

  maybe('send() while a big send is still queued keeps the order of requests', async () => {
    const ev = recorder();
    const c = await connect(ev);
    c.hold();
    const words = Array.from({ length: 1 << 18 }, (_, i) => i);
    c.send(request(1, ECHO, words));
    c.send(request(2, ECHO, 2));
    // The synchronous call goes after both; its reply comes last.
    const reply = c.call(request(3, ECHO, 3), 3, 'ioctl');
    expect(word(reply, 16)).toBe(3);
    await until(() => ev.frames.length === 2);
    c.release();
    expect(ev.frames.map((f) => word(f, 4))).toEqual([1, 2]);
    expect(ev.frames[0]!.length).toBe(16 + 4 * words.length);
  });
});
