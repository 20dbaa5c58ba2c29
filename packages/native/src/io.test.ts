import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { O_NONBLOCK, O_RDONLY, O_RDWR } from '@viommu/uapi';
import type { NativeProcess } from './native-process.js';
import { errorOf, FIONREAD, describeNative, hostProcess } from './test/native.js';

const FIONBIO = 0x5421; // int * in: non-blocking on/off

describeNative('open, close, ioctl, read, write', () => {
  let p: NativeProcess;
  beforeEach(() => {
    p = hostProcess();
  });
  afterEach(() => p.dispose());

  it('ioctl on a device that has no such ioctl fails with ENOTTY, for every kind of argument', () => {
    const fd = p.open('/dev/null', O_RDWR);
    for (const arg of [new Uint8Array(16), null, 7]) {
      const e = errorOf(() => p.ioctl(fd, 0x3b80 /* IOMMU_DESTROY */, arg));
      expect([e.code, e.errno, e.syscall]).toEqual(['ENOTTY', -25, 'ioctl']);
    }
  });

  it('ioctl on a closed fd fails with EBADF', () => {
    const fd = p.open('/dev/null', O_RDONLY);
    p.close(fd);
    expect(errorOf(() => p.ioctl(fd, FIONREAD, new Uint8Array(4))).code).toBe('EBADF');
    expect(errorOf(() => p.close(fd)).code).toBe('EBADF');
  });

  it('ioctl writes the out struct back into the caller\'s bytes', () => {
    const [r, w] = p.pipe();
    expect(p.write(w, new TextEncoder().encode('hello'))).toBe(5);
    const arg = new Uint8Array(4).fill(0xee);
    expect(p.ioctl(r, FIONREAD, arg)).toBe(0);
    expect(new DataView(arg.buffer).getInt32(0, true)).toBe(5);
  });

  it('ioctl passes a view at its own offset inside a larger buffer', () => {
    const [r, w] = p.pipe();
    p.write(w, new Uint8Array(3));
    const backing = new Uint8Array(12).fill(0xaa);
    expect(p.ioctl(r, FIONREAD, backing.subarray(4, 8))).toBe(0);
    expect([...backing]).toEqual([0xaa, 0xaa, 0xaa, 0xaa, 3, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa]);
  });

  it('ioctl with a NULL pointer gets the kernel\'s EFAULT', () => {
    const [r] = p.pipe();
    expect(errorOf(() => p.ioctl(r, FIONREAD, null)).code).toBe('EFAULT');
  });

  it('ioctl reads its input struct (FIONBIO turns a pipe non-blocking)', () => {
    const [r] = p.pipe();
    const on = new Uint8Array(4);
    new DataView(on.buffer).setInt32(0, 1, true);
    p.ioctl(r, FIONBIO, on);
    expect(errorOf(() => p.read(r, new Uint8Array(1))).code).toBe('EAGAIN');
  });

  it('open of a missing path is ENOENT, of a directory for writing EISDIR', () => {
    expect(errorOf(() => p.open('/nonexistent/dev/iommu')).code).toBe('ENOENT');
    const e = errorOf(() => p.open('/', O_RDWR));
    expect([e.code, e.syscall]).toEqual(['EISDIR', 'open']);
  });

  it('read and write move bytes through a pipe, read on an empty non-blocking pipe is EAGAIN', () => {
    const [r, w] = p.pipe(O_NONBLOCK);
    expect(errorOf(() => p.read(r, new Uint8Array(8))).code).toBe('EAGAIN');
    expect(p.write(w, Uint8Array.of(1, 2, 3, 4, 5))).toBe(5);
    const buf = new Uint8Array(8);
    expect(p.read(r, buf)).toBe(5);
    expect([...buf.subarray(0, 5)]).toEqual([1, 2, 3, 4, 5]);
    p.close(w);
    expect(p.read(r, buf)).toBe(0); // end of file once the writer is gone
  });

  it('an eventfd counts what is written and reads back the sum', () => {
    const efd = p.eventfd(0, O_NONBLOCK);
    const u64 = (n: bigint) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, n, true);
      return b;
    };
    expect(errorOf(() => p.read(efd, new Uint8Array(8))).code).toBe('EAGAIN');
    p.write(efd, u64(3n));
    p.write(efd, u64(4n));
    const out = new Uint8Array(8);
    expect(p.read(efd, out)).toBe(8);
    expect(new DataView(out.buffer).getBigUint64(0, true)).toBe(7n);
    // A short buffer is the kernel's EINVAL, not a silent truncation.
    expect(errorOf(() => p.write(efd, new Uint8Array(4))).code).toBe('EINVAL');
  });

  it('dispose closes every fd the process opened', () => {
    const fd = p.open('/dev/null');
    const [r, w] = p.pipe();
    p.dispose();
    for (const f of [fd, r, w]) expect(errorOf(() => p.ioctl(f, FIONREAD, new Uint8Array(4))).code).toBe('EBADF');
  });
});
