// VFIO cdev bind/attach/detach rules (spec 9.1, 10, 4.7) and HWPT paging attach/replace semantics.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from '../host/sim-host.js';
import { checkAllReleased, checkInvariants } from '../invariants.js';
import { call, errnoOf } from '../testing/harness.js';
import { simpleDriver } from '../testing/simple-driver.js';

function setup(reserved = false) {
  const drv = simpleDriver({ name: 'iommu0', reserved: reserved ? [{ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' }] : [] });
  const host = createSimHost({
    iommus: [drv],
    devices: [
      { name: 'dev0', iommu: 'iommu0', rid: 1, pasidBits: 8, pasidExec: true },
      { name: 'dev1', iommu: 'iommu0', rid: 2 },
    ],
  });
  const proc = host.spawn();
  const fd = proc.open('/dev/iommu');
  const dfd = proc.open(host.device('dev0').path);
  return { drv, host, proc, fd, dfd };
}

const bindArg = (iommufd: number, extra: Partial<U.StructValue<typeof U.vfio_device_bind_iommufd.fields>> = {}) => U.vfio_device_bind_iommufd.encode({ iommufd, ...extra });

describe('VFIO_DEVICE_BIND_IOMMUFD', () => {
  it('checks argsz, the tail, iommufd, flags, the token and the fd in the kernel order', () => {
    const { proc, fd, dfd, host } = setup();
    const big = new Uint8Array(32);
    U.vfio_device_bind_iommufd.encode({ argsz: 15, iommufd: fd }, big);
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, big))).toBe('EINVAL');
    U.vfio_device_bind_iommufd.set(big, 'argsz', 32);
    big[30] = 1;
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, big))).toBe('E2BIG');
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(-1 >>> 0)))).toBe('EINVAL');
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(fd, { flags: 2 })))).toBe('EINVAL');
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(fd, { flags: U.VFIO_DEVICE_BIND_FLAG_TOKEN, token_uuid_ptr: 8n })))).toBe('EFAULT');
    const uuid = proc.memory.alloc(4096);
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(fd, { flags: U.VFIO_DEVICE_BIND_FLAG_TOKEN, token_uuid_ptr: uuid.addr })))).toBe('EINVAL');
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(99)))).toBe('EBADF');
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(dfd)))).toBe('EBADFD');
    // Device ioctls before bind: EINVAL (no access granted).
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt.encode({ pt_id: 1 })))).toBe('EINVAL');
    const b = U.vfio_device_bind_iommufd.decode((() => {
      const a = bindArg(fd);
      proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, a);
      return a;
    })());
    expect(b.out_devid).toBe(1);
    expect(errnoOf(() => proc.ioctl(dfd, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(fd)))).toBe('EINVAL');
    // The DEVICE object cannot be destroyed by userspace.
    expect(errnoOf(() => call(proc, fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 1 }))).toBe('EBUSY');
    checkInvariants(host);
    proc.exit();
    checkAllReleased(host);
  });
});

