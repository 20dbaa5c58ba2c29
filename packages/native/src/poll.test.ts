import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { POLLHUP, POLLIN, POLLNVAL, POLLOUT, O_RDONLY } from '@viommu/uapi';
import type { NativeProcess } from './native-process.js';
import { AbortError } from './poller.js';
import { describeNative, hostProcess } from './test/native.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const u64 = (n: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};

describeNative('poll on the event loop', () => {
  let p: NativeProcess;
  beforeEach(() => {
    p = hostProcess();
  });
  afterEach(() => p.dispose());

  it('resolves at once with revents when the fd is already ready', async () => {
    const [r, w] = p.pipe();
    expect(await p.poll(w, POLLOUT, -1)).toBe(POLLOUT);
    p.write(w, Uint8Array.of(1));
    expect(await p.poll(r, POLLIN | POLLOUT, -1)).toBe(POLLIN);
  });

  it('resolves 0 on timeout, and with timeout 0 is a non-blocking check', async () => {
    const [r] = p.pipe();
    expect(await p.poll(r, POLLIN, 0)).toBe(0);
    expect(await p.poll(r, POLLIN, 20)).toBe(0);
    expect(p.pollerWatchedFds()).toBe(1);
  });

  it('waits without blocking the event loop, and wakes when data arrives', async () => {
    const [r, w] = p.pipe();
    const order: string[] = [];
    const waiting = p.poll(r, POLLIN, -1).then((revents) => {
      order.push('poll');
      return revents;
    });
    // The loop keeps turning while the poll is pending: these run first.
    await tick();
    order.push('tick');
    await tick();
    order.push('tick');
    p.write(w, Uint8Array.of(42));
    expect(await waiting).toBe(POLLIN);
    expect(order).toEqual(['tick', 'tick', 'poll']);
  });

  it('wakes on an eventfd signalled from a timer', async () => {
    const efd = p.eventfd();
    setTimeout(() => p.write(efd, u64(1n)), 5);
    expect(await p.poll(efd, POLLIN, -1)).toBe(POLLIN);
  });

  it('serves two waiters on one fd with one watcher', async () => {
    const [r, w] = p.pipe();
    const a = p.poll(r, POLLIN, -1);
    const b = p.poll(r, POLLIN, 10_000);
    await tick();
    p.write(w, Uint8Array.of(1));
    expect(await Promise.all([a, b])).toEqual([POLLIN, POLLIN]);
  });

  it('reports POLLHUP when the writer goes away', async () => {
    const [r, w] = p.pipe();
    const waiting = p.poll(r, POLLIN, -1);
    await tick();
    p.close(w);
    expect(await waiting).toBe(POLLHUP);
  });

  it('is cancelled by an AbortSignal, and later data does not resurrect it', async () => {
    const [r, w] = p.pipe();
    const ac = new AbortController();
    const waiting = p.poll(r, POLLIN, -1, ac.signal);
    await tick();
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortError);
    p.write(w, Uint8Array.of(1));
    await tick();
    // An already aborted signal rejects at once.
    await expect(p.poll(r, POLLIN, -1, ac.signal)).rejects.toBeInstanceOf(AbortError);
  });

  it('resolves POLLNVAL for a poll pending on an fd that is closed', async () => {
    const [r] = p.pipe();
    const waiting = p.poll(r, POLLIN, -1);
    await tick();
    p.close(r);
    expect(await waiting).toBe(POLLNVAL);
    expect(p.pollerWatchedFds()).toBe(0);
  });

  it('polling a closed fd reports POLLNVAL at once, as poll(2) does', async () => {
    const [r] = p.pipe();
    p.close(r);
    expect(await p.poll(r, POLLIN, -1)).toBe(POLLNVAL);
  });

  it('a regular file is always ready (epoll cannot watch it, poll(2) says so)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'viommu-native-')), 'f');
    writeFileSync(file, 'x');
    const fd = p.open(file, O_RDONLY);
    expect(await p.poll(fd, POLLIN, -1)).toBe(POLLIN);
  });
});
