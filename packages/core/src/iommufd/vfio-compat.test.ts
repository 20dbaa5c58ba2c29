import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU } from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { call, errnoOf } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';

const PAGE = 4096n;
const BASE = BigInt(U.MOCK_APERTURE_START);

function compat(type: number) {
  const host = createSimHost({ iommus: [simpleDriver()] });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
  call(proc, fd, U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, { op: U.IOMMU_VFIO_IOAS_SET, ioas_id: ioas });
  proc.ioctl(fd, VFIO_SET_IOMMU, type);
  const mapDma = (iova: bigint, size: bigint) => {
    const buf = proc.memory.alloc(Number(size));
    const map = new Uint8Array(32);
    const dv = new DataView(map.buffer);
    dv.setUint32(0, 32, true);
    dv.setUint32(4, 3, true);
    dv.setBigUint64(8, buf.addr, true);
    dv.setBigUint64(16, iova, true);
    dv.setBigUint64(24, size, true);
    proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, map);
  };
  // Returns the errno and the size written back.
  const unmapDma = (iova: bigint, size: bigint): [string, bigint] => {
    const unmap = new Uint8Array(24);
    const dv = new DataView(unmap.buffer);
    dv.setUint32(0, 24, true);
    dv.setBigUint64(8, iova, true);
    dv.setBigUint64(16, size, true);
    const e = errnoOf(() => proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, unmap));
    return [e, dv.getBigUint64(16, true)];
  };
  return { mapDma, unmapDma };
}

describe('VFIO_IOMMU_UNMAP_DMA', () => {
  it('type1 (v1) cuts a larger mapping at both ends of the range (huge_map)', () => {
    const { mapDma, unmapDma } = compat(VFIO_TYPE1_IOMMU);
    mapDma(BASE, 16n * PAGE);
    expect(unmapDma(BASE + 5n * PAGE, PAGE)).toEqual(['OK', PAGE]);
    // The neighbours survived as their own areas; the hole is gone.
    expect(unmapDma(BASE + 5n * PAGE, PAGE)).toEqual(['OK', 0n]);
    expect(unmapDma(BASE, 2n * PAGE)).toEqual(['OK', 2n * PAGE]);
    expect(unmapDma(BASE + 15n * PAGE, PAGE)).toEqual(['OK', PAGE]);
    expect(unmapDma(BASE, 16n * PAGE)).toEqual(['OK', 12n * PAGE]);
  });

  it('type1 (v1) refuses a cut that is not page aligned with EINVAL and writes nothing back', () => {
    const { mapDma, unmapDma } = compat(VFIO_TYPE1_IOMMU);
    mapDma(BASE, 4n * PAGE);
    expect(unmapDma(BASE + PAGE, 100n)).toEqual(['EINVAL', 100n]);
    expect(unmapDma(BASE, 4n * PAGE)).toEqual(['OK', 4n * PAGE]);
  });

  it('type1v2 never cuts: ENOENT, and what was removed before the failure is reported', () => {
    const { mapDma, unmapDma } = compat(VFIO_TYPE1v2_IOMMU);
    mapDma(BASE, 16n * PAGE);
    expect(unmapDma(BASE + 5n * PAGE, PAGE)).toEqual(['ENOENT', 0n]);
    mapDma(BASE + 16n * PAGE, 2n * PAGE);
    expect(unmapDma(BASE, 17n * PAGE)).toEqual(['ENOENT', 16n * PAGE]);
    expect(unmapDma(BASE, 0n)).toEqual(['EINVAL', 0n]);
  });
});
