// Test helpers: the addon if it loads here, and a describe that skips (with the reason) if not.
import { describe } from '@jest/globals';
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
