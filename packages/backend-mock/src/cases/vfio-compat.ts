// TEST_F(vfio_compat_mock_domain, ...) of iommufd.c: the VFIO type1 container ioctls on an iommufd
// whose compat IOAS holds a mock domain.
import { IOMMU_OPTION, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, MOCK_APERTURE_LAST, MOCK_APERTURE_START, iommu_option } from '@viommu/uapi';
import { vfio_compat_mock_domain } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { Rng } from '../rng.js';
import { BUFFER_SIZE, HUGEPAGE_SIZE, PAGE_SIZE, assertEq, assertNe, assertTrue, enc, expectErrno, type Self } from '../utils.js';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL_SIZE,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1_IOMMU,
  vfio_info_cap_header,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iova_range,
} from '@viommu/uapi';

/** ioctl_check_buf: runs the ioctl on `buffer` and checks nothing past its argsz was written. */
function ioctlCheckBuf(self: Self, request: number): void {
  const b = self.buffer.bytes;
  const len = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  b.fill(0xaa, len, BUFFER_SIZE);
  self.ioctl(request, b.subarray(0, BUFFER_SIZE));
  for (let i = len; i < BUFFER_SIZE; i++) if (b[i] !== 0xaa) assertEq(0xaa, b[i], `byte ${i} past argsz ${len}`);
}

function checkVfioInfoCapChain(self: Self): void {
  const b = self.buffer.bytes;
  const argsz = vfio_iommu_type1_info.get(b, 'argsz');
  const capOffset = vfio_iommu_type1_info.get(b, 'cap_offset');
  assertTrue(argsz >= capOffset + vfio_info_cap_header.size, 'argsz covers the first cap header');
  let cap = capOffset;
  for (;;) {
    const next = vfio_info_cap_header.get(b, 'next', cap);
    const capSize = next ? next - cap : argsz - cap;
    const id = vfio_info_cap_header.get(b, 'id', cap);
    if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      assertEq(1, vfio_info_cap_header.get(b, 'version', cap), 'IOVA_RANGE cap version');
      assertEq(1, vfio_iommu_type1_info_cap_iova_range.get(b, 'nr_iovas', cap), 'nr_iovas');
      const r = cap + vfio_iommu_type1_info_cap_iova_range.size;
      assertEq(BigInt(MOCK_APERTURE_START), vfio_iova_range.get(b, 'start', r), 'iova_ranges[0].start');
      assertEq(BigInt(MOCK_APERTURE_LAST), vfio_iova_range.get(b, 'end', r), 'iova_ranges[0].end');
    } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      assertEq(1, vfio_info_cap_header.get(b, 'version', cap), 'DMA_AVAIL cap version');
      assertEq(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL_SIZE, capSize, 'DMA_AVAIL cap size');
    } else {
      assertEq('a known cap id', `cap id ${id}`, 'cap chain');
    }
    if (!next) break;
    assertTrue(argsz >= next + vfio_info_cap_header.size, 'argsz covers the next cap header');
    assertTrue(next >= cap, 'caps go forward');
    cap = next;
  }
}

function shuffle(array: number[], rng: Rng): void {
  for (let i = 0; i !== array.length; i++) {
    const tmp = array[i]!;
    const other = rng.next() % (array.length - i);
    array[i] = array[other]!;
    array[other] = tmp;
  }
}

