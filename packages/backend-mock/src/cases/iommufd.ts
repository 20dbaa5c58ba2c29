// TEST_F(iommufd, ...) and TEST_F(change_process, ...) of iommufd.c, including the VFIO
// compatibility ioctls the bare iommufd fixture checks.
import {
  IO,
  IOMMUFD_CMD_BASE,
  IOMMUFD_TYPE,
  IOMMU_DESTROY,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMU_VIOMMU_ALLOC,
  MOCK_APERTURE_START,
  iommu_destroy,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_hwpt_invalidate,
  iommu_ioas_alloc,
  iommu_ioas_allow_iovas,
  iommu_ioas_change_process,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_unmap,
  iommu_option,
  iommu_vdevice_alloc,
  iommu_vfio_ioas,
  iommu_viommu_alloc,
  type StructCodec,
} from '@viommu/uapi';
import { IOPT_PAGES_ACCOUNT_MM, change_process, iommufd } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { PAGE_SIZE, assertEq, enc, errnoOf, exitChild, expectErrno, forkSelf, getVmLocked, getVmPinned, num, type Self } from '../utils.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
} from '@viommu/uapi';

/**
 * TEST_LENGTH: too short is EINVAL, longer with a non-zero tail is E2BIG, and a zero tail behaves
 * exactly like the exact size (same success, or same errno).
 */
function testLength(self: Self, codec: StructCodec, request: number): void {
  const cmd = new Uint8Array(codec.size + 1);
  const dv = new DataView(cmd.buffer);
  cmd[codec.size] = 0xff;
  dv.setUint32(0, codec.minSize - 1, true);
  expectErrno('EINVAL', () => self.ioctl(request, cmd), `${codec.name} size min-1`);
  dv.setUint32(0, codec.size + 1, true);
  expectErrno('E2BIG', () => self.ioctl(request, cmd), `${codec.name} size+1 with non-zero tail`);
  dv.setUint32(0, codec.size, true);
  const first = errnoOf(() => self.ioctl(request, cmd));
  dv.setUint32(0, codec.size + 1, true);
  cmd[codec.size] = 0;
  if (first) expectErrno(first, () => self.ioctl(request, cmd), `${codec.name} size+1 with zero tail`);
  else self.ioctl(request, cmd);
}

