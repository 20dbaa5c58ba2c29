// fork, exit, pipe2, eventfd and /proc/<pid>/status of a simulated process.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { mockIommu } from '../selftest/mock-driver.js';
import '../selftest/test-cmd.js';
import type { SimProcess } from './sim-process.js';

const errno = (f: () => unknown): string | undefined => {
  try {
    f();
    return 'success';
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

function setup(perMmAccounting = false) {
  const host = createSimHost({ iommus: [() => mockIommu()] });
  const parent = host.spawn();
  const fd = parent.open('/dev/iommu', U.O_RDWR);
  if (perMmAccounting) {
    parent.dropCapIpcLock();
    parent.ioctl(fd, U.IOMMU_OPTION, U.iommu_option.encode({ option_id: U.IOMMU_OPTION_RLIMIT_MODE, op: U.IOMMU_OPTION_OP_SET, val64: 1n }));
  }
  const c = U.iommu_ioas_alloc.encode({});
  parent.ioctl(fd, U.IOMMU_IOAS_ALLOC, c);
  const ioas = U.iommu_ioas_alloc.get(c, 'out_ioas_id');
  const buf = parent.memory.alloc(4 * U.PAGE_SIZE);
  const map = (p: SimProcess, iova: bigint) =>
    p.ioctl(fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map.encode({
      flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
      ioas_id: ioas, user_va: buf.addr, length: BigInt(buf.bytes.length), iova,
    }));
  const mockDomain = (p: SimProcess) => p.ioctl(fd, U.IOMMU_TEST_CMD, U.iommu_test_cmd_mock_domain.encode({ op: U.IOMMU_TEST_OP_MOCK_DOMAIN, id: ioas }));
  return { host, parent, fd, ioas, buf, map, mockDomain };
}

describe('fork', () => {
  it('gives the child the same memory at the same addresses and the same open files', () => {
    const t = setup();
    t.buf.bytes[5] = 0xab;
    const child = t.parent.fork();
    expect(child.memory.read(t.buf.addr + 5n, 1)[0]).toBe(0xab);
    // MAP_SHARED semantics: a write in the child is seen by the parent
    child.memory.write(t.buf.addr, Uint8Array.of(0x11));
    expect(t.buf.bytes[0]).toBe(0x11);
    // the iommufd fd works in the child, on the same context
    const c = U.iommu_ioas_alloc.encode({});
    child.ioctl(t.fd, U.IOMMU_IOAS_ALLOC, c);
    expect(U.iommu_ioas_alloc.get(c, 'out_ioas_id')).toBe(t.ioas + 1);
    child.exit();
  });

  it('counts file references: closing in the child leaves the parent open, the last close releases', () => {
    const t = setup();
    const child = t.parent.fork();
    expect(t.host.contexts.size).toBe(1);
    child.close(t.fd);
    expect(errno(() => child.ioctl(t.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc.encode({})))).toBe('EBADF');
    expect(errno(() => t.parent.ioctl(t.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc.encode({})))).toBe('success');
    child.exit();
    expect(t.host.contexts.size).toBe(1);
    t.parent.close(t.fd);
    expect(t.host.contexts.size).toBe(0);
  });

  it('pins a mapping made by the child from the child: pinned stays, pinning after its exit is EFAULT', () => {
    const t = setup();
    const child = t.parent.fork();
    t.map(child, BigInt(U.MOCK_APERTURE_START));
    child.exit();
    // no domain yet: attaching one must pin the exited child's pages (fork_gone)
    expect(errno(() => t.mockDomain(t.parent))).toBe('EFAULT');

    const u = setup();
    const child2 = u.parent.fork();
    u.mockDomain(u.parent);
    u.map(child2, BigInt(U.MOCK_APERTURE_START)); // pinned now, in the child's mm
    expect(child2.procStatus()).toEqual({ VmPin: 16, VmLck: 0 });
    expect(u.parent.procStatus()).toEqual({ VmPin: 0, VmLck: 0 });
    child2.exit();
    expect(errno(() => u.mockDomain(u.parent))).toBe('success'); // copied from the first domain
  });

  it("leaves the parent's memory and pins alone when the child exits; an exited process cannot fork", () => {
    const t = setup();
    t.buf.bytes[7] = 0x5a;
    const child = t.parent.fork();
    child.exit();
    expect(t.parent.memory.read(t.buf.addr + 7n, 1)[0]).toBe(0x5a);
    t.map(t.parent, BigInt(U.MOCK_APERTURE_START));
    expect(errno(() => t.mockDomain(t.parent))).toBe('success');
    expect(t.parent.procStatus().VmPin).toBe(16);
    expect(errno(() => child.fork())).toBe('ESRCH');
  });

  it('CHANGE_PROCESS from the child moves per-mm pins and memlock to the child', () => {
    const t = setup(true);
    t.mockDomain(t.parent);
    const mfd = t.parent.memfdCreate();
    t.parent.ftruncate(mfd, U.PAGE_SIZE);
    t.parent.ioctl(t.fd, U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file.encode({
      flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: t.ioas, fd: mfd, start: 0n, length: BigInt(U.PAGE_SIZE),
    }));
    expect(t.parent.procStatus()).toEqual({ VmPin: 4, VmLck: 4 });
    const child = t.parent.fork();
    expect(child.procStatus()).toEqual({ VmPin: 0, VmLck: 0 });
    child.ioctl(t.fd, U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process.encode({}));
    expect(t.parent.procStatus()).toEqual({ VmPin: 0, VmLck: 0 });
    expect(child.procStatus()).toEqual({ VmPin: 4, VmLck: 4 });
    child.exit();
  });
});

describe('pipe and eventfd', () => {
  it('a pipe carries bytes, is EAGAIN when empty with a writer, and EOF once every write end is closed', () => {
    const p = createSimHost().spawn();
    const [r, w] = p.pipe();
    const child = p.fork();
    const got = new Uint8Array(4);
    expect(errno(() => p.read(r, got))).toBe('EAGAIN');
    expect(child.write(w, Uint8Array.of(1, 2, 3))).toBe(3);
    expect(p.read(r, got)).toBe(3);
    expect([...got.subarray(0, 3)]).toEqual([1, 2, 3]);
    p.close(w);
    expect(errno(() => child.read(r, got))).toBe('EAGAIN'); // the child's write end is still open
    child.close(w);
    expect(child.read(r, got)).toBe(0);
    child.exit();
  });

  it('an eventfd adds writes and a read takes the whole count (8 bytes, EINVAL shorter)', async () => {
    const p = createSimHost().spawn();
    const efd = p.eventfd(0, U.O_CLOEXEC);
    const one = new Uint8Array(8);
    one[0] = 1;
    p.write(efd, one);
    p.write(efd, one);
    expect(await p.poll(efd, U.POLLIN, 0)).toBe(U.POLLIN);
    expect(errno(() => p.read(efd, new Uint8Array(4)))).toBe('EINVAL');
    const out = new Uint8Array(8);
    expect(p.read(efd, out)).toBe(8);
    expect(out[0]).toBe(2);
    expect(errno(() => p.read(efd, out))).toBe('EAGAIN');
  });
});
