// The port of tools/testing/selftests/iommu/iommufd_fail_nth.c: each case runs a call sequence that
// succeeds, then sweeps fault injection over it (the 1st, 2nd, ... failure point fails) until a run
// completes without the injection firing. It checks integrity, not results: every run must unwind
// cleanly (no leaked pins on `buffer` after close, no crash) and the final, uninjected run must
// succeed. How a target injects failures is its own (`FailNthControl`): /proc/self/task/<tid>/fail-nth
// on Linux, the host's FailNth switch on the simulator.
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_PASID,
  O_RDWR,
  iommu_hwpt_selftest,
  iommu_ioas_allow_iovas,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_iova_range,
  iommu_test_cmd_access_pages,
  iommu_test_cmd_access_rw,
  iommu_test_hw_info,
  type Process,
} from '@viommu/uapi';
import { CaseFailure, CaseSkip, type Outcome } from './harness.js';
import { PAGE_SIZE, Self, enc, memfdOf, NO_MEMFD, num, type UserBuf } from './utils.js';

/** How a target injects the nth failure of the calling task. */
export interface FailNthControl {
  /** Makes the `n`th failure point from now fail (n >= 1). */
  enable(n: number): void;
  /** Disarms; returns whether the armed failure fired since enable. */
  disable(): boolean;
}

/**
 * fail-nth on Linux (a kernel with CONFIG_FAULT_INJECTION and fail_nth): the calling thread's
 * /proc/thread-self/fail-nth, which counts down to the injected failure and reads 0 once it fired.
 */
export function linuxFailNthControl(process: Process): FailNthControl {
  const path = '/proc/thread-self/fail-nth';
  const put = (text: string) => {
    const fd = process.open(path, O_RDWR);
    try {
      process.write(fd, new TextEncoder().encode(text));
    } finally {
      process.close(fd);
    }
  };
  return {
    enable: (n) => put(String(n)),
    disable() {
      const fd = process.open(path, O_RDWR);
      let text = '';
      try {
        const buf = new Uint8Array(32);
        text = new TextDecoder().decode(buf.subarray(0, process.read(fd, buf)));
      } catch (e) {
        // Reading can itself hit the injected failure (EFAULT): then it fired.
        if ((e as { code?: string }).code === 'EFAULT') text = '0\n';
        else throw e;
      } finally {
        process.close(fd);
      }
      put('0');
      return text === '0\n';
    },
  };
}

/** The fail_nth fixture's buffers: 2 MiB of anonymous memory and a 2 MiB memfd. */
const FAIL_NTH_BUFFER = 2 * 1024 * 1024;
/** The kernel test's bound on iterations (its comment: arbitrary, from the kernel of its day). */
const MAX_ITERATIONS = 1000;

class FailNthSelf extends Self {
  access_id = 0;
  pasid = 0;
  iteration = 0;
  control!: FailNthControl;

  /** fail_nth_enable(): starts injection here (nothing on the first, uninjected run). */
  failNthEnable(): void {
    if (this.iteration) this.control.enable(this.iteration);
  }
}

/** One sweep body: throws (an errno error) where the C returns -1. */
type Body = (self: FailNthSelf) => void;

export interface FailNthScenario {
  readonly name: string;
  run(process: Process, control: FailNthControl): Promise<Outcome & { iterations?: number }>;
}

function teardown(self: FailNthSelf): void {
  // The access fd holds the iommufd open until it closes.
  if (self.access_id) self.testCmdDestroyAccess(self.access_id);
  self.access_id = 0;
  if (self.pasid && self.stdev_id) {
    try {
      self.testCmdPasidDetach(self.pasid);
    } catch {
      // best effort, as in C
    }
  }
  self.pasid = 0;
  self.stdev_id = 0;
  self.teardownIommufd();
}

function isErrno(e: unknown): boolean {
  return !(e instanceof CaseFailure) && !(e instanceof CaseSkip) && typeof (e as { code?: unknown })?.code === 'string';
}

/** TEST_FAIL_NTH: the first run must pass; then sweep n = 1, 2, ... while the injection fires. */
function testFailNth(name: string, needsMemfd: boolean, body: Body): FailNthScenario {
  return {
    name: `basic_fail_nth.${name}`,
    async run(process, control) {
      if (needsMemfd && !memfdOf(process)) return { status: 'skip', reason: NO_MEMFD };
      const buffer = process.memory.alloc(FAIL_NTH_BUFFER);
      let mfd: { fd: number; buf: UserBuf } | undefined;
      const fresh = (iteration: number) => {
        const self = new FailNthSelf(process, buffer);
        if (needsMemfd) mfd ??= self.memfdMmap(FAIL_NTH_BUFFER);
        self.mfdCache = mfd;
        self.iteration = iteration;
        self.control = control;
        return self;
      };
      const attempt = (self: FailNthSelf): number => {
        try {
          body(self);
          return 0;
        } catch (e) {
          if (isErrno(e)) return -1;
          throw e;
        } finally {
          // the C reads and disables fail-nth before the teardown; so do we
        }
      };
      try {
        let self = fresh(0);
        let rc = attempt(self);
        if (rc !== 0) return { status: 'fail', message: 'the uninjected run failed' };
        for (let iteration = 1; ; iteration++) {
          const fired = iteration === 1 ? true : control.disable();
          if (!fired) {
            teardown(self);
            return rc === 0 ? { status: 'pass', iterations: iteration - 1 } : { status: 'fail', message: `the last run (nth ${iteration - 1}) failed without an injected failure` };
          }
          if (iteration > MAX_ITERATIONS) return { status: 'fail', message: `more than ${MAX_ITERATIONS} failure points` };
          teardown(self);
          self = fresh(iteration);
          rc = attempt(self);
        }
      } catch (e) {
        control.disable();
        if (e instanceof CaseSkip) return { status: 'skip', reason: e.reason };
        return { status: 'fail', message: e instanceof Error ? e.message : String(e) };
      }
    },
  };
}

