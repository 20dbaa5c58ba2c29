// IOMMU_TEST_CMD through the process contract on a simulated host with the mock driver.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { mockIommu } from './mock-driver.js';
import './test-cmd.js';

function open() {
  const host = createSimHost({ iommus: [() => mockIommu()] });
  const p = host.spawn();
  const fd = p.open('/dev/iommu', U.O_RDWR);
  const ioctl = (req: number, arg: Uint8Array) => p.ioctl(fd, req, arg);
  const errno = (f: () => unknown) => {
    try {
      f();
      return 'success';
    } catch (e) {
      return (e as { code?: string }).code;
    }
  };
  const ioasAlloc = () => {
    const c = U.iommu_ioas_alloc.encode({});
    ioctl(U.IOMMU_IOAS_ALLOC, c);
    return U.iommu_ioas_alloc.get(c, 'out_ioas_id');
  };
  const mockDomain = (ioasId: number, devFlags?: number) => {
    const c = devFlags === undefined
      ? U.iommu_test_cmd_mock_domain.encode({ op: U.IOMMU_TEST_OP_MOCK_DOMAIN, id: ioasId })
      : U.iommu_test_cmd_mock_domain_flags.encode({ op: U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, id: ioasId, dev_flags: devFlags });
    ioctl(U.IOMMU_TEST_CMD, c);
    return U.iommu_test_cmd_mock_domain.decode(c);
  };
  return { host, p, fd, ioctl, errno, ioasAlloc, mockDomain };
}

