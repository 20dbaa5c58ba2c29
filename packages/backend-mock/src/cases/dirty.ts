// TEST_F(iommufd_dirty_tracking, ...) of iommufd.c: dirty-tracking HWPTs, the NO_DIRTY device,
// PASID attach with dirty tracking, and dirty bitmaps at every alignment, with and without clearing.
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IOMMUPT_DEFAULT,
  MOCK_IOMMUPT_HUGE,
  MOCK_PAGE_SIZE,
} from '@viommu/uapi';
import { iommufd_dirty_tracking, type DirtySelf, type DirtyVariant } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { assertEq, at, expectErrno } from '../utils.js';

function dirtyBitmaps(self: DirtySelf, variant: DirtyVariant, flags: number): void {
  const pageSize = variant.hugepages ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE_SIZE;
  self.testIoctlIoasMapFixedId(self.ioas_id, self.dbuffer, variant.buffer_size, MOCK_APERTURE_START);
  const hwptId = self.testCmdHwptAllocIommupt(
    self.idev_id,
    self.ioas_id,
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    variant.hugepages ? MOCK_IOMMUPT_HUGE : MOCK_IOMMUPT_DEFAULT,
  );
  self.testCmdSetDirtyTracking(hwptId, true);
  const run = (bitmapOffset: number) =>
    self.testMockDirtyBitmaps(hwptId, variant.buffer_size, MOCK_APERTURE_START, self.page_size, pageSize, at(self.bitmap, bitmapOffset), self.bitmap_size, flags);
  run(0);
  // PAGE_SIZE unaligned bitmap
  run(MOCK_PAGE_SIZE);
  // u64 unaligned bitmap
  run(0xff1);
  self.testIoctlDestroy(hwptId);
}

export const dirtyCases: Scenario[] = [
  ...testF(iommufd_dirty_tracking, 'enforce_dirty', (self) => {
    // Regular case
    const devFlags = MOCK_FLAGS_DEVICE_NO_DIRTY;
    const hwptId = self.testCmdHwptAlloc(self.idev_id, self.ioas_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = self.testCmdMockDomain(hwptId);
    self.errMockDomainFlags('EINVAL', hwptId, devFlags);
    self.testIoctlDestroy(d.stdevId);
    self.testIoctlDestroy(hwptId);
    // IOMMU device does not support dirty tracking
    const ioasId = self.testIoctlIoasAlloc();
    const nd = self.testCmdMockDomainFlags(ioasId, devFlags);
    self.errHwptAlloc('EOPNOTSUPP', nd.idevId, ioasId, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    self.testIoctlDestroy(nd.stdevId);
  }),

  ...testF(iommufd_dirty_tracking, 'set_dirty_tracking', (self) => {
    const hwptId = self.testCmdHwptAlloc(self.idev_id, self.ioas_id, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = self.testCmdMockDomain(hwptId);
    self.testCmdSetDirtyTracking(hwptId, true);
    self.testCmdSetDirtyTracking(hwptId, false);
    self.testIoctlDestroy(d.stdevId);
    self.testIoctlDestroy(hwptId);
  }),

  ...testF(iommufd_dirty_tracking, 'pasid_set_dirty_tracking', (self) => {
    const pasid = 100;
    let devFlags = MOCK_FLAGS_DEVICE_PASID;
    // Regular case
    const hwptId = self.testCmdHwptAlloc(self.idev_id, self.ioas_id, IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = self.testCmdMockDomainFlags(hwptId, devFlags);
    self._pasidAttach(d.stdevId, pasid, hwptId);
    self.testCmdSetDirtyTracking(hwptId, true);
    self.testCmdSetDirtyTracking(hwptId, false);
    self.stdev_id = d.stdevId;
    self.testCmdPasidDetach(pasid);
    self.stdev_id = 0;
    self.testIoctlDestroy(d.stdevId);
    // IOMMU device does not support dirty tracking
    devFlags |= MOCK_FLAGS_DEVICE_NO_DIRTY;
    const ioasId = self.testIoctlIoasAlloc();
    const nd = self.testCmdMockDomainFlags(ioasId, devFlags);
    expectErrno('EINVAL', () => self._pasidAttach(nd.stdevId, pasid, hwptId), 'PASID_ATTACH of a dirty-tracking HWPT to a NO_DIRTY device');
    self.testIoctlDestroy(nd.stdevId);
    self.testIoctlDestroy(hwptId);
  }),

  ...testF(iommufd_dirty_tracking, 'device_dirty_capability', (self) => {
    const hwptId = self.testCmdHwptAlloc(self.idev_id, self.ioas_id, 0);
    const d = self.testCmdMockDomain(hwptId);
    const caps = self.testCmdGetHwCapabilities(self.idev_id);
    assertEq(BigInt(IOMMU_HW_CAP_DIRTY_TRACKING), caps & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING), 'DIRTY_TRACKING capability');
    self.testIoctlDestroy(d.stdevId);
    self.testIoctlDestroy(hwptId);
  }),

  ...testF(iommufd_dirty_tracking, 'get_dirty_bitmap', (self, variant) => dirtyBitmaps(self, variant, 0)),

  ...testF(iommufd_dirty_tracking, 'get_dirty_bitmap_no_clear', (self, variant) => dirtyBitmaps(self, variant, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)),
];
