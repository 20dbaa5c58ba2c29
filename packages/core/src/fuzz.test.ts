// Seeded fuzzing of the ioctl surface (issue 3): random and mutated structs thrown at a populated
// context — valid IDs mixed with garbage, sizes around each minimum, pointers to mapped, unmapped and
// read-only memory. Every call must return or throw an errno-coded error (never anything else),
// the invariant checker must hold after every call, and exiting the process must free everything.
//
// Knobs: FUZZ_CALLS (default below), FUZZ_SEED.
import { describe, expect, it } from '@jest/globals';
import * as U from '@viommu/uapi';
import { createSimHost } from './host/sim-host.js';
import { checkAllReleased, checkInvariants } from './invariants.js';
import { registeredIoctls } from './ioctl/registry.js';
import { fuzzCall, fuzzKnob, fuzzer, type FuzzCounts } from './testing/fuzz.js';
import { call } from './testing/harness.js';
import { simpleDriver } from './testing/simple-driver.js';
import { VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU } from '@viommu/uapi';

const CALLS = fuzzKnob('FUZZ_CALLS', 100_000);
const SEED = fuzzKnob('FUZZ_SEED', 0x5eed);

describe('fuzz', () => {
  it(`${CALLS} random ioctls keep every invariant and end with nothing leaked (seed ${SEED})`, () => {
    const { rand, int, pick } = fuzzer(SEED);

    const drv = simpleDriver({ name: 'iommu0', dirtyTracking: true, reserved: [{ start: 0xfee00000n, last: 0xfeefffffn, kind: 'msi' }], hwInfo: { type: U.IOMMU_HW_INFO_TYPE_INTEL_VTD, data: new Uint8Array(16).fill(1) } });
    const host = createSimHost({ iommus: [drv], devices: [{ name: 'd0', iommu: 'iommu0', rid: 1, pasidBits: 8 }, { name: 'd1', iommu: 'iommu0', rid: 2 }] });
    const proc = host.spawn();
    const fd = proc.open('/dev/iommu');
    const buf = proc.memory.alloc(256 * 1024);
    const side = proc.memory.alloc(64 * 1024);
    const ro = proc.memory.mapShared(host.physical.allocRun(1), 0, 4096, false);
    const memfd = proc.memfdCreate('fuzz');
    proc.ftruncate(memfd, 64 * 1024);

    // Populate: two IOASes with mappings, two bound devices (one on an auto domain), a manual HWPT.
    const ioas = call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc).out_ioas_id;
    call(proc, fd, U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc);
    call(proc, fd, U.IOMMU_IOAS_MAP, U.iommu_ioas_map, { flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, ioas_id: ioas, user_va: buf.addr, length: 65536n });
    const dfds = [host.device('d0').path, host.device('d1').path].map((p) => {
      const dfd = proc.open(p);
      call(proc, dfd, U.VFIO_DEVICE_BIND_IOMMUFD, U.vfio_device_bind_iommufd, { iommufd: fd });
      return dfd;
    });
    call(proc, dfds[0]!, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.vfio_device_attach_iommufd_pt, { pt_id: ioas });
    call(proc, fd, U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, { dev_id: 3, pt_id: ioas, flags: U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING });

    const ioctls = registeredIoctls().filter((d) => d.name !== 'IOMMU_TEST_CMD');
    const cdev = [U.vfio_device_bind_iommufd, U.vfio_device_attach_iommufd_pt, U.vfio_device_detach_iommufd_pt] as const;
    const cdevReq = [U.VFIO_DEVICE_BIND_IOMMUFD, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, U.VFIO_DEVICE_DETACH_IOMMUFD_PT];
    const compat = [VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA];

    const u32Pool = () => pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 0xffffffff, 0x7fffffff, int(16), 1 << int(32), fd, memfd, dfds[0]!]) >>> 0;
    const u64Pool = (): bigint =>
      pick([
        0n,
        1n,
        4096n,
        65536n,
        0xfee00000n,
        (1n << 64n) - 1n,
        (1n << 63n),
        buf.addr,
        buf.addr + BigInt(int(64) * 4096),
        side.addr,
        ro.addr,
        0xdead0000n,
        BigInt(int(1 << 20)) * 4096n,
        BigInt(int(256)),
      ]);
    const fill = (codec: U.StructCodec, bytes: Uint8Array) => {
      for (const [name, f] of Object.entries(codec.fields)) {
        if (name === 'size' || name === 'argsz') continue;
        if (rand() < 0.3) continue; // leave some zero
        const dv = new DataView(bytes.buffer, bytes.byteOffset);
        if (f.kind === 'u64') dv.setBigUint64(f.offset, u64Pool(), true);
        else if (f.kind === 'u32') dv.setUint32(f.offset, name.includes('flags') ? int(64) : u32Pool(), true);
        else if (f.kind === 'u16') dv.setUint16(f.offset, int(4), true);
        else if (f.kind === 'u8') dv.setUint8(f.offset, int(3) === 0 ? int(256) : 0);
        else if (rand() < 0.2) bytes[f.offset + int(f.size)] = 1;
      }
    };
    const sizeFor = (codec: U.StructCodec) => pick([codec.size, codec.size, codec.size, codec.minSize, codec.minSize - 1, codec.size + 8, 0, int(codec.size + 16)]);

    const counts: FuzzCounts = { ok: 0, err: 0 };
    for (let i = 0; i < CALLS; i++) {
      const kind = int(10);
      fuzzCall(counts, () => `call ${i}`, () => {
        if (kind < 7) {
          const def = pick(ioctls);
          const size = sizeFor(def.struct);
          const arg = new Uint8Array(Math.max(4, def.struct.size + 16));
          fill(def.struct, arg);
          new DataView(arg.buffer).setUint32(0, size >>> 0, true);
          if (rand() < 0.1) arg[def.struct.size + int(16)] = 1;
          proc.ioctl(fd, def.request, rand() < 0.02 ? null : arg);
        } else if (kind < 9) {
          const j = int(3);
          const arg = new Uint8Array(32);
          fill(cdev[j]!, arg);
          new DataView(arg.buffer).setUint32(0, pick([cdev[j]!.size, 8, 12, 16, 32, 0]), true);
          proc.ioctl(pick(dfds), cdevReq[j]!, arg);
        } else {
          const req = pick(compat);
          if (req === VFIO_CHECK_EXTENSION || req === VFIO_SET_IOMMU || req === VFIO_GET_API_VERSION) proc.ioctl(fd, req, int(12));
          else {
            const arg = new Uint8Array(96);
            for (let k = 4; k < 32; k += 8) new DataView(arg.buffer).setBigUint64(k + 4 > 32 ? 24 : k + 4, u64Pool(), true);
            new DataView(arg.buffer).setUint32(0, pick([24, 32, 96, 1]), true);
            new DataView(arg.buffer).setUint32(4, int(4), true);
            proc.ioctl(fd, req, arg);
          }
        }
      });
      checkInvariants(host);
    }
    expect(counts.ok).toBeGreaterThan(CALLS / 100);
    expect(counts.err).toBeGreaterThan(CALLS / 10);
    proc.exit();
    checkAllReleased(host);
    expect(drv.liveDomains.size).toBe(0);
  });
});
