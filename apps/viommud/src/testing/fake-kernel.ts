// A stand-in for the real kernel, for host tests of the native backend's session processes (no
// /dev/iommu here): the daemon loads it through VIOMMUD_NATIVE_BACKEND_MODULE. /dev/iommu opens a
// memfd (so iommufd ioctls on it fail with the kernel's ENOTTY for a file without them), and the
// fd-returning ioctls hand out non-blocking eventfds whose counters say which call made them.
// Everything else is a real syscall.
import { EFD_NONBLOCK, loadAddon, NativeProcess } from '@viommu/native';
import { IOMMU_FAULT_QUEUE_ALLOC, IOMMU_VEVENTQ_ALLOC, iommu_fault_alloc, iommu_veventq_alloc, type IoctlArg } from '@viommu/uapi';
import type { Backend, BackendProcess } from '../backend.js';
import { NativeClientProcess } from '../native-client.js';

/** The eventfd counters a fresh vEVENTQ / FAULT fd starts with (a read shows which one it is). */
export const FAKE_VEVENTQ_COUNT = 0x5e;
export const FAKE_FAULT_COUNT = 0xfa;

class FakeKernel extends NativeProcess {
  override open(path: string, flags?: number): number {
    return path === '/dev/iommu' ? this.memfdCreate('iommufd stand-in') : super.open(path, flags);
  }

  override ioctl(fd: number, request: number, arg: IoctlArg): number {
    if (request === IOMMU_VEVENTQ_ALLOC && arg instanceof Uint8Array) {
      iommu_veventq_alloc.set(arg, 'out_veventq_fd', this.eventfd(FAKE_VEVENTQ_COUNT, EFD_NONBLOCK));
      return 0;
    }
    if (request === IOMMU_FAULT_QUEUE_ALLOC && arg instanceof Uint8Array) {
      iommu_fault_alloc.set(arg, 'out_fault_fd', this.eventfd(FAKE_FAULT_COUNT, EFD_NONBLOCK));
      return 0;
    }
    return super.ioctl(fd, request, arg);
  }
}

export function createBackend(): Backend {
  const addon = loadAddon();
  return {
    name: 'native',
    spawn: () => new NativeClientProcess(new FakeKernel(addon)),
    exit: (p: BackendProcess) => (p as NativeClientProcess).exit(),
    liveObjects: () => new Map(),
    leakCount: () => 0,
    contextCount: () => 0,
  };
}
