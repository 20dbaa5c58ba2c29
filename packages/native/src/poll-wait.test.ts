// The blocking half of readiness: pollWait() sleeps in poll(2) on the calling thread (the daemon
// client's direct channel), and a watcher can stop keeping the event loop alive (unref).
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { POLLHUP, POLLIN, POLLNVAL, POLLOUT } from '@viommu/uapi';
import { addonPath, loadAddon } from './addon.js';
import type { NativeProcess } from './native-process.js';
import { describeNative, hostProcess } from './test/native.js';

describeNative('pollWait and watcher ref/unref (addon ABI 5)', () => {
  let p: NativeProcess;
  beforeEach(() => {
    p = hostProcess();
  });
  afterEach(() => p.dispose());

  it('returns the exact revents at once when the fd is ready', () => {
    const addon = loadAddon();
    const [r, w] = p.pipe();
    expect(addon.pollWait(w, POLLOUT, -1)).toBe(POLLOUT);
    p.write(w, Uint8Array.of(1));
    expect(addon.pollWait(r, POLLIN | POLLOUT, -1)).toBe(POLLIN);
    p.close(w);
    // Data still buffered, and the writer gone.
    expect(addon.pollWait(r, POLLIN, 0)).toBe(POLLIN | POLLHUP);
  });

  it('returns 0 when nothing happens before the timeout, having slept at least that long', () => {
    const addon = loadAddon();
    const [r] = p.pipe();
    const t0 = process.hrtime.bigint();
    expect(addon.pollWait(r, POLLIN, 30)).toBe(0);
    expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeGreaterThanOrEqual(29);
    expect(addon.pollWait(r, POLLIN, 0)).toBe(0);
  });

  it('blocks this thread until another thread writes', () => {
    const addon = loadAddon();
    const [r, w] = p.pipe();
    // The worker writes after a pause; meanwhile this thread must be asleep in the kernel (the
    // event loop cannot run, so nothing on this side could write).
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const a = require(workerData.path);
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
       a.write(workerData.fd, Uint8Array.of(7));`,
      { eval: true, workerData: { path: addonPath(), fd: w } },
    );
    try {
      expect(addon.pollWait(r, POLLIN, -1)).toBe(POLLIN);
      const b = new Uint8Array(1);
      expect(p.read(r, b)).toBe(1);
      expect(b[0]).toBe(7);
    } finally {
      void worker.terminate();
    }
  });

  it('reports a closed fd as POLLNVAL and bad arguments as -EINVAL', () => {
    const addon = loadAddon();
    const [r] = p.pipe();
    p.close(r);
    expect(addon.pollWait(r, POLLIN, -1)).toBe(POLLNVAL);
    expect(addon.pollWait('x' as unknown as number, POLLIN, 0)).toBe(-22);
  });

  it('an unref\'d watcher does not keep the process alive; ref() makes it do so again', () => {
    // In a child: a started, unref'd watcher alone must let the process exit; after ref() the
    // process stays until the watcher fires (the timer that writes is itself unref'd).
    const script = (refAgain: boolean) => `
      const a = require(${JSON.stringify(addonPath())});
      const [r, w] = a.pipe(0);
      const watcher = new a.Watcher(r, () => { console.log('fired'); watcher.close(); });
      watcher.start(a.uv.READABLE);
      watcher.unref();
      ${refAgain ? 'watcher.ref();' : ''}
      setTimeout(() => a.write(w, Uint8Array.of(1)), 20).unref();`;
    const unrefd = spawnSync(process.execPath, ['-e', script(false)], { encoding: 'utf8' });
    expect([unrefd.status, unrefd.stdout]).toEqual([0, '']);
    const refd = spawnSync(process.execPath, ['-e', script(true)], { encoding: 'utf8' });
    expect([refd.status, refd.stdout]).toEqual([0, 'fired\n']);
  });
});
