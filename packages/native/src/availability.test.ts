import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { NativeUnavailableError, addonPath, loadAddonFrom } from './addon.js';
import { openFailure, openNativeProcess } from './native-process.js';
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

describe('open failures of /dev/iommu, classified', () => {
  it.each([
    ['ENOENT', -2, 'no-iommu'],
    ['ENODEV', -19, 'no-iommu'],
    ['EACCES', -13, 'permission-denied'],
    ['EPERM', -1, 'permission-denied'],
    ['EBUSY', -16, 'open-failed'],
  ])('%s is %s', (code, ret, reason) => {
    const e = openFailure('/dev/iommu', ret);
    expect(e.reason).toBe(reason);
    expect((e.cause as { code: string }).code).toBe(code);
    expect(e.message).toMatch(/\/dev\/iommu/);
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

  it('a user without access to the device gets permission-denied (checked as uid 65534)', () => {
    if (process.getuid?.() !== 0) return; // only root can drop to another user here
    const dir = mkdtempSync(join(tmpdir(), 'viommu-native-'));
    chmodSync(dir, 0o755);
    const device = join(dir, 'iommu');
    writeFileSync(device, '');
    chmodSync(device, 0o600);
    const child = spawnSync(process.execPath, ['-e', 'console.log(require(process.argv[1]).open(process.argv[2], 2))', addonPath(), device], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
    });
    const ret = Number(child.stdout.trim());
    expect(ret).toBe(-13);
    expect(openFailure(device, ret).reason).toBe('permission-denied');
  });

  it('classifies other open failures of the checked device', () => {
    expect(reasonOf(() => openNativeProcess({ checkDevice: '/nonexistent/iommu' }))).toBe('no-iommu');
    // A directory cannot be opened read-write: EISDIR is neither missing nor forbidden.
    expect(reasonOf(() => openNativeProcess({ checkDevice: '/' }))).toBe('open-failed');
  });
});
