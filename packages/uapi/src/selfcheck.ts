#!/usr/bin/env node
// `node dist/selfcheck.js`: checks the uAPI tables against themselves and prints them. Every ioctl
// number must equal _IO(0x3b, nr) with its nr, every struct must round-trip a patterned byte image
// through decode/encode unchanged, and every minimum size must lie within its struct.
import type { StructCodec } from './codec.js';
import { IO, IOMMUFD_TYPE } from './constants.js';
import { IOMMU_TEST_IOCTL, IOMMUFD_IOCTLS, VFIO_CDEV_IOCTLS, ioctlNr } from './ioctls.js';
import * as selftest from './selftest.js';
import * as structs from './structs.js';
import * as vfio from './vfio.js';

/** Every struct codec the package exports. */
export function allStructCodecs(): StructCodec[] {
  const values: unknown[] = [...Object.values(structs), ...Object.values(vfio), ...Object.values(selftest)];
  return values.filter((v): v is StructCodec => typeof v === 'object' && v !== null && 'fields' in v);
}

export function roundTrips(codec: StructCodec): boolean {
  const image = Uint8Array.from({ length: codec.size }, (_, i) => (i * 37 + 11) & 0xff);
  // Bytes no field covers (padding) encode as zero, so compare only the covered ones.
  const covered = new Uint8Array(codec.size);
  for (const f of Object.values(codec.fields)) covered.fill(1, f.offset, f.offset + f.size);
  const again = codec.encode(codec.decode(image) as never);
  return image.every((b, i) => !covered[i] || again[i] === b);
}

export function selfcheck(log: (line: string) => void = () => {}): string[] {
  const problems: string[] = [];
  for (const d of [...IOMMUFD_IOCTLS, IOMMU_TEST_IOCTL]) {
    const want = IO(IOMMUFD_TYPE, ioctlNr(d.request));
    if (d.request !== want) problems.push(`${d.name}: request ${d.request} is not _IO(0x3b, ${ioctlNr(d.request)})`);
    if (d.struct.minSize > d.struct.size) problems.push(`${d.name}: min size ${d.struct.minSize} > sizeof ${d.struct.size}`);
    log(`${d.name.padEnd(32)} 0x${d.request.toString(16)}  struct ${d.struct.name.padEnd(34)} size ${String(d.struct.size).padStart(3)}  min ${String(d.struct.minSize).padStart(3)}`);
  }
  for (const d of VFIO_CDEV_IOCTLS) log(`${d.name.padEnd(32)} 0x${d.request.toString(16)}  struct ${d.struct.name.padEnd(34)} size ${String(d.struct.size).padStart(3)}`);
  const codecs = allStructCodecs();
  for (const c of codecs) if (!roundTrips(c)) problems.push(`${c.name}: decode/encode does not round-trip`);
  log(`${codecs.length} structs round-trip; ${IOMMUFD_IOCTLS.length + 1 + VFIO_CDEV_IOCTLS.length} ioctls checked`);
  return problems;
}

if (process.argv[1] && /selfcheck\.[jt]s$/.test(process.argv[1])) {
  const problems = selfcheck((l) => console.log(l));
  for (const p of problems) console.error(`FAIL ${p}`);
  console.log(problems.length ? `uapi self-check: ${problems.length} problem(s)` : 'uapi self-check: ok');
  process.exit(problems.length ? 1 : 0);
}