describe('VFIO_DEVICE_ATTACH/DETACH_IOMMUFD_PT', () => {
  function bound() {
    const s = setup(true);
    call(s.proc, s.dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: s.fd });
    const ioas = call(s.proc, s.fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    return { ...s, ioas };
  }
  const attach = (s: ReturnType<typeof bound>, fields: Partial<U.StructValue<typeof U.vfio_device_attach_iommufd_pt.fields>>) =>
    call(s.proc, s.dfd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, fields);

  it('argsz and flags checks, ENOENT for a missing pt, EINVAL for a non-pt object', () => {
    const s = bound();
    expect(errnoOf(() => attach(s, { argsz: 11, pt_id: s.ioas }))).toBe('EINVAL');
    expect(errnoOf(() => attach(s, { flags: 2, pt_id: s.ioas }))).toBe('EINVAL');
    expect(errnoOf(() => attach(s, { argsz: 12, flags: U.VFIO_DEVICE_ATTACH_PASID, pt_id: s.ioas }))).toBe('EINVAL');
    expect(errnoOf(() => attach(s, { pt_id: 77 }))).toBe('ENOENT');
    expect(errnoOf(() => attach(s, { pt_id: 1 }))).toBe('EINVAL'); // the DEVICE itself
    const detach = U.vfio_device_detach_iommufd_pt.encode({ argsz: 7 });
    expect(errnoOf(() => s.proc.ioctl(s.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detach))).toBe('EINVAL');
    // Detaching something not attached is a silent no-op.
    call(s.proc, s.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
    checkInvariants(s.host);
  });

  it('device reserved regions become reserved IOVA while attached; a mapping there blocks the attach (EADDRINUSE)', () => {
    const s = bound();
    const ranges = () => {
      const mem = s.proc.memory.alloc(4096);
      const r = call(s.proc, s.fd, U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, { ioas_id: s.ioas, num_iovas: 8, allowed_iovas: mem.addr });
      return Array.from({ length: r.num_iovas }, (_, i) => U.iommu_iova_range.decode(mem.bytes, i * 16));
    };
    attach(s, { pt_id: s.ioas });
    expect(ranges()).toEqual([
      { start: 0n, last: 0xfedfffffn },
      { start: 0xfef00000n, last: (1n << 48n) - 1n },
    ]);
    call(s.proc, s.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt);
    expect(ranges()).toEqual([{ start: 0n, last: (1n << 64n) - 1n }]);
    const buf = s.proc.memory.alloc(4096);
    call(s.proc, s.fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE, ioas_id: s.ioas, user_va: buf.addr, length: 4096n, iova: 0xfee00000n });
    expect(errnoOf(() => attach(s, { pt_id: s.ioas }))).toBe('EADDRINUSE');
    checkInvariants(s.host);
    expect(s.drv.liveDomains.size).toBe(0); // the auto domain was aborted
  });

  it('attach while attached replaces: IOAS -> manual HWPT -> IOAS, old auto HWPT freed', () => {
    const s = bound();
    expect(attach(s, { pt_id: s.ioas }).pt_id).toBe(3);
    const manual = call(s.proc, s.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: 1, pt_id: s.ioas }).out_hwpt_id;
    expect(manual).toBe(4);
    expect(attach(s, { pt_id: manual }).pt_id).toBe(manual);
    // The auto HWPT lost its last device: its ID 3 is free again.
    expect(errnoOf(() => call(s.proc, s.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: 3 }))).toBe('ENOENT');
    expect(errnoOf(() => call(s.proc, s.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: manual }))).toBe('EBUSY');
    expect(attach(s, { pt_id: s.ioas }).pt_id).toBe(3);
    call(s.proc, s.fd, U.IOMMU_DESTROY, U.iommu_destroy, { id: manual });
    checkInvariants(s.host);
    s.proc.exit();
    checkAllReleased(s.host);
    expect(s.drv.liveDomains.size).toBe(0);
  });

  it('PASID attach needs a PASID-compatible HWPT; the RID then needs one too', () => {
    const s = bound();
    const plain = call(s.proc, s.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: 1, pt_id: s.ioas }).out_hwpt_id;
    const pasidHwpt = call(s.proc, s.fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: 1, pt_id: s.ioas, flags: U.IOMMU_HWPT_ALLOC_PASID }).out_hwpt_id;
    expect(errnoOf(() => attach(s, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 5, pt_id: plain }))).toBe('EINVAL');
    expect(errnoOf(() => attach(s, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 256, pt_id: pasidHwpt }))).toBe('EINVAL');
    attach(s, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 5, pt_id: pasidHwpt });
    expect(errnoOf(() => attach(s, { pt_id: plain }))).toBe('EINVAL');
    attach(s, { pt_id: pasidHwpt });
    expect(s.drv.attachments.size).toBe(2);
    call(s.proc, s.dfd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, U.vfio_device_detach_iommufd_pt, { flags: U.VFIO_DEVICE_DETACH_PASID, pasid: 5 });
    expect(s.drv.attachments.size).toBe(1);
    checkInvariants(s.host);
    // Closing the device fd detaches and unbinds; closing the iommufd then frees everything.
    s.proc.close(s.dfd);
    expect(s.drv.attachments.size).toBe(0);
    s.proc.close(s.fd);
    checkAllReleased(s.host);
    expect(s.drv.liveDomains.size).toBe(0);
  });

  it('GET_HW_INFO mirrors the PASID control register of a PASID-capable PCI device', () => {
    const s = bound();
    const d1 = s.proc.open(s.host.device('dev1').path);
    const dev1 = call(s.proc, d1, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: s.fd }).out_devid;
    const ats = BigInt(U.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
    const i0 = call(s.proc, s.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: 1 });
    expect(i0.out_capabilities).toBe(ats | BigInt(U.IOMMU_HW_CAP_PCI_PASID_EXEC));
    expect(i0.out_max_pasid_log2).toBe(8);
    expect(i0.out_data_type).toBe(U.IOMMU_HW_INFO_TYPE_NONE); // a driver without hw_info
    const i1 = call(s.proc, s.fd, U.IOMMU_GET_HW_INFO, U.iommu_hw_info, { dev_id: dev1 });
    expect(i1.out_capabilities).toBe(ats);
    expect(i1.out_max_pasid_log2).toBe(0);
  });

  it('a device without PASID support refuses the PASID flag with EOPNOTSUPP', () => {
    const s = bound();
    const d1 = s.proc.open(s.host.device('dev1').path);
    call(s.proc, d1, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: s.fd });
    expect(errnoOf(() => call(s.proc, d1, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { flags: U.VFIO_DEVICE_ATTACH_PASID, pasid: 1, pt_id: s.ioas }))).toBe('EOPNOTSUPP');
  });

  it('the same device cannot be bound through two fds at once (EINVAL), and can after unbind', () => {
    const s = bound();
    const again = s.proc.open(s.host.device('dev0').path);
    expect(errnoOf(() => call(s.proc, again, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: s.fd }))).toBe('EINVAL');
    s.proc.close(s.dfd);
    expect(call(s.proc, again, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: s.fd }).out_devid).toBe(1);
  });
});
