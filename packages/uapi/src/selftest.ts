// The selftest interface of drivers/iommu/iommufd/iommufd_test.h (Linux 7.2.13): IOMMU_TEST_CMD and its data.
// Layouts are Linux 7.2.13's; src/layouts.test.ts checks every size and offset against the fact table.
import { defineStruct, u32, u64, type FieldSpec } from './codec.js';

export const iommu_test_hw_info = defineStruct('iommu_test_hw_info', 8, {
  flags: u32(0),
  test_reg: u32(4),
});

export const iommu_hwpt_selftest = defineStruct('iommu_hwpt_selftest', 8, {
  iotlb: u32(0),
  pagetable_type: u32(4),
});

export const iommu_hwpt_invalidate_selftest = defineStruct('iommu_hwpt_invalidate_selftest', 8, {
  flags: u32(0),
  iotlb_id: u32(4),
});

export const iommu_viommu_selftest = defineStruct('iommu_viommu_selftest', 24, {
  in_data: u32(0),
  out_data: u32(4),
  out_mmap_offset: u64(8),
  out_mmap_length: u64(16),
});

export const iommu_viommu_invalidate_selftest = defineStruct('iommu_viommu_invalidate_selftest', 12, {
  flags: u32(0),
  vdev_id: u32(4),
  cache_id: u32(8),
});

export const iommu_viommu_event_selftest = defineStruct('iommu_viommu_event_selftest', 4, {
  virt_id: u32(0),
});

// struct iommu_test_cmd: a 16-byte header, a union of per-op members (offsets below are from the
// start of the command, as layouts.json gives them), and `last` at 64 marking the minimum size.
const testCmdHeader = { size: u32(0), op: u32(4), id: u32(8), __reserved: u32(12) } as const;

export const iommu_test_cmd = defineStruct('iommu_test_cmd', 72, { ...testCmdHeader, last: u32(64) }, { last: 'last' });

/** One member of the test command's union, as a codec of the whole 72-byte command. */
function testCmd<F extends Record<string, FieldSpec>>(member: string, fields: F) {
  return defineStruct(`iommu_test_cmd.${member}`, 72, { ...testCmdHeader, ...fields, last: u32(64) }, { last: 'last' });
}

export const iommu_test_cmd_add_reserved = testCmd('add_reserved', {
  start: u64(16),
  length: u64(24),
});

export const iommu_test_cmd_mock_domain = testCmd('mock_domain', {
  out_stdev_id: u32(16),
  out_hwpt_id: u32(20),
  out_idev_id: u32(24),
});

export const iommu_test_cmd_mock_domain_flags = testCmd('mock_domain_flags', {
  out_stdev_id: u32(16),
  out_hwpt_id: u32(20),
  out_idev_id: u32(24),
  dev_flags: u32(28),
});

export const iommu_test_cmd_mock_domain_replace = testCmd('mock_domain_replace', {
  pt_id: u32(16),
});

export const iommu_test_cmd_check_map = testCmd('check_map', {
  iova: u64(16),
  length: u64(24),
  uptr: u64(32),
});

export const iommu_test_cmd_check_refs = testCmd('check_refs', {
  length: u64(16),
  uptr: u64(24),
  refs: u32(32),
});

export const iommu_test_cmd_create_access = testCmd('create_access', {
  out_access_fd: u32(16),
  flags: u32(20),
});

export const iommu_test_cmd_destroy_access_pages = testCmd('destroy_access_pages', {
  access_pages_id: u32(16),
});

export const iommu_test_cmd_access_pages = testCmd('access_pages', {
  flags: u32(16),
  out_access_pages_id: u32(20),
  iova: u64(24),
  length: u64(32),
  uptr: u64(40),
});

export const iommu_test_cmd_access_rw = testCmd('access_rw', {
  iova: u64(16),
  length: u64(24),
  uptr: u64(32),
  flags: u32(40),
});

export const iommu_test_cmd_memory_limit = testCmd('memory_limit', {
  limit: u32(16),
});

export const iommu_test_cmd_access_replace_ioas = testCmd('access_replace_ioas', {
  ioas_id: u32(16),
});

export const iommu_test_cmd_dirty = testCmd('dirty', {
  flags: u32(16),
  iova: u64(24),
  length: u64(32),
  page_size: u64(40),
  uptr: u64(48),
  out_nr_dirty: u64(56),
});

export const iommu_test_cmd_check_iotlb = testCmd('check_iotlb', {
  id: u32(16),
  iotlb: u32(20),
});

export const iommu_test_cmd_trigger_iopf = testCmd('trigger_iopf', {
  dev_id: u32(16),
  pasid: u32(20),
  grpid: u32(24),
  perm: u32(28),
  addr: u64(32),
});

export const iommu_test_cmd_check_dev_cache = testCmd('check_dev_cache', {
  id: u32(16),
  cache: u32(20),
});

export const iommu_test_cmd_trigger_vevent = testCmd('trigger_vevent', {
  dev_id: u32(16),
});

export const iommu_test_cmd_pasid_attach = testCmd('pasid_attach', {
  pasid: u32(16),
  pt_id: u32(20),
});

export const iommu_test_cmd_pasid_replace = testCmd('pasid_replace', {
  pasid: u32(16),
  pt_id: u32(20),
});

export const iommu_test_cmd_pasid_detach = testCmd('pasid_detach', {
  pasid: u32(16),
});

export const iommu_test_cmd_pasid_check = testCmd('pasid_check', {
  pasid: u32(16),
  hwpt_id: u32(20),
});

export const iommu_test_cmd_dmabuf_get = testCmd('dmabuf_get', {
  length: u32(16),
  open_flags: u32(20),
});

export const iommu_test_cmd_dmabuf_revoke = testCmd('dmabuf_revoke', {
  dmabuf_fd: u32(16),
  revoked: u32(20),
});
