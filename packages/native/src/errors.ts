// Negative returns of the addon -> SystemError, the error every process target throws.
import { ERRNO, SystemError, errnoName } from '@viommu/uapi';

/** The SystemError for a negative errno return. */
export function systemError(ret: number, syscall: string): SystemError {
  const name = errnoName(ret);
  // An errno @viommu/uapi has no name for is still an error: say which number it was.
  return name ? new SystemError(name, syscall) : new SystemError('EIO', syscall, `errno ${-ret} has no name in @viommu/uapi`);
}

/** Returns `ret` when it is not an error; throws the SystemError for it otherwise. */
export function check(ret: number, syscall: string): number {
  if (ret < 0) throw systemError(ret, syscall);
  return ret;
}

/** Narrows an addon result that is either a value or a negative errno. */
export function checked<T>(ret: T | number, syscall: string): T {
  if (typeof ret === 'number') throw systemError(ret < 0 ? ret : -ERRNO.EIO, syscall);
  return ret;
}
