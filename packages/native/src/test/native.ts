// Test helpers: the addon if it loads here, a describe that skips (with the reason) if not, and the
// error assertions the test files share.
import { describe, expect } from '@jest/globals';
import { SystemError } from '@viommu/uapi';
import { NativeUnavailableError, loadAddon } from '../addon.js';
import { openNativeProcess, type NativeProcess } from '../native-process.js';

export const unavailable: NativeUnavailableError | undefined = (() => {
  try {
    loadAddon();
    return undefined;
  } catch (e) {
    if (e instanceof NativeUnavailableError) return e;
    throw e;
  }
})();

/** `describe` when the addon loads, `describe.skip` otherwise. */
export const describeNative: typeof describe.skip = unavailable ? describe.skip : describe;

/** A process for the host's own fds (no /dev/iommu needed). */
export function hostProcess(): NativeProcess {
  return openNativeProcess({ checkDevice: false });
}

/** Bytes waiting in a pipe (int * out). */
export const FIONREAD = 0x541b;

/** The SystemError `f` throws (failing the test if it throws anything else, or nothing). */
export function errorOf(f: () => unknown): SystemError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SystemError);
    return e as SystemError;
  }
  throw new Error('expected a SystemError');
}

/** The errno name of the SystemError `f` throws. */
export function codeOf(f: () => unknown): string {
  return errorOf(f).code;
}
