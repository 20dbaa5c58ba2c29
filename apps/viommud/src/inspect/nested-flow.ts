// The nested vIOMMU flow on the selftest mock, as the kernel selftest builds it (iommufd.c's
// iommufd_viommu fixture, then vdevice_cache / hw_queue / veventq): an IOAS, a mock device, a
// nest-parent HWPT, a vIOMMU on it, a nested HWPT the device is attached to, a vDEVICE, a vEVENTQ
// and a HW queue. Used by the inspection tests and by demo-client.ts. Works on any Process.
import { iommufd_viommu, PAGE_SIZE, type ViommuSelf } from '@viommu/backend-mock';
import { IOMMU_HW_QUEUE_TYPE_SELFTEST, IOMMU_VEVENTQ_TYPE_SELFTEST, iommu_viommu_invalidate_selftest, MOCK_DEV_CACHE_ID_MAX, type Process } from '@viommu/uapi';

export interface NestedFlow {
  readonly self: ViommuSelf;
  readonly ioas: number;
  /** The SELFTEST object of the mock device, and its DEVICE. */
  readonly stdev: number;
  readonly device: number;
  readonly parent: number;
  readonly viommu: number;
  readonly nested: number;
  readonly vdevice: number;
  readonly veventq: number;
  readonly veventqFd: number;
  readonly hwQueue: number;
  /** The vDEVICE's virt_id. */
  readonly virtId: number;
  /** One IOMMU_HWPT_INVALIDATE on the vIOMMU with `entries` selftest requests; returns entry_num. */
  invalidate(entries: number): number;
  /** Makes the mock device raise `n` vEVENTs (into the vEVENTQ). */
  trigger(n: number): void;
  destroy(id: number): void;
}

export async function nestedFlow(p: Process, opts: { virtId?: number; veventqDepth?: number } = {}): Promise<NestedFlow> {
  const virtId = opts.virtId ?? 0x99;
  const self = await iommufd_viommu.setup(p, { viommu: 1 });
  const vdevice = self.testCmdVdeviceAlloc(self.viommu_id, self.device_id, virtId);
  // The device moves from its auto-domain to the guest's nested HWPT (the auto HWPT goes); the mock,
  // like the kernel's, needs the vDEVICE first (it looks up the device's virt_id, else ENOENT).
  self.testCmdMockDomainReplace(self.stdev_id, self.nested_hwpt_id);
  const q = self.testCmdVeventqAlloc(self.viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, opts.veventqDepth ?? 16);
  // A HW queue needs its guest memory mapped in the stage-2 first.
  const iova = self.testIoctlIoasMap(self.buffer, PAGE_SIZE);
  const hwQueue = self.testCmdHwQueueAlloc(self.viommu_id, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE);
  const il = iommu_viommu_invalidate_selftest.size;
  return {
    self,
    ioas: self.ioas_id,
    stdev: self.stdev_id,
    device: self.device_id,
    parent: self.hwpt_id,
    viommu: self.viommu_id,
    nested: self.nested_hwpt_id,
    vdevice,
    veventq: q.veventqId,
    veventqFd: q.veventqFd,
    hwQueue,
    virtId,
    invalidate(entries) {
      const reqs = self.mem(Math.max(1, entries) * il);
      for (let i = 0; i < entries; i++) {
        iommu_viommu_invalidate_selftest.encode({ flags: 0, vdev_id: virtId, cache_id: i % (MOCK_DEV_CACHE_ID_MAX + 1) }, reqs.bytes, i * il);
      }
      try {
        return self.testCmdViommuInvalidate(self.viommu_id, reqs, il, entries);
      } finally {
        self.process.memory.free(reqs.addr);
      }
    },
    trigger: (n) => self.testCmdTriggerVevents(self.device_id, n),
    destroy: (id) => self.testIoctlDestroy(id),
  };
}