function open(self: FailNthSelf): void {
  self.fd = self.process.open('/dev/iommu', O_RDWR);
}

/** The start of most sweeps: /dev/iommu open, one IOAS, and the C's temporary memory limit of 32. */
function openLimitedIoas(self: FailNthSelf): number {
  open(self);
  const ioasId = self.testIoctlIoasAlloc();
  self.testIoctlSetTempMemoryLimit(32);
  return ioasId;
}

const RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

function mapOk(self: FailNthSelf, ioasId: number, buf: UserBuf | bigint, length: number, iova = 0, flags = RW): number {
  const r = self._ioasMap(ioasId, typeof buf === 'bigint' ? buf : buf.addr, length, iova, flags);
  if (r.errno) throw Object.assign(new Error(r.errno), { code: r.errno });
  return r.iova;
}

/** access_pin and access_pin_domain: an access that must pin, failures injected from its pin on. */
function pinThroughAccess(self: FailNthSelf, ioasId: number, iova: number): void {
  self.access_id = self.testCmdCreateAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
  self.failNthEnable();
  const cmd = enc(iommu_test_cmd_access_pages, { op: IOMMU_TEST_OP_ACCESS_PAGES, id: self.access_id, iova, length: FAIL_NTH_BUFFER, uptr: self.buffer.addr });
  self.testCmd(cmd);
  self.testCmdDestroyAccessPages(self.access_id, num(iommu_test_cmd_access_pages, cmd, 'out_access_pages_id'));
  self.testCmdDestroyAccess(self.access_id);
  self.access_id = 0;
}

