// The harness and helpers on a scripted fake process: outcomes, errno assertions, teardown order.
import { describe, expect, it } from '@jest/globals';
import { IOMMU_DESTROY, IOMMU_IOAS_ALLOC, SystemError, iommu_ioas_alloc, type IoctlArg, type Process } from '@viommu/uapi';
import { CaseSkip, runScenarios, testF, type Fixture } from './harness.js';
import { Self, expectErrno } from './utils.js';

/** A process whose ioctls answer from a script; memory is a flat bump allocator. */
function fakeProcess(answer: (request: number, arg: IoctlArg) => number): Process & { log: string[] } {
  let next = 0x10000n;
  const log: string[] = [];
  return {
    log,
    open: () => 3,
    close: (fd) => void log.push(`close ${fd}`),
    ioctl: (_fd, request, arg) => answer(request, arg),
    read: () => 0,
    write: () => 0,
    poll: async () => 0,
    mmap: () => ({ addr: 0n, bytes: new Uint8Array(0) }),
    munmap: () => {},
    memory: {
      alloc(length) {
        const addr = next;
        next += BigInt(Math.ceil(length / 4096) * 4096 + 4096);
        return { addr, bytes: new Uint8Array(length) };
      },
      free: () => {},
    },
  };
}

const fixture: Fixture<Self, { fail: boolean }> = {
  name: 'fx',
  variants: [
    ['a', { fail: false }],
    ['b', { fail: true }],
  ],
  setup(process) {
    const self = new Self(process);
    self.fd = 3;
    return self;
  },
  teardown(self) {
    self.process.close(self.fd);
  },
};

describe('testF and runScenarios', () => {
  it('expands a case per variant and reports pass, skip and fail with messages', async () => {
    const cases = [
      ...testF(fixture, 'errno', (self, v) => {
        expectErrno(v.fail ? 'EBUSY' : 'ENOENT', () => self.ioctl(IOMMU_DESTROY, new Uint8Array(8)), 'destroy');
      }),
      ...testF(fixture, 'skips', () => {
        throw new CaseSkip('not here');
      }),
    ];
    expect(cases.map((c) => c.name)).toEqual(['fx.a.errno', 'fx.b.errno', 'fx.a.skips', 'fx.b.skips']);
    const p = fakeProcess(() => {
      throw new SystemError('ENOENT', 'ioctl');
    });
    const report = await runScenarios(cases, () => p, new Map([['fx.b.skips', 'pending here']]));
    expect(report.results.map((r) => r.outcome)).toEqual([
      { status: 'pass' },
      { status: 'fail', message: 'destroy: expected EBUSY, got ENOENT' },
      { status: 'skip', reason: 'not here' },
      { status: 'skip', reason: 'pending here' },
    ]);
    expect([report.passed, report.skipped, report.failed]).toEqual([1, 2, 1]);
    // teardown ran after every case that was set up, failed or not
    expect(p.log.filter((l) => l === 'close 3')).toHaveLength(3);
  });

  it('fails a case whose expected error does not happen', async () => {
    const [c] = testF(fixture, 'ok', (self) => expectErrno('ENOENT', () => self.ioctl(IOMMU_DESTROY, new Uint8Array(8)), 'destroy'));
    const outcome = await c!.run(fakeProcess(() => 0));
    expect(outcome).toEqual({ status: 'fail', message: 'destroy: expected ENOENT, but it succeeded' });
  });

  it('reads out fields written back into the argument, and asserts them as the C macros do', async () => {
    let id = 0;
    const p = fakeProcess((request, arg) => {
      if (request === IOMMU_IOAS_ALLOC && arg instanceof Uint8Array) iommu_ioas_alloc.set(arg, 'out_ioas_id', id);
      return 0;
    });
    const self = new Self(p);
    id = 7;
    expect(self.testIoctlIoasAlloc()).toBe(7);
    id = 0;
    expect(() => self.testIoctlIoasAlloc()).toThrow('out_ioas_id: expected anything but 0');
  });
});
