// The native backend's per-client process: fd ownership in the daemon's one fd table, the paths a
// client may open, fds the kernel hands out inside ioctl structs, and exit. No /dev/iommu is
// needed: memfds and eventfds stand in, and a NativeProcess whose ioctl plays the kernel's part
// for the fd-returning calls. The selftest port through this backend on the real kernel is the
// kernel lane's `daemon` run (tooling/kernel-lane, ADR 0052).
import { describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { loadAddon, NativeProcess, NativeUnavailableError } from '@viommu/native';
import { MirrorSet, Writer } from '@viommu/protocol';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_DMABUF_GET,
  IOMMU_TEST_OP_DMABUF_REVOKE,
  IOMMU_VEVENTQ_ALLOC,
  POLLIN,
  POLLNVAL,
  iommu_fault_alloc,
  iommu_ioas_map_file,
  iommu_test_cmd_dmabuf_get,
  iommu_test_cmd_dmabuf_revoke,
  iommu_veventq_alloc,
  SystemError,
  type IoctlArg,
} from '@viommu/uapi';
import { NativeClientProcess } from './backend.js';
import { codeOf } from './testing/daemon-tests.js';

const unavailable = (() => {
  try {
    loadAddon();
    return undefined;
  } catch (e) {
    if (e instanceof NativeUnavailableError) return e;
    throw e;
  }
})();
const describeNative = unavailable ? describe.skip : describe;

/** The kernel's side of the fd-returning ioctls, played with eventfds; every other ioctl is real. */
class FakeKernel extends NativeProcess {
  made: number[] = [];
  /** The fd field IOAS_MAP_FILE / DMABUF_REVOKE carried when it reached the kernel. */
  sawFd: number | undefined;
  override ioctl(fd: number, request: number, arg: IoctlArg): number {
    if (arg instanceof Uint8Array && (request === IOMMU_IOAS_MAP_FILE || request === IOMMU_TEST_CMD)) {
      const view = new DataView(arg.buffer, arg.byteOffset);
      if (request === IOMMU_IOAS_MAP_FILE) {
        if (view.getUint32(0, true) < iommu_ioas_map_file.minSize) throw new SystemError('EINVAL', 'ioctl');
        this.sawFd = view.getInt32(12, true);
        if (this.sawFd < 0) throw new SystemError('EBADF', 'ioctl');
        return 0;
      }
      if (view.getUint32(4, true) === IOMMU_TEST_OP_DMABUF_REVOKE) {
        this.sawFd = view.getInt32(16, true);
        throw new SystemError(this.sawFd < 0 ? 'EBADF' : 'EINVAL', 'ioctl');
      }
    }
    const fresh = () => {
      const e = this.eventfd(0, 0);
      this.made.push(e);
      return e;
    };
    if (request === IOMMU_FAULT_QUEUE_ALLOC && arg instanceof Uint8Array) return iommu_fault_alloc.set(arg, 'out_fault_fd', fresh()), 0;
    if (request === IOMMU_VEVENTQ_ALLOC && arg instanceof Uint8Array) return iommu_veventq_alloc.set(arg, 'out_veventq_fd', fresh()), 0;
    if (request === IOMMU_TEST_CMD && arg instanceof Uint8Array && new DataView(arg.buffer, arg.byteOffset).getUint32(4, true) === IOMMU_TEST_OP_DMABUF_GET) return fresh();
    return super.ioctl(fd, request, arg);
  }
}

function client(): NativeClientProcess {
  return new NativeClientProcess(new NativeProcess(loadAddon()));
}