export const vfioCompatCases: Scenario[] = [
  ...testF(vfio_compat_mock_domain, 'simple_close', () => {}),

  ...testF(vfio_compat_mock_domain, 'option_huge_pages', (self, variant) => {
    const cmd = enc(iommu_option, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET, val64: 3, object_id: self.ioas_id });
    self.ioctl(IOMMU_OPTION, cmd);
    assertEq(variant.version === VFIO_TYPE1_IOMMU ? 0n : 1n, iommu_option.get(cmd, 'val64'), 'HUGE_PAGES');
  }),

  ...testF(vfio_compat_mock_domain, 'get_info', (self) => {
    const b = self.buffer.bytes;
    const info = (argsz: number) => vfio_iommu_type1_info.encode({ argsz }, b);
    const flags = () => vfio_iommu_type1_info.get(b, 'flags');
    // Pre-cap ABI
    info(16); // offsetof(struct vfio_iommu_type1_info, cap_offset)
    ioctlCheckBuf(self, VFIO_IOMMU_GET_INFO);
    assertNe(0n, vfio_iommu_type1_info.get(b, 'iova_pgsizes'), 'iova_pgsizes');
    assertEq(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, flags(), 'flags');
    // Read the cap chain size
    info(vfio_iommu_type1_info.size);
    ioctlCheckBuf(self, VFIO_IOMMU_GET_INFO);
    assertNe(0n, vfio_iommu_type1_info.get(b, 'iova_pgsizes'), 'iova_pgsizes');
    assertEq(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, flags(), 'flags');
    assertEq(0, vfio_iommu_type1_info.get(b, 'cap_offset'), 'cap_offset');
    const caplen = vfio_iommu_type1_info.get(b, 'argsz');
    assertTrue(vfio_iommu_type1_info.size < caplen, 'the kernel asks for room for caps');
    // Read the caps, kernel should never create a corrupted caps
    for (let i = vfio_iommu_type1_info.size; i < caplen; i++) {
      info(i);
      ioctlCheckBuf(self, VFIO_IOMMU_GET_INFO);
      assertEq(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, flags(), 'flags');
      if (!vfio_iommu_type1_info.get(b, 'cap_offset')) continue;
      checkVfioInfoCapChain(self);
    }
  }),

  ...testF(vfio_compat_mock_domain, 'map', (self) => {
    const rng = new Rng(3);
    const map = enc(vfio_iommu_type1_dma_map, {
      argsz: vfio_iommu_type1_dma_map.size,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: self.buffer.addr,
      size: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
    });
    const unmap = enc(vfio_iommu_type1_dma_unmap, { argsz: vfio_iommu_type1_dma_unmap.size, size: BUFFER_SIZE, iova: MOCK_APERTURE_START });
    // Simple map/unmap
    self.ioctl(VFIO_IOMMU_MAP_DMA, map);
    self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap);
    assertEq(BigInt(BUFFER_SIZE), vfio_iommu_type1_dma_unmap.get(unmap, 'size'), 'unmapped size');
    // Unmap of empty is success
    self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap);
    // UNMAP_FLAG_ALL requires 0 iova/size
    self.ioctl(VFIO_IOMMU_MAP_DMA, map);
    vfio_iommu_type1_dma_unmap.set(unmap, 'flags', VFIO_DMA_UNMAP_FLAG_ALL);
    expectErrno('EINVAL', () => self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap), 'UNMAP_FLAG_ALL with an iova');
    vfio_iommu_type1_dma_unmap.set(unmap, 'iova', 0n);
    vfio_iommu_type1_dma_unmap.set(unmap, 'size', 0n);
    self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap);
    assertEq(BigInt(BUFFER_SIZE), vfio_iommu_type1_dma_unmap.get(unmap, 'size'), 'unmapped size');
    // Small pages
    const pagesIova: number[] = [];
    for (let i = 0; i !== BUFFER_SIZE / PAGE_SIZE; i++) {
      pagesIova[i] = MOCK_APERTURE_START + i * PAGE_SIZE;
      vfio_iommu_type1_dma_map.set(map, 'iova', BigInt(pagesIova[i]!));
      vfio_iommu_type1_dma_map.set(map, 'vaddr', self.buffer.addr + BigInt(i * PAGE_SIZE));
      vfio_iommu_type1_dma_map.set(map, 'size', BigInt(PAGE_SIZE));
      self.ioctl(VFIO_IOMMU_MAP_DMA, map);
    }
    shuffle(pagesIova, rng);
    vfio_iommu_type1_dma_unmap.set(unmap, 'flags', 0);
    vfio_iommu_type1_dma_unmap.set(unmap, 'size', BigInt(PAGE_SIZE));
    for (const iova of pagesIova) {
      vfio_iommu_type1_dma_unmap.set(unmap, 'iova', BigInt(iova));
      vfio_iommu_type1_dma_unmap.set(unmap, 'size', BigInt(PAGE_SIZE));
      self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap);
    }
  }),

  ...testF(vfio_compat_mock_domain, 'huge_map', (self, variant) => {
    const rng = new Rng(4);
    const bufSize = HUGEPAGE_SIZE * 2;
    // Test huge pages and splitting
    const buf = self.mmapAligned(bufSize, HUGEPAGE_SIZE);
    const map = enc(vfio_iommu_type1_dma_map, {
      argsz: vfio_iommu_type1_dma_map.size,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      size: bufSize,
      iova: MOCK_APERTURE_START,
      vaddr: buf.addr,
    });
    self.ioctl(VFIO_IOMMU_MAP_DMA, map);
    const piece = bufSize / 16;
    const pagesIova = Array.from({ length: 16 }, (_, i) => MOCK_APERTURE_START + i * piece);
    shuffle(pagesIova, rng);
    // type1 mode can cut up larger mappings, type1v2 always fails
    for (const iova of pagesIova) {
      const unmap = enc(vfio_iommu_type1_dma_unmap, { argsz: vfio_iommu_type1_dma_unmap.size, iova, size: piece });
      if (variant.version === VFIO_TYPE1_IOMMU) self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap);
      else expectErrno('ENOENT', () => self.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap), `type1v2 partial unmap at 0x${iova.toString(16)}`);
    }
  }),
];