export const iommufdCases: Scenario[] = [
  ...testF(iommufd, 'simple_close', () => {}),

  ...testF(iommufd, 'cmd_fail', (self) => {
    const cmd = enc(iommu_destroy, { id: 0 });
    // object id is invalid
    self.errDestroy('ENOENT', 0);
    // Bad pointer
    expectErrno('EFAULT', () => self.ioctl(IOMMU_DESTROY, null), 'IOMMU_DESTROY(NULL)');
    // Unknown ioctl
    expectErrno('ENOTTY', () => self.ioctl(IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1), cmd), 'unknown ioctl');
  }),

  ...testF(iommufd, 'cmd_length', (self) => {
    testLength(self, iommu_destroy, IOMMU_DESTROY);
    testLength(self, iommu_hw_info, IOMMU_GET_HW_INFO);
    testLength(self, iommu_hwpt_alloc, IOMMU_HWPT_ALLOC);
    testLength(self, iommu_hwpt_invalidate, IOMMU_HWPT_INVALIDATE);
    testLength(self, iommu_ioas_alloc, IOMMU_IOAS_ALLOC);
    testLength(self, iommu_ioas_iova_ranges, IOMMU_IOAS_IOVA_RANGES);
    testLength(self, iommu_ioas_allow_iovas, IOMMU_IOAS_ALLOW_IOVAS);
    testLength(self, iommu_ioas_map, IOMMU_IOAS_MAP);
    testLength(self, iommu_ioas_copy, IOMMU_IOAS_COPY);
    testLength(self, iommu_ioas_unmap, IOMMU_IOAS_UNMAP);
    testLength(self, iommu_option, IOMMU_OPTION);
    testLength(self, iommu_vfio_ioas, IOMMU_VFIO_IOAS);
    testLength(self, iommu_ioas_map_file, IOMMU_IOAS_MAP_FILE);
    testLength(self, iommu_viommu_alloc, IOMMU_VIOMMU_ALLOC);
    testLength(self, iommu_vdevice_alloc, IOMMU_VDEVICE_ALLOC);
    testLength(self, iommu_ioas_change_process, IOMMU_IOAS_CHANGE_PROCESS);
  }),

  ...testF(iommufd, 'cmd_ex_fail', (self) => {
    // struct { struct iommu_destroy cmd; __u64 future; }
    const cmd = new Uint8Array(16);
    const dv = new DataView(cmd.buffer);
    dv.setUint32(0, 16, true);
    // object id is invalid and command is longer
    expectErrno('ENOENT', () => self.ioctl(IOMMU_DESTROY, cmd), 'longer command');
    // future area is non-zero
    dv.setUint32(8, 1, true);
    expectErrno('E2BIG', () => self.ioctl(IOMMU_DESTROY, cmd), 'non-zero future');
    // Original command "works"
    dv.setUint32(0, 8, true);
    expectErrno('ENOENT', () => self.ioctl(IOMMU_DESTROY, cmd), 'original size');
    // Short command fails
    dv.setUint32(0, 7, true);
    expectErrno('EINVAL', () => self.ioctl(IOMMU_DESTROY, cmd), 'short command');
  }),

  ...testF(iommufd, 'global_options', (self) => {
    const cmd = enc(iommu_option, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET, val64: 1 });
    const set = (field: string, v: number) => iommu_option.set(cmd, field as never, (field === 'val64' ? BigInt(v) : v) as never);
    const val = () => num(iommu_option, cmd, 'val64');
    self.ioctl(IOMMU_OPTION, cmd);
    assertEq(0, val(), 'RLIMIT_MODE');
    // This requires root
    set('op', IOMMU_OPTION_OP_SET);
    set('val64', 1);
    self.ioctl(IOMMU_OPTION, cmd);
    set('val64', 2);
    expectErrno('EINVAL', () => self.ioctl(IOMMU_OPTION, cmd), 'RLIMIT_MODE=2');
    set('op', IOMMU_OPTION_OP_GET);
    self.ioctl(IOMMU_OPTION, cmd);
    assertEq(1, val(), 'RLIMIT_MODE');
    set('op', IOMMU_OPTION_OP_SET);
    set('val64', 0);
    self.ioctl(IOMMU_OPTION, cmd);
    set('op', IOMMU_OPTION_OP_GET);
    set('option_id', IOMMU_OPTION_HUGE_PAGES);
    expectErrno('ENOENT', () => self.ioctl(IOMMU_OPTION, cmd), 'HUGE_PAGES get on object 0');
    set('op', IOMMU_OPTION_OP_SET);
    expectErrno('ENOENT', () => self.ioctl(IOMMU_OPTION, cmd), 'HUGE_PAGES set on object 0');
  }),

  // ---- VFIO compatibility ioctls on a bare iommufd ----

  ...testF(iommufd, 'simple_ioctls', (self) => {
    assertEq(VFIO_API_VERSION, self.ioctl(VFIO_GET_API_VERSION, null), 'VFIO_GET_API_VERSION');
    assertEq(1, self.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 'VFIO_CHECK_EXTENSION(TYPE1v2)');
  }),

  ...testF(iommufd, 'unmap_cmd', (self) => {
    const cmd = enc(vfio_iommu_type1_dma_unmap, { argsz: 1, iova: MOCK_APERTURE_START, size: PAGE_SIZE });
    expectErrno('EINVAL', () => self.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd), 'argsz 1');
    vfio_iommu_type1_dma_unmap.set(cmd, 'argsz', vfio_iommu_type1_dma_unmap.size);
    vfio_iommu_type1_dma_unmap.set(cmd, 'flags', 0x8000_0000);
    expectErrno('EINVAL', () => self.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd), 'bad flags');
    vfio_iommu_type1_dma_unmap.set(cmd, 'flags', 0);
    expectErrno('ENODEV', () => self.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd), 'no compat IOAS');
  }),

  ...testF(iommufd, 'map_cmd', (self) => {
    const cmd = enc(vfio_iommu_type1_dma_map, { argsz: 1, iova: MOCK_APERTURE_START, size: PAGE_SIZE, vaddr: self.buffer.addr });
    expectErrno('EINVAL', () => self.ioctl(VFIO_IOMMU_MAP_DMA, cmd), 'argsz 1');
    vfio_iommu_type1_dma_map.set(cmd, 'argsz', vfio_iommu_type1_dma_map.size);
    vfio_iommu_type1_dma_map.set(cmd, 'flags', 0x8000_0000);
    expectErrno('EINVAL', () => self.ioctl(VFIO_IOMMU_MAP_DMA, cmd), 'bad flags');
    // Requires a domain to be attached
    vfio_iommu_type1_dma_map.set(cmd, 'flags', VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    expectErrno('ENODEV', () => self.ioctl(VFIO_IOMMU_MAP_DMA, cmd), 'no compat IOAS');
  }),

  ...testF(iommufd, 'info_cmd', (self) => {
    const cmd = enc(vfio_iommu_type1_info, { argsz: 1 });
    expectErrno('EINVAL', () => self.ioctl(VFIO_IOMMU_GET_INFO, cmd), 'argsz 1');
    vfio_iommu_type1_info.set(cmd, 'argsz', vfio_iommu_type1_info.size);
    expectErrno('ENODEV', () => self.ioctl(VFIO_IOMMU_GET_INFO, cmd), 'no compat IOAS');
  }),

  ...testF(iommufd, 'set_iommu_cmd', (self) => {
    // Requires a domain to be attached
    expectErrno('ENODEV', () => self.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 'SET_IOMMU(TYPE1v2)');
    expectErrno('ENODEV', () => self.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 'SET_IOMMU(TYPE1)');
  }),

  ...testF(iommufd, 'vfio_ioas', (self) => {
    const cmd = enc(iommu_vfio_ioas, { op: IOMMU_VFIO_IOAS_GET });
    // ENODEV if there is no compat ioas
    expectErrno('ENODEV', () => self.ioctl(IOMMU_VFIO_IOAS, cmd), 'GET without compat IOAS');
    // Invalid id for set
    iommu_vfio_ioas.set(cmd, 'op', IOMMU_VFIO_IOAS_SET);
    expectErrno('ENOENT', () => self.ioctl(IOMMU_VFIO_IOAS, cmd), 'SET id 0');
    // Valid id for set
    const ioasId = self.testIoctlIoasAlloc();
    iommu_vfio_ioas.set(cmd, 'ioas_id', ioasId);
    self.ioctl(IOMMU_VFIO_IOAS, cmd);
    // Same id comes back from get
    iommu_vfio_ioas.set(cmd, 'op', IOMMU_VFIO_IOAS_GET);
    self.ioctl(IOMMU_VFIO_IOAS, cmd);
    assertEq(ioasId, iommu_vfio_ioas.get(cmd, 'ioas_id'), 'GET ioas_id');
    // Clear works
    iommu_vfio_ioas.set(cmd, 'op', IOMMU_VFIO_IOAS_CLEAR);
    self.ioctl(IOMMU_VFIO_IOAS, cmd);
    iommu_vfio_ioas.set(cmd, 'op', IOMMU_VFIO_IOAS_GET);
    expectErrno('ENODEV', () => self.ioctl(IOMMU_VFIO_IOAS, cmd), 'GET after CLEAR');
  }),
];

