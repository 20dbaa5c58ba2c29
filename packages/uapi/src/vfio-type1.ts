// The VFIO type1 container ioctls that iommufd answers for compatibility (include/uapi/linux/vfio.h,
// Linux 7.2.13; spec §12), as far as the selftest and VMMs use them.
import { defineStruct, u16, u32, u64 } from './codec.js';
import { IO, VFIO_BASE, VFIO_TYPE } from './constants.js';

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

export const VFIO_GET_API_VERSION = IO(VFIO_TYPE, VFIO_BASE + 0);
export const VFIO_CHECK_EXTENSION = IO(VFIO_TYPE, VFIO_BASE + 1);
export const VFIO_SET_IOMMU = IO(VFIO_TYPE, VFIO_BASE + 2);
export const VFIO_IOMMU_GET_INFO = IO(VFIO_TYPE, VFIO_BASE + 12);
export const VFIO_IOMMU_MAP_DMA = IO(VFIO_TYPE, VFIO_BASE + 13);
export const VFIO_IOMMU_UNMAP_DMA = IO(VFIO_TYPE, VFIO_BASE + 14);
export const VFIO_IOMMU_DIRTY_PAGES = IO(VFIO_TYPE, VFIO_BASE + 17);

export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;

export const vfio_info_cap_header = defineStruct('vfio_info_cap_header', 8, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
});

export const vfio_iommu_type1_info = defineStruct('vfio_iommu_type1_info', 24, {
  argsz: u32(0),
  flags: u32(4),
  iova_pgsizes: u64(8),
  cap_offset: u32(16),
  pad: u32(20),
});

/** Followed by `nr_iovas` vfio_iova_range {start u64, end u64}. */
export const vfio_iommu_type1_info_cap_iova_range = defineStruct('vfio_iommu_type1_info_cap_iova_range', 16, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
  nr_iovas: u32(8),
  reserved: u32(12),
});

export const vfio_iova_range = defineStruct('vfio_iova_range', 16, {
  start: u64(0),
  end: u64(8),
});

export const vfio_iommu_type1_dma_map = defineStruct('vfio_iommu_type1_dma_map', 32, {
  argsz: u32(0),
  flags: u32(4),
  vaddr: u64(8),
  iova: u64(16),
  size: u64(24),
});

export const vfio_iommu_type1_dma_unmap = defineStruct('vfio_iommu_type1_dma_unmap', 24, {
  argsz: u32(0),
  flags: u32(4),
  iova: u64(8),
  size: u64(16),
});

export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/** struct vfio_iommu_type1_info_dma_avail: the cap header and `avail` u32 (sizeof 12). */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL_SIZE = 12;