describeNative('a native client process in the daemon', () => {
  it('opens only /dev/iommu and /dev/vfio/*: anything else is EACCES and opens nothing', () => {
    const a = client();
    for (const path of ['/etc/passwd', '/proc/self/mem', '/dev/iommu/../null', '/dev/vfio/../../etc/passwd', '/dev/null', 'dev/iommu']) {
      expect(codeOf(() => a.open(path))).toBe('EACCES');
    }
    expect(a.openFds).toBe(0);
    a.exit();
  });

  it('refuses another client\'s fd (and the daemon\'s own) with EBADF / POLLNVAL, as an fd that is not open', async () => {
    const a = client();
    const b = client();
    const fd = a.memfdCreate('a');
    a.ftruncate(fd, 4096);
    expect(a.owns(fd)).toBe(true);
    expect(b.owns(fd)).toBe(false);
    const buf = new Uint8Array(8);
    expect(codeOf(() => b.read(fd, buf))).toBe('EBADF');
    expect(codeOf(() => b.write(fd, buf))).toBe('EBADF');
    expect(codeOf(() => b.ftruncate(fd, 0))).toBe('EBADF');
    expect(codeOf(() => b.ioctl(fd, IOMMU_IOAS_MAP_FILE, null))).toBe('EBADF');
    expect(codeOf(() => b.mmap(fd, 4096, 0n))).toBe('EBADF');
    expect(codeOf(() => b.close(fd))).toBe('EBADF');
    expect(await b.poll(fd, POLLIN, 0)).toBe(POLLNVAL);
    // stdin/stdout of the daemon are not the client's either
    expect(codeOf(() => b.write(1, buf))).toBe('EBADF');
    // a's fd is untouched by all that
    expect(a.write(fd, new Uint8Array([1, 2, 3]))).toBe(3);
    const m = a.mmap(fd, 4096, 0n);
    expect([...m.bytes.subarray(0, 3)]).toEqual([1, 2, 3]);
    a.munmap(m.addr, 4096);
    // nor can b unmap or free a's memory
    const mem = a.memory.alloc(4096);
    expect(codeOf(() => b.memory.free(mem.addr))).toBe('EINVAL');
    a.exit();
    b.exit();
  });

  it('passes another client\'s fd inside an ioctl struct to the kernel as -1, so the kernel fails it in its own order', () => {
    const kernel = new FakeKernel(loadAddon());
    const a = client();
    const b = new NativeClientProcess(kernel);
    const foreign = a.memfdCreate('a');
    const own = b.memfdCreate('b');
    const map = iommu_ioas_map_file.encode({ size: iommu_ioas_map_file.size, fd: foreign, length: 4096n });
    // the kernel saw -1; the caller's struct is as it was
    expect(codeOf(() => b.ioctl(own, IOMMU_IOAS_MAP_FILE, map))).toBe('EBADF');
    expect(kernel.sawFd).toBe(-1);
    expect(iommu_ioas_map_file.get(map, 'fd')).toBe(foreign);
    // a struct too short for the kernel still reaches it (its EINVAL comes before any fd lookup)
    iommu_ioas_map_file.set(map, 'size', iommu_ioas_map_file.minSize - 1);
    expect(codeOf(() => b.ioctl(own, IOMMU_IOAS_MAP_FILE, map))).toBe('EINVAL');
    iommu_ioas_map_file.set(map, 'size', iommu_ioas_map_file.size);
    // its own fd goes through unchanged
    iommu_ioas_map_file.set(map, 'fd', own);
    expect(b.ioctl(own, IOMMU_IOAS_MAP_FILE, map)).toBe(0);
    expect(kernel.sawFd).toBe(own);
    const revoke = iommu_test_cmd_dmabuf_revoke.encode({ op: IOMMU_TEST_OP_DMABUF_REVOKE, dmabuf_fd: foreign });
    expect(codeOf(() => b.ioctl(own, IOMMU_TEST_CMD, revoke))).toBe('EBADF');
    expect(kernel.sawFd).toBe(-1);
    expect(iommu_test_cmd_dmabuf_revoke.get(revoke, 'dmabuf_fd')).toBe(foreign);
    // on a real fd without such an ioctl the kernel's own errno comes back
    const plain = client();
    const m = plain.memfdCreate('plain');
    expect(codeOf(() => plain.ioctl(m, IOMMU_IOAS_MAP_FILE, map))).toBe('ENOTTY');
    a.exit();
    b.exit();
    plain.exit();
  });

  it('adopts the fds the kernel returns (fault queue, vEVENTQ, dma-buf) and closes them at exit', () => {
    const kernel = new FakeKernel(loadAddon());
    const a = new NativeClientProcess(kernel);
    const ctl = a.memfdCreate('stand-in for /dev/iommu');
    const fault = iommu_fault_alloc.encode({ size: iommu_fault_alloc.size });
    a.ioctl(ctl, IOMMU_FAULT_QUEUE_ALLOC, fault);
    const veventq = iommu_veventq_alloc.encode({ size: iommu_veventq_alloc.size });
    a.ioctl(ctl, IOMMU_VEVENTQ_ALLOC, veventq);
    const dmabuf = a.ioctl(ctl, IOMMU_TEST_CMD, iommu_test_cmd_dmabuf_get.encode({ op: IOMMU_TEST_OP_DMABUF_GET, length: 4096 }));
    const fds = [iommu_fault_alloc.get(fault, 'out_fault_fd'), iommu_veventq_alloc.get(veventq, 'out_veventq_fd'), dmabuf];
    expect(fds).toEqual(kernel.made);
    for (const fd of fds) {
      expect(a.owns(fd)).toBe(true);
      // usable as the client's own: an eventfd takes an 8-byte counter
      expect(a.write(fd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]))).toBe(8);
    }
    a.exit();
    // exit closed them all (the kernel would now release the context they held)
    for (const fd of [ctl, ...fds]) expect(existsSync(`/proc/self/fd/${fd}`)).toBe(false);
    expect(a.openFds).toBe(0);
  });

  it('adopts an fd passed to the daemon (FD_IMPORT over SCM_RIGHTS) as the client\'s own', () => {
    const daemonSide = new NativeProcess(loadAddon());
    const passed = daemonSide.memfdCreate('passed', 0);
    const a = client();
    expect(a.owns(passed)).toBe(false);
    expect(a.adopt(passed)).toBe(passed);
    a.ftruncate(passed, 4096);
    a.exit();
    expect(existsSync(`/proc/self/fd/${passed}`)).toBe(false);
  });

  it('never maps pages past the end of a memfd: refused at mmap, withdrawn when the file shrinks (no SIGBUS in the daemon)', () => {
    const a = client();
    const fd = a.memfdCreate('m');
    a.ftruncate(fd, 4096);
    expect(codeOf(() => a.mmap(fd, 8192, 0n))).toBe('EINVAL');
    expect(codeOf(() => a.mmap(fd, 4096, 4096n))).toBe('EINVAL');
    const m = a.mmap(fd, 4096, 0n);
    m.bytes[0] = 9;
    const keep = a.memfdCreate('k');
    a.ftruncate(keep, 8192);
    const k = a.mmap(keep, 8192, 0n);
    // the session mirrors both (ADR 0120): it reads every page of them after every call
    const mirror = new MirrorSet();
    mirror.add(Number(m.addr), m.bytes);
    mirror.add(Number(k.addr), k.bytes);
    m.bytes[1] = 1;
    k.bytes[8191] = 2;
    expect(mirror.writeChanges(new Writer())).toBe(2);
    a.ftruncate(fd, 0);
    // the shrunk file's mapping is gone (its buffer detached, so nothing touches its pages); the
    // other one is untouched and still mirrored
    expect(m.bytes.length).toBe(0);
    expect(k.bytes.length).toBe(8192);
    k.bytes[0] = 3;
    expect(mirror.writeChanges(new Writer())).toBe(1);
    // growing a file leaves its mappings alone
    a.ftruncate(keep, 16384);
    expect(k.bytes.length).toBe(8192);
    // the client's munmap of the withdrawn mapping succeeds once, like any munmap of its own
    a.munmap(m.addr, 4096);
    expect(codeOf(() => a.munmap(m.addr, 4096))).toBe('EINVAL');
    a.munmap(k.addr, 8192);
    a.exit();
  });

  it('exit unmaps everything once; the session freeing its allocations afterwards is harmless', () => {
    const a = client();
    const m = a.memory.alloc(8192);
    m.bytes.fill(7);
    a.exit();
    expect(() => a.memory.free(m.addr)).not.toThrow();
    expect(() => a.exit()).not.toThrow();
  });
});