describe('IOMMU_TEST_CMD', () => {
  it('MOCK_DOMAIN creates a selftest object, a bound mock device and an auto HWPT, in that ID order', () => {
    const t = open();
    const ioas = t.ioasAlloc();
    const d = t.mockDomain(ioas);
    expect([d.out_stdev_id, d.out_idev_id, d.out_hwpt_id]).toEqual([ioas + 1, ioas + 2, ioas + 3]);
    expect(t.host.devices.has('iommufd_mock0')).toBe(true);
    // the IOAS is busy while the device's HWPT uses it
    expect(t.errno(() => t.ioctl(U.IOMMU_DESTROY, U.iommu_destroy.encode({ id: ioas })))).toBe('EBUSY');
    t.ioctl(U.IOMMU_DESTROY, U.iommu_destroy.encode({ id: d.out_stdev_id }));
    expect(t.host.devices.has('iommufd_mock0')).toBe(false);
    // the auto HWPT went with its last device
    expect(t.errno(() => t.ioctl(U.IOMMU_DESTROY, U.iommu_destroy.encode({ id: d.out_hwpt_id })))).toBe('ENOENT');
    t.ioctl(U.IOMMU_DESTROY, U.iommu_destroy.encode({ id: ioas }));
  });

  it('rejects unknown device flags with EINVAL and leaves nothing behind', () => {
    const t = open();
    const ioas = t.ioasAlloc();
    expect(t.errno(() => t.mockDomain(ioas, 1 << 1))).toBe('EINVAL');
    expect(t.host.devices.size).toBe(0);
    expect(t.mockDomain(ioas, U.MOCK_FLAGS_DEVICE_PASID).out_stdev_id).toBe(ioas + 1);
  });

  it('MD_CHECK_MAP and MD_CHECK_REFS see the user pages behind a mapped IOVA, and catch a wrong one', () => {
    const t = open();
    const ioas = t.ioasAlloc();
    const d = t.mockDomain(ioas);
    const buf = t.p.memory.alloc(4 * U.PAGE_SIZE);
    const other = t.p.memory.alloc(U.PAGE_SIZE);
    const map = U.iommu_ioas_map.encode({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioas, user_va: buf.addr, length: 16384n, iova: BigInt(U.MOCK_APERTURE_START) });
    t.ioctl(U.IOMMU_IOAS_MAP, map);
    const check = (uptr: bigint, length: bigint) =>
      t.errno(() => t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_check_map.encode({ op: U.IOMMU_TEST_OP_MD_CHECK_MAP, id: d.out_hwpt_id, iova: BigInt(U.MOCK_APERTURE_START), length, uptr })));
    expect(check(buf.addr, 16384n)).toBe('success');
    expect(check(other.addr, 4096n)).toBe('EINVAL');
    expect(check(buf.addr + 1n, 2048n)).toBe('EINVAL');
    const refs = (uptr: bigint, n: number) =>
      t.errno(() => t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_check_refs.encode({ op: U.IOMMU_TEST_OP_MD_CHECK_REFS, length: 16384n, uptr, refs: n })));
    expect(refs(buf.addr, 1)).toBe('success');
    expect(refs(buf.addr, 0)).toBe('EIO');
    t.ioctl(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap.encode({ ioas_id: ioas, iova: BigInt(U.MOCK_APERTURE_START), length: 16384n }));
    expect(refs(buf.addr, 0)).toBe('success');
  });

  it('checks its arguments as the kernel does', () => {
    const t = open();
    const ioas = t.ioasAlloc();
    const cmd = (c: Uint8Array) => t.errno(() => t.ioctl(U.IOMMU_TEST_CMD, c));
    expect(cmd(U.iommu_test_cmd_add_reserved.encode({ op: U.IOMMU_TEST_OP_ADD_RESERVED, id: ioas, start: 4096n, length: 0n }))).toBe('EINVAL');
    expect(cmd(U.iommu_test_cmd_add_reserved.encode({ op: U.IOMMU_TEST_OP_ADD_RESERVED, id: ioas, start: 2n, length: 0xffff_ffff_ffff_ffffn }))).toBe('EOVERFLOW');
    expect(cmd(U.iommu_test_cmd_add_reserved.encode({ op: U.IOMMU_TEST_OP_ADD_RESERVED, id: ioas + 7, start: 0n, length: 1n }))).toBe('ENOENT');
    expect(cmd(U.iommu_test_cmd_memory_limit.encode({ op: U.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, limit: 11 }))).toBe('EINVAL');
    expect(cmd(U.iommu_test_cmd_memory_limit.encode({ op: U.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, limit: 12 }))).toBe('success');
    expect(cmd(U.iommu_test_cmd.encode({ op: 99 }))).toBe('EOPNOTSUPP');
    expect(cmd(U.iommu_test_cmd_dmabuf_get.encode({ op: U.IOMMU_TEST_OP_DMABUF_GET, length: 0 }))).toBe('EINVAL');
    expect(cmd(U.iommu_test_cmd_dmabuf_get.encode({ op: U.IOMMU_TEST_OP_DMABUF_GET, length: 512 * 4096 + 1 }))).toBe('EINVAL');
    const dfd = t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_dmabuf_get.encode({ op: U.IOMMU_TEST_OP_DMABUF_GET, length: 4096 }));
    expect(dfd).toBeGreaterThan(2);
    expect(cmd(U.iommu_test_cmd_dmabuf_revoke.encode({ op: U.IOMMU_TEST_OP_DMABUF_REVOKE, dmabuf_fd: dfd, revoked: 1 }))).toBe('success');
    // A file that is not a dma-buf (the iommufd itself).
    expect(cmd(U.iommu_test_cmd_dmabuf_revoke.encode({ op: U.IOMMU_TEST_OP_DMABUF_REVOKE, dmabuf_fd: t.fd, revoked: 1 }))).toBe('EINVAL');
    expect(cmd(U.iommu_test_cmd_dmabuf_revoke.encode({ op: U.IOMMU_TEST_OP_DMABUF_REVOKE, dmabuf_fd: 99, revoked: 1 }))).toBe('EBADF');
    const d = t.mockDomain(ioas);
    // DIRTY needs dirty tracking enabled on the mock domain
    const bitmap = t.p.memory.alloc(8);
    expect(cmd(U.iommu_test_cmd_dirty.encode({ op: U.IOMMU_TEST_OP_DIRTY, id: d.out_hwpt_id, iova: BigInt(U.MOCK_APERTURE_START), length: 4096n, page_size: 2048n, uptr: bitmap.addr }))).toBe('EINVAL');
    expect(cmd(U.iommu_test_cmd_dirty.encode({ op: U.IOMMU_TEST_OP_DIRTY, id: d.out_hwpt_id, iova: BigInt(U.MOCK_APERTURE_START), length: 4096n, page_size: 0n, uptr: bitmap.addr }))).toBe('EINVAL');
    // MD_CHECK_IOTLB on a paging HWPT: not a nested one
    const iotlb = U.iommu_test_cmd_check_iotlb.encode({ op: U.IOMMU_TEST_OP_MD_CHECK_IOTLB, id: 0, iotlb: 0 });
    new DataView(iotlb.buffer).setUint32(8, d.out_hwpt_id, true);
    expect(cmd(iotlb)).toBe('ENOENT');
    // TRIGGER_VEVENT on a device with no vIOMMU
    expect(cmd(U.iommu_test_cmd_trigger_vevent.encode({ op: U.IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: d.out_idev_id }))).toBe('ENOENT');
  });

  it('an access pins user pages through the IOAS, and ACCESS_RW reads and writes them', () => {
    const t = open();
    const ioas = t.ioasAlloc();
    const buf = t.p.memory.alloc(2 * U.PAGE_SIZE);
    buf.bytes.set([1, 2, 3, 4], U.PAGE_SIZE - 2);
    t.ioctl(U.IOMMU_IOAS_MAP, U.iommu_ioas_map.encode({ flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioas, user_va: buf.addr, length: 8192n, iova: 0x100000n }));
    const create = U.iommu_test_cmd_create_access.encode({ op: U.IOMMU_TEST_OP_CREATE_ACCESS, id: ioas, flags: U.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES });
    t.ioctl(U.IOMMU_TEST_CMD, create);
    const afd = U.iommu_test_cmd_create_access.get(create, 'out_access_fd');
    const out = t.p.memory.alloc(4);
    t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_access_rw.encode({ op: U.IOMMU_TEST_OP_ACCESS_RW, id: afd, iova: 0x100000n + 4094n, length: 4n, uptr: out.addr }));
    expect(Array.from(out.bytes.subarray(0, 4))).toEqual([1, 2, 3, 4]);
    const pages = U.iommu_test_cmd_access_pages.encode({ op: U.IOMMU_TEST_OP_ACCESS_PAGES, id: afd, iova: 0x100000n, length: 8192n, uptr: buf.addr });
    t.ioctl(U.IOMMU_TEST_CMD, pages);
    const refs = (n: number) => t.errno(() => t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_check_refs.encode({ op: U.IOMMU_TEST_OP_MD_CHECK_REFS, length: 8192n, uptr: buf.addr, refs: n })));
    expect(refs(1)).toBe('success');
    const id = U.iommu_test_cmd_access_pages.get(pages, 'out_access_pages_id');
    t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_destroy_access_pages.encode({ op: U.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, id: afd, access_pages_id: id }));
    expect(refs(0)).toBe('success');
    expect(t.errno(() => t.ioctl(U.IOMMU_TEST_CMD, U.iommu_test_cmd_destroy_access_pages.encode({ op: U.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, id: afd, access_pages_id: id })))).toBe('ENOENT');
    // pinned again, then unmapped: the access is told to let go
    t.ioctl(U.IOMMU_TEST_CMD, pages);
    t.ioctl(U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap.encode({ ioas_id: ioas, iova: 0x100000n, length: 8192n }));
    expect(refs(0)).toBe('success');
    t.p.close(afd);
  });
});
