#!/usr/bin/env node
// Two clients of one `viommud --backend native` (ADR 0125): each connection has a session process
// of its own, so the real kernel must keep them apart exactly as two processes.
//   node isolation.mjs --socket PATH [--json OUT]
// A maps a buffer into its IOAS and reads it back through a selftest access; B then tries A's
// user_va in its own IOAS_MAP (with a mock domain attached, so the kernel pins at once: EFAULT,
// the address is not mapped in B's mm), then without a domain (mapped lazily) through an access
// (EFAULT, or B's own bytes: never A's), A's fd numbers (EBADF), and A's object IDs in its own
// context (ENOENT); afterwards A's mapping still holds A's bytes and unmaps whole. Prints one line
// per check and "N passed, N failed".
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const load = (p) => import(pathToFileURL(resolve(repo, p)).href);
const { connectDaemonProcess } = await load('packages/protocol/dist/index.js');
const uapi = await load('packages/uapi/dist/index.js');
const { Self, enc } = await load('packages/backend-mock/dist/index.js');

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const socket = opt('--socket');
if (!socket) {
  process.stderr.write('usage: isolation.mjs --socket PATH [--json OUT]\n');
  process.exit(2);
}

const PAGE = 4096;
const results = [];
function check(name, f) {
  try {
    const why = f();
    results.push(why ? { name, status: 'fail', message: why } : { name, status: 'pass' });
  } catch (e) {
    results.push({ name, status: 'fail', message: String(e?.message ?? e) });
  }
  const r = results[results.length - 1];
  console.log(`${r.status.toUpperCase()} isolation.${name}${r.message ? `: ${r.message}` : ''}`);
}
const errnoOf = (f) => {
  try {
    f();
    return 'success';
  } catch (e) {
    return e?.code ?? String(e);
  }
};
const expectErrno = (want, f) => {
  const got = errnoOf(f);
  return got === want ? undefined : `expected ${want}, got ${got}`;
};

