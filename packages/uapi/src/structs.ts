// Every struct of include/uapi/linux/iommufd.h (Linux 7.2.13), named as in C.
// Layouts are Linux 7.2.13's; src/layouts.test.ts checks every size and offset against the fact table.
import { defineStruct, u8, u8s, u16, u32, u32s, u64, u64s } from './codec.js';

export const iommu_destroy = defineStruct('iommu_destroy', 8, {
  size: u32(0),
  id: u32(4),
}, { last: 'id' });

export const iommu_ioas_alloc = defineStruct('iommu_ioas_alloc', 12, {
  size: u32(0),
  flags: u32(4),
  out_ioas_id: u32(8),
}, { last: 'out_ioas_id' });

export const iommu_iova_range = defineStruct('iommu_iova_range', 16, {
  start: u64(0),
  last: u64(8),
});

export const iommu_ioas_iova_ranges = defineStruct('iommu_ioas_iova_ranges', 32, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
  out_iova_alignment: u64(24),
}, { last: 'out_iova_alignment' });

export const iommu_ioas_allow_iovas = defineStruct('iommu_ioas_allow_iovas', 24, {
  size: u32(0),
  ioas_id: u32(4),
  num_iovas: u32(8),
  __reserved: u32(12),
  allowed_iovas: u64(16),
}, { last: 'allowed_iovas' });

export const iommu_ioas_map = defineStruct('iommu_ioas_map', 40, {
  size: u32(0),
  flags: u32(4),
  ioas_id: u32(8),
  __reserved: u32(12),
  user_va: u64(16),
  length: u64(24),
  iova: u64(32),
}, { last: 'iova' });

export const iommu_ioas_map_file = defineStruct('iommu_ioas_map_file', 40, {
  size: u32(0),
  flags: u32(4),
  ioas_id: u32(8),
  fd: u32(12),
  start: u64(16),
  length: u64(24),
  iova: u64(32),
}, { last: 'iova' });

export const iommu_ioas_copy = defineStruct('iommu_ioas_copy', 40, {
  size: u32(0),
  flags: u32(4),
  dst_ioas_id: u32(8),
  src_ioas_id: u32(12),
  length: u64(16),
  dst_iova: u64(24),
  src_iova: u64(32),
}, { last: 'src_iova' });

export const iommu_ioas_unmap = defineStruct('iommu_ioas_unmap', 24, {
  size: u32(0),
  ioas_id: u32(4),
  iova: u64(8),
  length: u64(16),
}, { last: 'length' });

export const iommu_option = defineStruct('iommu_option', 24, {
  size: u32(0),
  option_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
  object_id: u32(12),
  val64: u64(16),
}, { last: 'val64' });

export const iommu_vfio_ioas = defineStruct('iommu_vfio_ioas', 12, {
  size: u32(0),
  ioas_id: u32(4),
  op: u16(8),
  __reserved: u16(10),
}, { last: '__reserved' });

export const iommu_hwpt_vtd_s1 = defineStruct('iommu_hwpt_vtd_s1', 24, {
  flags: u64(0),
  pgtbl_addr: u64(8),
  addr_width: u32(16),
  __reserved: u32(20),
});

export const iommu_hwpt_arm_smmuv3 = defineStruct('iommu_hwpt_arm_smmuv3', 16, {
  ste: u64s(0, 2),
});

export const iommu_hwpt_amd_guest = defineStruct('iommu_hwpt_amd_guest', 32, {
  dte: u64s(0, 4),
});

export const iommu_hwpt_alloc = defineStruct('iommu_hwpt_alloc', 48, {
  size: u32(0),
  flags: u32(4),
  dev_id: u32(8),
  pt_id: u32(12),
  out_hwpt_id: u32(16),
  __reserved: u32(20),
  data_type: u32(24),
  data_len: u32(28),
  data_uptr: u64(32),
  fault_id: u32(40),
  __reserved2: u32(44),
}, { last: '__reserved' });

export const iommu_hw_info_vtd = defineStruct('iommu_hw_info_vtd', 24, {
  flags: u32(0),
  __reserved: u32(4),
  cap_reg: u64(8),
  ecap_reg: u64(16),
});

export const iommu_hw_info_arm_smmuv3 = defineStruct('iommu_hw_info_arm_smmuv3', 40, {
  flags: u32(0),
  __reserved: u32(4),
  idr: u32s(8, 6),
  iidr: u32(32),
  aidr: u32(36),
});

export const iommu_hw_info_tegra241_cmdqv = defineStruct('iommu_hw_info_tegra241_cmdqv', 8, {
  flags: u32(0),
  version: u8(4),
  log2vcmdqs: u8(5),
  log2vsids: u8(6),
  __reserved: u8(7),
});

export const iommu_hw_info_amd = defineStruct('iommu_hw_info_amd', 16, {
  efr: u64(0),
  efr2: u64(8),
});

