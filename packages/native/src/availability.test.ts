import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { NativeUnavailableError, loadAddonFrom } from './addon.js';
import { openNativeProcess } from './native-process.js';
import { describeNative, unavailable } from './test/native.js';

function reasonOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(NativeUnavailableError);
    return (e as NativeUnavailableError).reason;
  }
}

describe('addon loading', () => {
  it('reports a missing build as not-built, naming the file', () => {
    expect(() => loadAddonFrom('/nonexistent/viommu_native.node')).toThrow(/not built.*\/nonexistent\/viommu_native\.node/);
    expect(reasonOf(() => loadAddonFrom('/nonexistent/viommu_native.node'))).toBe('not-built');
  });

  it('reports a file that is not a loadable addon as load-failed, not a crash', () => {
    const dir = mkdtempSync(join(tmpdir(), 'viommu-native-'));
    const bogus = join(dir, 'bogus.node');
    writeFileSync(bogus, 'not an ELF shared object');
    expect(reasonOf(() => loadAddonFrom(bogus))).toBe('load-failed');
  });

  it('loads on this machine (else the reason is shown here)', () => {
    expect(unavailable?.message).toBeUndefined();
  });
});

describeNative('openNativeProcess device check', () => {
  it('says /dev/iommu is missing when it is, and opens it when it is there', () => {
    if (existsSync('/dev/iommu')) {
      const p = openNativeProcess();
      p.dispose();
    } else {
      expect(reasonOf(() => openNativeProcess())).toBe('no-iommu');
      expect(() => openNativeProcess()).toThrow(/\/dev\/iommu does not exist/);
    }
  });

  it('classifies other open failures of the checked device', () => {
    expect(reasonOf(() => openNativeProcess({ checkDevice: '/nonexistent/iommu' }))).toBe('no-iommu');
    // A directory cannot be opened read-write: EISDIR is neither missing nor forbidden.
    expect(reasonOf(() => openNativeProcess({ checkDevice: '/' }))).toBe('open-failed');
  });
});