export const failNthScenarios: readonly FailNthScenario[] = [
  // Cover ioas.c
  testFailNth('basic', false, (self) => {
    self.failNthEnable();
    open(self);
    const ioasId = self.testIoctlIoasAlloc();
    const ranges = self.mem(10 * iommu_iova_range.size);
    self.ioctl(IOMMU_IOAS_IOVA_RANGES, enc(iommu_ioas_iova_ranges, { num_iovas: 10, ioas_id: ioasId, allowed_iovas: ranges.addr }));
    iommu_iova_range.encode({ start: 16n * 1024n, last: BigInt(FAIL_NTH_BUFFER + 16 * 1024 * 600 - 1) }, ranges.bytes);
    self.ioctl(IOMMU_IOAS_ALLOW_IOVAS, enc(iommu_ioas_allow_iovas, { ioas_id: ioasId, num_iovas: 1, allowed_iovas: ranges.addr }));
    const iova = mapOk(self, ioasId, self.buffer, FAIL_NTH_BUFFER);
    self.ioctl(IOMMU_IOAS_COPY, enc(iommu_ioas_copy, { flags: RW, dst_ioas_id: ioasId, src_ioas_id: ioasId, src_iova: iova, length: 10 * iommu_iova_range.size }));
    self.testIoctlIoasUnmapId(ioasId, iova, FAIL_NTH_BUFFER);
    // Failure path of no IOVA to unmap
    try {
      self.testIoctlIoasUnmapId(ioasId, iova, FAIL_NTH_BUFFER);
    } catch {
      // expected
    }
  }),

  // iopt_area_fill_domains() and iopt_area_fill_domain()
  testFailNth('map_domain', false, (self) => {
    const ioasId = openLimitedIoas(self);
    self.failNthEnable();
    const d = self.testCmdMockDomain(ioasId);
    mapOk(self, ioasId, self.buffer, 262144);
    self.testIoctlDestroy(d.stdevId);
    self.testCmdMockDomain(ioasId);
  }),

  testFailNth('map_file_domain', true, (self) => {
    const ioasId = openLimitedIoas(self);
    self.failNthEnable();
    const d = self.testCmdMockDomain(ioasId);
    // Any errno here is an injected failure ("return -1" in the C), not a broken test.
    const r = self._ioasMapFile(ioasId, self.mfd, 0, 262144, 0, RW);
    if (r.errno) throw Object.assign(new Error(r.errno), { code: r.errno });
    self.testIoctlDestroy(d.stdevId);
    self.testCmdMockDomain(ioasId);
  }),

  testFailNth('map_two_domains', false, (self) => {
    const ioasId = openLimitedIoas(self);
    const d1 = self.testCmdMockDomain(ioasId);
    self.failNthEnable();
    const d2 = self.testCmdMockDomain(ioasId);
    mapOk(self, ioasId, self.buffer, 262144);
    self.testIoctlDestroy(d1.stdevId);
    self.testIoctlDestroy(d2.stdevId);
    self.testCmdMockDomain(ioasId);
    self.testCmdMockDomain(ioasId);
  }),

  testFailNth('access_rw', false, (self) => {
    const ioasId = openLimitedIoas(self);
    const iova = mapOk(self, ioasId, self.buffer, 262144);
    self.failNthEnable();
    self.access_id = self.testCmdCreateAccess(ioasId, 0);
    const tmp = self.mem(64);
    const cmd = enc(iommu_test_cmd_access_rw, { op: IOMMU_TEST_OP_ACCESS_RW, id: self.access_id, iova, length: 64, uptr: tmp.addr });
    for (const flags of [0, MOCK_ACCESS_RW_WRITE, MOCK_ACCESS_RW_SLOW_PATH, MOCK_ACCESS_RW_SLOW_PATH | MOCK_ACCESS_RW_WRITE]) {
      iommu_test_cmd_access_rw.set(cmd, 'flags', flags);
      self.testCmd(cmd);
    }
    const big = self.mem(4096 * 8);
    self.testCmd(enc(iommu_test_cmd_access_rw, { op: IOMMU_TEST_OP_ACCESS_RW, id: self.access_id, iova, flags: MOCK_ACCESS_RW_SLOW_PATH, length: 4096 * 8, uptr: big.addr }));
    self.testCmdDestroyAccess(self.access_id);
    self.access_id = 0;
  }),

  // pages.c access functions
  testFailNth('access_pin', false, (self) => {
    const ioasId = openLimitedIoas(self);
    const iova = mapOk(self, ioasId, self.buffer, FAIL_NTH_BUFFER);
    pinThroughAccess(self, ioasId, iova);
  }),

  // iopt_pages_fill_xarray()
  testFailNth('access_pin_domain', false, (self) => {
    const ioasId = openLimitedIoas(self);
    const d = self.testCmdMockDomain(ioasId);
    const iova = mapOk(self, ioasId, self.buffer, FAIL_NTH_BUFFER);
    pinThroughAccess(self, ioasId, iova);
    self.testIoctlDestroy(d.stdevId);
  }),

  // device.c
  testFailNth('device', false, (self) => {
    open(self);
    const data = self.put(enc(iommu_hwpt_selftest, { iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
    const info = self.mem(iommu_test_hw_info.size);
    const ioasId = self.testIoctlIoasAlloc();
    const ioasId2 = self.testIoctlIoasAlloc();
    const iova = MOCK_APERTURE_START;
    mapOk(self, ioasId, self.buffer, PAGE_SIZE, iova, IOMMU_IOAS_MAP_FIXED_IOVA | RW);
    mapOk(self, ioasId2, self.buffer, PAGE_SIZE, iova, IOMMU_IOAS_MAP_FIXED_IOVA | RW);
    self.failNthEnable();
    const d = self.testCmdMockDomainFlags(ioasId, MOCK_FLAGS_DEVICE_PASID);
    self.stdev_id = d.stdevId;
    const idevId = d.idevId;
    self.testCmdGetHwInfo(idevId, IOMMU_HW_INFO_TYPE_DEFAULT, info, iommu_test_hw_info.size);
    let hwptId = self.testCmdHwptAlloc(idevId, ioasId, IOMMU_HWPT_ALLOC_PASID);
    self.testCmdMockDomainReplace(self.stdev_id, ioasId2);
    self.testCmdMockDomainReplace(self.stdev_id, hwptId);
    hwptId = self.testCmdHwptAlloc(idevId, ioasId, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID);
    const viommuId = self.testCmdViommuAlloc(idevId, hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
    self.testCmdVdeviceAlloc(viommuId, idevId, 0);
    self.testCmdHwQueueAlloc(viommuId, IOMMU_HW_QUEUE_TYPE_SELFTEST, 0, iova, PAGE_SIZE);
    const { faultId, faultFd } = self.testIoctlFaultAlloc();
    self.process.close(faultFd);
    self.testCmdHwptAllocIopf(idevId, hwptId, faultId, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HWPT_DATA_SELFTEST, data, iommu_hwpt_selftest.size);
    const q = self.testCmdVeventqAlloc(viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
    self.process.close(q.veventqFd);
    const testHwptId = self.testCmdHwptAlloc(idevId, ioasId, IOMMU_HWPT_ALLOC_PASID);
    // Tests for pasid attach/replace/detach
    self.pasid = 200;
    try {
      self.testCmdPasidAttach(self.pasid, hwptId);
    } catch (e) {
      self.pasid = 0;
      throw e;
    }
    self.testCmdPasidReplace(self.pasid, testHwptId);
    self.testCmdPasidDetach(self.pasid);
    self.pasid = 0;
  }),
];
