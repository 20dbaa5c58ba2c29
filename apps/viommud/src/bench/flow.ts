// The load: the nested vIOMMU flow of the selftest's iommufd_viommu fixture (IOAS, mock device,
// nesting parent, vIOMMU, vDEVICE, nested HWPT), then a stream of single-entry vIOMMU cache
// invalidations, then teardown. Every ioctl's latency is recorded.
import { ViommuSelf } from '@viommu/backend-mock';
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  O_RDWR,
  iommu_hwpt_selftest,
  iommu_viommu_invalidate_selftest,
  type IoctlArg,
  type Process,
} from '@viommu/uapi';

/** Wraps a Process so every ioctl's latency (ns) lands in `samples`. */
export function timed(p: Process, samples: number[]): Process {
  const ioctl = p.ioctl.bind(p);
  return new Proxy(p, {
    get(target, key) {
      if (key === 'ioctl') {
        return (fd: number, request: number, arg: IoctlArg) => {
          const t0 = process.hrtime.bigint();
          try {
            return ioctl(fd, request, arg);
          } finally {
            samples.push(Number(process.hrtime.bigint() - t0));
          }
        };
      }
      const v = (target as unknown as Record<string | symbol, unknown>)[key];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

export function nestedFlow(p: Process, invalidations: number): void {
  const self = new ViommuSelf(p);
  self.fd = p.open('/dev/iommu', O_RDWR);
  self.ioas_id = self.testIoctlIoasAlloc();
  const d = self.testCmdMockDomain(self.ioas_id);
  self.stdev_id = d.stdevId;
  self.device_id = d.idevId;
  self.hwpt_id = self.testCmdHwptAlloc(self.device_id, self.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT);
  self.viommu_id = self.testCmdViommuAlloc(self.device_id, self.hwpt_id, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
  const data = self.put(iommu_hwpt_selftest.encode({ iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
  self.nested_hwpt_id = self.testCmdHwptAllocNested(self.device_id, self.viommu_id, 0, IOMMU_HWPT_DATA_SELFTEST, data, iommu_hwpt_selftest.size);
  self.testIoctlIoasMap(self.buffer, 4 * 4096);
  self.testCmdVdeviceAlloc(self.viommu_id, self.device_id, 0x99);
  const reqs = self.mem(iommu_viommu_invalidate_selftest.size);
  for (let i = 0; i < invalidations; i++) {
    iommu_viommu_invalidate_selftest.encode({ flags: 0, vdev_id: 0x99, cache_id: i & 3 }, reqs.bytes, 0);
    self.testCmdViommuInvalidate(self.viommu_id, reqs, iommu_viommu_invalidate_selftest.size, 1);
  }
  self.teardownIommufd();
}
