import { describe, expect, it } from '@jest/globals';
import * as V from './vfio-type1.js';

// Numbers from include/uapi/linux/vfio.h of Linux 7.2.13 (VFIO_TYPE ';' = 0x3b, VFIO_BASE 100).
describe('VFIO type1 compat uAPI', () => {
  it('ioctl numbers', () => {
    expect([V.VFIO_GET_API_VERSION, V.VFIO_CHECK_EXTENSION, V.VFIO_SET_IOMMU]).toEqual([0x3b64, 0x3b65, 0x3b66]);
    expect([V.VFIO_IOMMU_GET_INFO, V.VFIO_IOMMU_MAP_DMA, V.VFIO_IOMMU_UNMAP_DMA, V.VFIO_IOMMU_DIRTY_PAGES]).toEqual([0x3b70, 0x3b71, 0x3b72, 0x3b75]);
  });

  it('struct sizes and key offsets', () => {
    expect(V.vfio_iommu_type1_info.size).toBe(24);
    expect(V.vfio_iommu_type1_info.fields.cap_offset.offset).toBe(16);
    expect(V.vfio_iommu_type1_dma_map.size).toBe(32);
    expect(V.vfio_iommu_type1_dma_unmap.size).toBe(24);
    expect(V.vfio_iommu_type1_dma_unmap.fields.size.offset).toBe(16);
    expect(V.vfio_iova_range.size).toBe(16);
    expect(V.vfio_iommu_type1_info_cap_iova_range.size).toBe(16);
  });

  it('extension and flag values', () => {
    expect([V.VFIO_TYPE1_IOMMU, V.VFIO_TYPE1v2_IOMMU, V.VFIO_DMA_CC_IOMMU, V.VFIO_NOIOMMU_IOMMU, V.VFIO_UNMAP_ALL, V.VFIO_UPDATE_VADDR]).toEqual([1, 3, 4, 8, 9, 10]);
    expect([V.VFIO_DMA_MAP_FLAG_READ, V.VFIO_DMA_MAP_FLAG_WRITE, V.VFIO_DMA_UNMAP_FLAG_ALL]).toEqual([1, 2, 2]);
  });
});
