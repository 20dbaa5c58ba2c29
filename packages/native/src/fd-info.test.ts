// fstat and fcntl (memfd seals): what the daemon checks before it maps a memfd a client passed.
import { expect, it } from '@jest/globals';
import { loadAddon } from './addon.js';
import { MFD_ALLOW_SEALING } from './native-process.js';
import { describeNative } from './test/native.js';

const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const EPERM = 1;
const EBADF = 9;

describeNative('fstat and fcntl', () => {
  it('report a memfd as a regular file of its size, and its seals', () => {
    const addon = loadAddon();
    const fd = addon.memfdCreate('seals', MFD_ALLOW_SEALING);
    try {
      expect(addon.ftruncate(fd, 3 * 4096)).toBe(0);
      const st = addon.fstat(fd) as [number, number];
      expect(st[0] & 0o170000).toBe(0o100000);
      expect(st[1]).toBe(3 * 4096);
      expect(addon.fcntl(fd, F_GET_SEALS)).toBe(0);
      expect(addon.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)).toBe(0);
      expect(addon.fcntl(fd, F_GET_SEALS)).toBe(F_SEAL_SHRINK | F_SEAL_GROW);
      // Sealed: the size can no longer change.
      expect(addon.ftruncate(fd, 4096)).toBe(-EPERM);
      expect(addon.ftruncate(fd, 4 * 4096)).toBe(-EPERM);
    } finally {
      addon.close(fd);
    }
    expect(addon.fstat(fd)).toBe(-EBADF);
    expect(addon.fcntl(fd, F_GET_SEALS)).toBe(-EBADF);
  });
});
