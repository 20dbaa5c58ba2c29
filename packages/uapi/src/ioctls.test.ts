import { describe, expect, it } from '@jest/globals';
import * as C from './constants.js';
import { IOMMU_TEST_IOCTL, IOMMUFD_IOCTLS, VFIO_CDEV_IOCTLS, ioctlByRequest, ioctlNr, ioctlType } from './ioctls.js';

describe('ioctl numbers', () => {
  it('the iommufd command set is nr 0x80..0x94 with no gaps and nothing past it', () => {
    expect(IOMMUFD_IOCTLS.map((d) => ioctlNr(d.request))).toEqual(Array.from({ length: 21 }, (_, i) => 0x80 + i));
    expect(IOMMUFD_IOCTLS.every((d) => ioctlType(d.request) === 0x3b)).toBe(true);
    expect(ioctlByRequest(C.IO(0x3b, 0x95))).toBeUndefined();
  });

  it('known request values (hex as in strace)', () => {
    expect(C.IOMMU_DESTROY).toBe(0x3b80);
    expect(C.IOMMU_IOAS_MAP).toBe(0x3b85);
    expect(C.IOMMU_IOAS_MAP_FILE).toBe(0x3b8f);
    expect(C.IOMMU_VIOMMU_ALLOC).toBe(0x3b90);
    expect(C.IOMMU_HW_QUEUE_ALLOC).toBe(0x3b94);
    expect(C.IOMMU_TEST_CMD).toBe(0x3ba0);
    expect(C.VFIO_DEVICE_BIND_IOMMUFD).toBe(0x3b76);
    expect(C.VFIO_DEVICE_ATTACH_IOMMUFD_PT).toBe(0x3b77);
    expect(C.VFIO_DEVICE_DETACH_IOMMUFD_PT).toBe(0x3b78);
  });

  it('looks up every ioctl by request', () => {
    for (const d of [...IOMMUFD_IOCTLS, IOMMU_TEST_IOCTL, ...VFIO_CDEV_IOCTLS]) expect(ioctlByRequest(d.request)).toBe(d);
  });
});
