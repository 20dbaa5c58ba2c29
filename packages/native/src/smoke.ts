// The lane's own smoke scenarios: the iommufd basics through the process contract, each asserting
// the kernel's exact errno where it must fail (facts from Linux 7.2.13 ioas.c, main.c, selftest.c
// and tools/testing/selftests/iommu/iommufd.c). Same shape as @viommu/backend-mock's scenarios, so
// tooling/kernel-lane/runner.mjs runs either, on the real kernel or on the simulator.
import {
  IO, IOMMUFD_CMD_BASE, IOMMUFD_PAGE_RESP_SUCCESS, IOMMUFD_TYPE, IOMMU_DESTROY, IOMMU_FAULT_QUEUE_ALLOC, IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_SELFTEST, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID, IOMMU_PGFAULT_PERM_READ, IOMMU_PGFAULT_PERM_WRITE, IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, IOMMU_TEST_OP_TRIGGER_IOPF, POLLIN, iommu_fault_alloc, iommu_hwpt_alloc,
  iommu_hwpt_page_response, iommu_hwpt_pgfault, iommu_hwpt_selftest, iommu_test_cmd_mock_domain_replace,
  iommu_test_cmd_trigger_iopf, IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP, IOMMU_TEST_CMD, IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MOCK_DOMAIN, MOCK_APERTURE_START, O_RDWR, PAGE_SIZE, iommu_destroy, iommu_ioas_alloc, iommu_ioas_map,
  iommu_ioas_unmap, iommu_test_cmd_check_map, iommu_test_cmd_mock_domain, isErrnoError, type Process,
} from '@viommu/uapi';

export type Outcome =
  | { readonly status: 'pass' }
  | { readonly status: 'skip'; readonly reason: string }
  | { readonly status: 'fail'; readonly message: string };

export interface Scenario {
  readonly name: string;
  run(process: Process): Promise<Outcome>;
}

const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

class Failed extends Error {}

function expectEq<T>(what: string, got: T, want: T): void {
  if (got !== want) throw new Failed(`${what}: got ${String(got)}, want ${String(want)}`);
}

/** Runs `f` and checks it fails with exactly `code`. */
function expectErrno(code: string, what: string, f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (isErrnoError(e) && e.code === code) return;
    throw new Failed(`${what}: want ${code}, got ${isErrnoError(e) ? e.code : String(e)}`);
  }
  throw new Failed(`${what}: want ${code}, but it succeeded`);
}

/** One open /dev/iommu with the helpers the cases share (names as in iommufd_utils.h). */
class Ctx {
  readonly fd: number;
  constructor(readonly p: Process) {
    this.fd = p.open('/dev/iommu', O_RDWR);
  }

  ioasAlloc(): number {
    const cmd = iommu_ioas_alloc.encode({});
    this.p.ioctl(this.fd, IOMMU_IOAS_ALLOC, cmd);
    return iommu_ioas_alloc.get(cmd, 'out_ioas_id');
  }

  destroy(id: number): void {
    this.p.ioctl(this.fd, IOMMU_DESTROY, iommu_destroy.encode({ id }));
  }

  mockDomain(ioasId: number): { stdev: number; hwpt: number; idev: number } {
    const cmd = iommu_test_cmd_mock_domain.encode({ op: IOMMU_TEST_OP_MOCK_DOMAIN, id: ioasId });
    this.p.ioctl(this.fd, IOMMU_TEST_CMD, cmd);
    const out = iommu_test_cmd_mock_domain.decode(cmd);
    return { stdev: out.out_stdev_id, hwpt: out.out_hwpt_id, idev: out.out_idev_id };
  }

  map(ioasId: number, userVa: bigint, length: number, iova?: bigint): bigint {
    const flags = RW | (iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA);
    const cmd = iommu_ioas_map.encode({ ioas_id: ioasId, flags, user_va: userVa, length: BigInt(length), iova: iova ?? 0n });
    this.p.ioctl(this.fd, IOMMU_IOAS_MAP, cmd);
    return iommu_ioas_map.get(cmd, 'iova');
  }

  unmap(ioasId: number, iova: bigint, length: bigint): bigint {
    const cmd = iommu_ioas_unmap.encode({ ioas_id: ioasId, iova, length });
    this.p.ioctl(this.fd, IOMMU_IOAS_UNMAP, cmd);
    return iommu_ioas_unmap.get(cmd, 'length');
  }

