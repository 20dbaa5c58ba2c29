import { describe, expect, it } from '@jest/globals';
import { ERRNO, SystemError, errnoName, isErrnoError } from './errno.js';

describe('errno', () => {
  it('has the Linux numbers the iommufd paths return', () => {
    expect([ERRNO.EPERM, ERRNO.ENOENT, ERRNO.EIO, ERRNO.E2BIG, ERRNO.EBADF, ERRNO.ENOMEM, ERRNO.EFAULT, ERRNO.EBUSY]).toEqual([1, 2, 5, 7, 9, 12, 14, 16]);
    expect([ERRNO.EEXIST, ERRNO.ENODEV, ERRNO.EINVAL, ERRNO.ENOTTY, ERRNO.ENOSPC, ERRNO.ERANGE]).toEqual([17, 19, 22, 25, 28, 34]);
    expect([ERRNO.EOVERFLOW, ERRNO.EMSGSIZE, ERRNO.EOPNOTSUPP, ERRNO.ETIMEDOUT]).toEqual([75, 90, 95, 110]);
  });

  it('maps numbers back to names, either sign', () => {
    expect(errnoName(-16)).toBe('EBUSY');
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoName(9999)).toBeUndefined();
  });

  it('SystemError looks like a Node system error', () => {
    const e = new SystemError('EBUSY', 'ioctl', 'IOAS 2 has attached devices');
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('EBUSY');
    expect(e.errno).toBe(-16);
    expect(e.syscall).toBe('ioctl');
    expect(e.message).toBe('EBUSY: resource busy or locked, ioctl (IOAS 2 has attached devices)');
    expect(isErrnoError(e)).toBe(true);
    expect(isErrnoError(new Error('x'))).toBe(false);
  });
});