// A generous wait: under TCG a session process (ADR 0125) can take a minute to start.
const a = await connectDaemonProcess(socket, { clientName: 'isolation-a', timeoutMs: 600_000 });
const b = await connectDaemonProcess(socket, { clientName: 'isolation-b', timeoutMs: 600_000 });
try {
  // A: an IOAS with 4 pages of its memory mapped at a fixed IOVA, and an access that reads them.
  const sa = new Self(a, a.memory.alloc(PAGE));
  sa.fd = a.open('/dev/iommu');
  const aSecondFd = a.open('/dev/iommu'); // a number B has not opened
  sa.ioas_id = sa.testIoctlIoasAlloc();
  const buf = a.memory.alloc(4 * PAGE);
  for (let i = 0; i < buf.bytes.length; i++) buf.bytes[i] = (i * 13 + 5) & 0xff;
  const IOVA = 0x400000;
  sa.testIoctlIoasMapFixed(buf, 4 * PAGE, IOVA);
  const access = sa.testCmdCreateAccess(sa.ioas_id, 0);
  const tmp = a.memory.alloc(PAGE);
  const readBack = () => {
    tmp.bytes.fill(0);
    sa.testCmd(enc(uapi.iommu_test_cmd_access_rw, { op: uapi.IOMMU_TEST_OP_ACCESS_RW, id: access, iova: IOVA + PAGE, length: 64, uptr: tmp.addr, flags: 0 }));
    for (let i = 0; i < 64; i++) if (tmp.bytes[i] !== buf.bytes[PAGE + i]) return `byte ${i}: ${tmp.bytes[i]} != ${buf.bytes[PAGE + i]}`;
    return undefined;
  };
  check('a_reads_its_mapping', readBack);

  // B: its own context and IOAS.
  const sb = new Self(b, b.memory.alloc(PAGE));
  sb.fd = b.open('/dev/iommu');
  // First, while B holds nothing but its /dev/iommu: A's second fd number is not open in B's process.
  check('b_ioctl_on_a_fd_is_ebadf', () =>
    aSecondFd === sb.fd
      ? `A's second fd ${aSecondFd} is B's own number too (cannot tell)`
      : expectErrno('EBADF', () => b.ioctl(aSecondFd, uapi.IOMMU_IOAS_ALLOC, enc(uapi.iommu_ioas_alloc, {}))),
  );
  check('b_close_of_a_fd_is_ebadf', () => expectErrno('EBADF', () => b.close(aSecondFd)));
  sb.ioas_id = sb.testIoctlIoasAlloc();
  // A domain makes IOAS_MAP pin the pages there and then (without one, iommufd pins lazily).
  const bDomainIoas = sb.testIoctlIoasAlloc();
  sb.testCmdMockDomain(bDomainIoas);
  const RW = uapi.IOMMU_IOAS_MAP_READABLE | uapi.IOMMU_IOAS_MAP_WRITEABLE;
  check('b_map_of_a_user_va_is_efault', () =>
    expectErrno('EFAULT', () => b.ioctl(sb.fd, uapi.IOMMU_IOAS_MAP, enc(uapi.iommu_ioas_map, { flags: RW, ioas_id: bDomainIoas, user_va: buf.addr, length: 4 * PAGE }))),
  );
  // Mapped lazily (no domain): the first access pins, in B's mm.
  check('b_access_through_a_user_va_never_reads_a', () => {
    const iova = sb.testIoctlIoasMap(buf.addr, 4 * PAGE);
    const bAccess = sb.testCmdCreateAccess(sb.ioas_id, 0);
    const out = b.memory.alloc(PAGE);
    const got = errnoOf(() =>
      sb.testCmd(enc(uapi.iommu_test_cmd_access_rw, { op: uapi.IOMMU_TEST_OP_ACCESS_RW, id: bAccess, iova: iova + PAGE, length: 64, uptr: out.addr, flags: 0 })),
    );
    sb.testIoctlIoasUnmap(iova, 4 * PAGE);
    if (got === 'EFAULT') return undefined;
    if (got !== 'success') return `expected EFAULT, got ${got}`;
    for (let i = 0; i < 64; i++) if (out.bytes[i] !== buf.bytes[PAGE + i]) return undefined; // B's own memory there
    return "B read A's bytes";
  });
  check('b_destroy_of_a_ioas_id_is_enoent', () =>
    sa.ioas_id === sb.ioas_id ? undefined : expectErrno('ENOENT', () => b.ioctl(sb.fd, uapi.IOMMU_DESTROY, enc(uapi.iommu_destroy, { id: sa.ioas_id }))),
  );
  check('b_unmap_in_its_ioas_finds_nothing', () => expectErrno('ENOENT', () => sb.testIoctlIoasUnmap(IOVA, 4 * PAGE)));

  // A afterwards: the same bytes through the same mapping, which unmaps whole.
  check('a_mapping_intact', readBack);
  check('a_second_fd_still_open', () => expectErrno('success', () => a.ioctl(aSecondFd, uapi.IOMMU_IOAS_ALLOC, enc(uapi.iommu_ioas_alloc, {}))));
  sa.testCmdDestroyAccess?.(access);
  check('a_unmaps_whole', () => {
    const n = sa.testIoctlIoasUnmap(IOVA, 4 * PAGE);
    return n === BigInt(4 * PAGE) ? undefined : `unmapped ${n}`;
  });
} catch (e) {
  results.push({ name: 'setup', status: 'fail', message: String(e?.message ?? e) });
  console.log(`FAIL isolation.setup: ${e?.message ?? e}`);
} finally {
  a.disconnect();
  b.disconnect();
}
const passed = results.filter((r) => r.status === 'pass').length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed, 0 skipped`);
const json = opt('--json');
if (json) writeFileSync(json, JSON.stringify({ target: 'daemon-isolation', results }, null, 2));
process.exit(failed ? 1 : 0);