export const iommu_hw_info = defineStruct('iommu_hw_info', 40, {
  size: u32(0),
  flags: u32(4),
  dev_id: u32(8),
  data_len: u32(12),
  data_uptr: u64(16),
  in_data_type: u32(24),
  out_data_type: u32(24),
  out_max_pasid_log2: u8(28),
  __reserved: u8s(29, 3),
  out_capabilities: u64(32),
}, { last: '__reserved' });

export const iommu_hwpt_set_dirty_tracking = defineStruct('iommu_hwpt_set_dirty_tracking', 16, {
  size: u32(0),
  flags: u32(4),
  hwpt_id: u32(8),
  __reserved: u32(12),
}, { last: '__reserved' });

export const iommu_hwpt_get_dirty_bitmap = defineStruct('iommu_hwpt_get_dirty_bitmap', 48, {
  size: u32(0),
  hwpt_id: u32(4),
  flags: u32(8),
  __reserved: u32(12),
  iova: u64(16),
  length: u64(24),
  page_size: u64(32),
  data: u64(40),
}, { last: 'data' });

export const iommu_hwpt_vtd_s1_invalidate = defineStruct('iommu_hwpt_vtd_s1_invalidate', 24, {
  addr: u64(0),
  npages: u64(8),
  flags: u32(16),
  __reserved: u32(20),
});

export const iommu_viommu_arm_smmuv3_invalidate = defineStruct('iommu_viommu_arm_smmuv3_invalidate', 16, {
  cmd: u64s(0, 2),
});

export const iommu_hwpt_invalidate = defineStruct('iommu_hwpt_invalidate', 32, {
  size: u32(0),
  hwpt_id: u32(4),
  data_uptr: u64(8),
  data_type: u32(16),
  entry_len: u32(20),
  entry_num: u32(24),
  __reserved: u32(28),
}, { last: '__reserved' });

export const iommu_hwpt_pgfault = defineStruct('iommu_hwpt_pgfault', 40, {
  flags: u32(0),
  dev_id: u32(4),
  pasid: u32(8),
  grpid: u32(12),
  perm: u32(16),
  __reserved: u32(20),
  addr: u64(24),
  length: u32(32),
  cookie: u32(36),
});

export const iommu_hwpt_page_response = defineStruct('iommu_hwpt_page_response', 8, {
  cookie: u32(0),
  code: u32(4),
});

export const iommu_fault_alloc = defineStruct('iommu_fault_alloc', 16, {
  size: u32(0),
  flags: u32(4),
  out_fault_id: u32(8),
  out_fault_fd: u32(12),
}, { last: 'out_fault_fd' });

export const iommu_viommu_tegra241_cmdqv = defineStruct('iommu_viommu_tegra241_cmdqv', 16, {
  out_vintf_mmap_offset: u64(0),
  out_vintf_mmap_length: u64(8),
});

export const iommu_viommu_alloc = defineStruct('iommu_viommu_alloc', 40, {
  size: u32(0),
  flags: u32(4),
  type: u32(8),
  dev_id: u32(12),
  hwpt_id: u32(16),
  out_viommu_id: u32(20),
  data_len: u32(24),
  __reserved: u32(28),
  data_uptr: u64(32),
}, { last: 'out_viommu_id' });

export const iommu_vdevice_alloc = defineStruct('iommu_vdevice_alloc', 24, {
  size: u32(0),
  viommu_id: u32(4),
  dev_id: u32(8),
  out_vdevice_id: u32(12),
  virt_id: u64(16),
}, { last: 'virt_id' });

export const iommu_ioas_change_process = defineStruct('iommu_ioas_change_process', 8, {
  size: u32(0),
  __reserved: u32(4),
}, { last: '__reserved' });

export const iommufd_vevent_header = defineStruct('iommufd_vevent_header', 8, {
  flags: u32(0),
  sequence: u32(4),
});

export const iommu_vevent_arm_smmuv3 = defineStruct('iommu_vevent_arm_smmuv3', 32, {
  evt: u64s(0, 4),
});

export const iommu_vevent_tegra241_cmdqv = defineStruct('iommu_vevent_tegra241_cmdqv', 16, {
  lvcmdq_err_map: u64s(0, 2),
});

export const iommu_veventq_alloc = defineStruct('iommu_veventq_alloc', 32, {
  size: u32(0),
  flags: u32(4),
  viommu_id: u32(8),
  type: u32(12),
  veventq_depth: u32(16),
  out_veventq_id: u32(20),
  out_veventq_fd: u32(24),
  __reserved: u32(28),
}, { last: 'out_veventq_fd' });

export const iommu_hw_queue_alloc = defineStruct('iommu_hw_queue_alloc', 40, {
  size: u32(0),
  flags: u32(4),
  viommu_id: u32(8),
  type: u32(12),
  index: u32(16),
  out_hw_queue_id: u32(20),
  nesting_parent_iova: u64(24),
  length: u64(32),
}, { last: 'length' });