export const changeProcessCases: Scenario[] = [
  ...testF(change_process, 'basic', (self, variant) => {
    const cmd = enc(iommu_ioas_change_process, {});
    // Expect failure if non-file maps exist
    const iova = self.testIoctlIoasMap(self.buffer, PAGE_SIZE);
    expectErrno('EINVAL', () => self.ioctl(IOMMU_IOAS_CHANGE_PROCESS, cmd), 'CHANGE_PROCESS with a non-file map');
    self.testIoctlIoasUnmap(iova, PAGE_SIZE);
    // Change process works in current process.
    self.testIoctlIoasMapFile(self.mfd, 0, PAGE_SIZE);
    self.ioctl(IOMMU_IOAS_CHANGE_PROCESS, cmd);
    // Change process works in another process
    const parent = self.process;
    const child = forkSelf(self);
    try {
      const nlock = PAGE_SIZE / 1024;
      const perMm = variant.accounting === IOPT_PAGES_ACCOUNT_MM;
      // Parent accounts for locked memory before
      assertEq(nlock, getVmPinned(parent), 'parent VmPin before');
      if (perMm) assertEq(nlock, getVmLocked(parent), 'parent VmLck before');
      assertEq(0, getVmPinned(child.process), 'child VmPin before');
      assertEq(0, getVmLocked(child.process), 'child VmLck before');

      child.ioctl(IOMMU_IOAS_CHANGE_PROCESS, cmd);

      // Child accounts for locked memory after
      assertEq(0, getVmPinned(parent), 'parent VmPin after');
      assertEq(0, getVmLocked(parent), 'parent VmLck after');
      assertEq(nlock, getVmPinned(child.process), 'child VmPin after');
      if (perMm) assertEq(nlock, getVmLocked(child.process), 'child VmLck after');
    } finally {
      exitChild(child); // exit(0); the parent's waitpid
    }
  }),
];