  checkMap(hwptId: number, iova: bigint, length: number, uptr: bigint): void {
    const cmd = iommu_test_cmd_check_map.encode({ op: IOMMU_TEST_OP_MD_CHECK_MAP, id: hwptId, iova, length: BigInt(length), uptr });
    this.p.ioctl(this.fd, IOMMU_TEST_CMD, cmd);
  }

  hwptAlloc(devId: number, ptId: number, flags: number, data?: { type: number; bytes: Uint8Array }, faultId = 0): number {
    let uptr = 0n;
    if (data) {
      // data_uptr is a user pointer: the driver data has to sit in process memory.
      const mem = this.p.memory.alloc(data.bytes.length);
      mem.bytes.set(data.bytes);
      uptr = mem.addr;
    }
    const cmd = iommu_hwpt_alloc.encode({
      flags, dev_id: devId, pt_id: ptId, data_type: data?.type ?? 0, data_len: data?.bytes.length ?? 0, data_uptr: uptr, fault_id: faultId,
    });
    this.p.ioctl(this.fd, IOMMU_HWPT_ALLOC, cmd);
    if (data) this.p.memory.free(uptr);
    return iommu_hwpt_alloc.get(cmd, 'out_hwpt_id');
  }

  faultAlloc(): { id: number; fd: number } {
    const cmd = iommu_fault_alloc.encode({});
    this.p.ioctl(this.fd, IOMMU_FAULT_QUEUE_ALLOC, cmd);
    return { id: iommu_fault_alloc.get(cmd, 'out_fault_id'), fd: iommu_fault_alloc.get(cmd, 'out_fault_fd') };
  }

  replace(stdevId: number, ptId: number): void {
    const cmd = iommu_test_cmd_mock_domain_replace.encode({ op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, id: stdevId, pt_id: ptId });
    this.p.ioctl(this.fd, IOMMU_TEST_CMD, cmd);
  }

  close(): void {
    this.p.close(this.fd);
  }
}

function scenario(name: string, body: (ctx: Ctx) => void | Promise<void>): Scenario {
  return {
    name: `smoke.${name}`,
    async run(p: Process): Promise<Outcome> {
      let ctx: Ctx;
      try {
        ctx = new Ctx(p);
      } catch (e) {
        return { status: 'fail', message: `open /dev/iommu: ${String(e)}` };
      }
      try {
        await body(ctx);
        return { status: 'pass' };
      } catch (e) {
        const message = e instanceof Failed ? e.message : isErrnoError(e) ? `unexpected ${e.code}: ${e.message}` : String(e);
        return { status: 'fail', message };
      } finally {
        try {
          ctx.close();
        } catch {
          // a case that closed the fd itself
        }
      }
    },
  };
}

const LEN = 4 * PAGE_SIZE;
const IOVA = BigInt(MOCK_APERTURE_START);

export const scenarios: readonly Scenario[] = [
  scenario('ioas_alloc_destroy', (c) => {
    const id = c.ioasAlloc();
    if (id === 0) throw new Failed('IOAS_ALLOC returned id 0');
    c.destroy(id);
    expectErrno('ENOENT', 'second DESTROY of the IOAS', () => c.destroy(id));
  }),

  // IOAS_ALLOC, MOCK_DOMAIN, MAP of real memory, MD_CHECK_MAP, UNMAP, DESTROY: the lane's core case.
  scenario('mock_domain_map_check_unmap', (c) => {
    const ioas = c.ioasAlloc();
    const dom = c.mockDomain(ioas);
    if (!dom.stdev || !dom.hwpt || !dom.idev) throw new Failed(`MOCK_DOMAIN ids ${JSON.stringify(dom)}`);
    const buf = c.p.memory.alloc(LEN);
    for (let i = 0; i < LEN; i += 512) buf.bytes[i] = i & 0xff;
    expectEq('MAP iova', c.map(ioas, buf.addr, LEN, IOVA), IOVA);
    c.checkMap(dom.hwpt, IOVA, LEN, buf.addr);
    // The mock domain maps these exact pages: any other user pointer is EINVAL.
    const other = c.p.memory.alloc(LEN);
    expectErrno('EINVAL', 'MD_CHECK_MAP against other pages', () => c.checkMap(dom.hwpt, IOVA, LEN, other.addr));
    expectErrno('EINVAL', 'MD_CHECK_MAP at a misaligned iova', () => c.checkMap(dom.hwpt, IOVA + 1024n, LEN, buf.addr));
    // The IOAS is in use by the mock device's HWPT.
    expectErrno('EBUSY', 'DESTROY of an IOAS with a device attached', () => c.destroy(ioas));
    expectEq('UNMAP length', c.unmap(ioas, IOVA, BigInt(LEN)), BigInt(LEN));
    expectErrno('EINVAL', 'MD_CHECK_MAP after UNMAP', () => c.checkMap(dom.hwpt, IOVA, LEN, buf.addr));
    expectErrno('ENOENT', 'UNMAP of nothing', () => c.unmap(ioas, IOVA, BigInt(LEN)));
    c.destroy(dom.stdev);
    c.destroy(ioas);
    c.p.memory.free(buf.addr);
    c.p.memory.free(other.addr);
  }),

  scenario('map_auto_iova_unmap_all', (c) => {
    const ioas = c.ioasAlloc();
    const dom = c.mockDomain(ioas);
    const buf = c.p.memory.alloc(LEN);
    const iova = c.map(ioas, buf.addr, LEN);
    // The allocated IOVA lies in the mock aperture and is page aligned.
    if (iova < IOVA || iova % BigInt(PAGE_SIZE) !== 0n) throw new Failed(`auto IOVA 0x${iova.toString(16)}`);
    c.checkMap(dom.hwpt, iova, LEN, buf.addr);
    expectEq('UNMAP all length', c.unmap(ioas, 0n, U64_MAX), BigInt(LEN));
    c.destroy(dom.stdev);
  }),

  scenario('cmd_fail', (c) => {
    expectErrno('ENOENT', 'DESTROY id 0', () => c.destroy(0));
    expectErrno('EFAULT', 'DESTROY with a NULL pointer', () => c.p.ioctl(c.fd, IOMMU_DESTROY, null));
    expectErrno('ENOTTY', 'ioctl below the iommufd range', () => c.p.ioctl(c.fd, IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1), iommu_destroy.encode({})));
  }),

  scenario('cmd_length', (c) => {
    const small = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.minSize - 1 });
    expectErrno('EINVAL', 'IOAS_ALLOC size below its last field', () => c.p.ioctl(c.fd, IOMMU_IOAS_ALLOC, small));
    // A larger size is fine only when the extra bytes are zero.
    const big = new Uint8Array(iommu_ioas_alloc.size + 1);
    iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size + 1 }, big);
    big[iommu_ioas_alloc.size] = 0xff;
    expectErrno('E2BIG', 'IOAS_ALLOC with non-zero trailing bytes', () => c.p.ioctl(c.fd, IOMMU_IOAS_ALLOC, big));
    big[iommu_ioas_alloc.size] = 0;
    c.p.ioctl(c.fd, IOMMU_IOAS_ALLOC, big);
    if (iommu_ioas_alloc.get(big, 'out_ioas_id') === 0) throw new Failed('no id from an extended IOAS_ALLOC');
  }),

  scenario('ioas_map_errors', (c) => {
    const ioas = c.ioasAlloc();
    const dom = c.mockDomain(ioas);
    const buf = c.p.memory.alloc(LEN);
    const map = (v: Partial<Parameters<typeof iommu_ioas_map.encode>[0] & object>) => () =>
      c.p.ioctl(c.fd, IOMMU_IOAS_MAP, iommu_ioas_map.encode({ ioas_id: ioas, flags: RW, user_va: buf.addr, length: BigInt(LEN), ...v }));
    expectErrno('EOPNOTSUPP', 'IOAS_MAP unknown flag', map({ flags: RW | 0x100 }));
    expectErrno('EOPNOTSUPP', 'IOAS_MAP __reserved set', map({ __reserved: 1 }));
    expectErrno('EOVERFLOW', 'IOAS_MAP length U64_MAX', map({ length: U64_MAX }));
    expectErrno('EINVAL', 'IOAS_MAP neither readable nor writeable', map({ flags: 0 }));
    expectErrno('ENOENT', 'IOAS_MAP on the HWPT id (not an IOAS)', map({ ioas_id: dom.hwpt }));
    expectErrno('EINVAL', 'IOAS_MAP of length 0', map({ length: 0n }));
    // Pinning for the attached mock domain touches the pages at once: a freed range faults.
    const gone = c.p.memory.alloc(LEN);
    c.p.memory.free(gone.addr);
    expectErrno('EFAULT', 'IOAS_MAP of unmapped user memory', map({ user_va: gone.addr }));
    c.map(ioas, buf.addr, LEN, IOVA);
    expectErrno('EEXIST', 'IOAS_MAP over a used fixed IOVA', map({ flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, iova: IOVA }));
    c.destroy(dom.stdev);
  }),

  // A page request through a fault queue: the fault fd wakes a pending poll(), read() returns the
  // iommu_hwpt_pgfault, write() answers it (TEST_OP_TRIGGER_IOPF, eventq.c).
  scenario('iopf_poll_read_respond', async (c) => {
    const ioas = c.ioasAlloc();
    const dom = c.mockDomain(ioas);
    const parent = c.hwptAlloc(dom.idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const fault = c.faultAlloc();
    const selftest = { type: IOMMU_HWPT_DATA_SELFTEST, bytes: iommu_hwpt_selftest.encode({ iotlb: IOMMU_TEST_IOTLB_DEFAULT }) };
    expectErrno('ENOENT', 'HWPT_ALLOC with a fault id that is no fault queue', () =>
      c.hwptAlloc(dom.idev, parent, IOMMU_HWPT_FAULT_ID_VALID, selftest, 0xffffffff));
    const iopfHwpt = c.hwptAlloc(dom.idev, parent, IOMMU_HWPT_FAULT_ID_VALID, selftest, fault.id);
    c.replace(dom.stdev, iopfHwpt);
    expectErrno('EBUSY', 'DESTROY of the attached IOPF HWPT', () => c.destroy(iopfHwpt));

    expectEq('poll before any fault', await c.p.poll(fault.fd, POLLIN, 0), 0);
    const woken = c.p.poll(fault.fd, POLLIN, 60_000);
    const perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
    c.p.ioctl(c.fd, IOMMU_TEST_CMD, iommu_test_cmd_trigger_iopf.encode({
      op: IOMMU_TEST_OP_TRIGGER_IOPF, dev_id: dom.idev, pasid: 1, grpid: 2, perm, addr: 0xdeadbeafn,
    }));
    expectEq('poll after the fault', (await woken) & POLLIN, POLLIN);
    const msg = new Uint8Array(iommu_hwpt_pgfault.size);
    expectEq('read of one fault', c.p.read(fault.fd, msg), iommu_hwpt_pgfault.size);
    const pf = iommu_hwpt_pgfault.decode(msg);
    expectEq('pgfault.flags', pf.flags, IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE);
    expectEq('pgfault.dev_id', pf.dev_id, dom.idev);
    expectEq('pgfault.pasid', pf.pasid, 1);
    expectEq('pgfault.grpid', pf.grpid, 2);
    expectEq('pgfault.perm', pf.perm, perm);
    expectEq('pgfault.addr', pf.addr, 0xdeadbeafn);
    const response = iommu_hwpt_page_response.encode({ cookie: pf.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS });
    expectEq('write of the response', c.p.write(fault.fd, response), iommu_hwpt_page_response.size);
    expectEq('poll once answered', await c.p.poll(fault.fd, POLLIN, 0), 0);

    c.replace(dom.stdev, ioas);
    c.destroy(iopfHwpt);
    c.destroy(parent);
    c.p.close(fault.fd);
    c.destroy(dom.stdev);
  }),

  scenario('ioas_unmap_errors', (c) => {
    const ioas = c.ioasAlloc();
    expectErrno('ENOENT', 'UNMAP in an empty IOAS', () => c.unmap(ioas, IOVA, BigInt(LEN)));
    expectErrno('EOVERFLOW', 'UNMAP of length U64_MAX at a non-zero iova', () => c.unmap(ioas, IOVA, U64_MAX));
    expectErrno('ENOENT', 'UNMAP on a missing IOAS', () => c.unmap(ioas + 100, IOVA, BigInt(LEN)));
    expectEq('UNMAP all of an empty IOAS', c.unmap(ioas, 0n, U64_MAX), 0n);
  }),
];
