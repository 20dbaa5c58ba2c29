// Ports of the io page table scenarios of tools/testing/selftests/iommu/iommufd.c (the
// iommufd_ioas fixture), run straight against the module with the fixture's variants: no domain,
// one mock domain, two mock domains. Handler-level checks (flags, lookups, write-back) are core's.

import { describe, expect, it } from '@jest/globals';
import { IOMMU_READ } from '../driver/domain.js';
import { AddressSpace } from '../host/address-space.js';
import { MemFile } from '../host/mem-file.js';
import { framePinCount } from './pin-counts.js';
import { BUFFER_SIZE, fixture, MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_PAGE_SIZE, mockDomain, PAGE_SIZE, RW } from './test-kit.js';
import { IoPagetable } from './io-pagetable.js';
import { mmExited } from './pages.js';
import { ACCESS_RW_WRITE, ULONG_MAX, type IoasAccess } from './types.js';

const errno = (code: string) => expect.objectContaining({ code });
const U64_MAX = ULONG_MAX;

describe.each([
  ['no_domain', 0],
  ['mock_domain', 1],
  ['two_mock_domain', 2],
])('iommufd_ioas/%s', (_name, mockDomains) => {
  it('area', () => {
    const f = fixture(mockDomains);
    const { iopt, buffer, baseIova } = f;
    // Unmap of nothing maps to 0 bytes, which the handler reports as ENOENT.
    for (let i = 0n; i < 10n; i++) expect(iopt.unmap(i * PAGE_SIZE, PAGE_SIZE)).toBe(0n);
    for (let i = 0n; i < 10n; i++) f.mapFixed(buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
    for (let i = 0n; i < 10n; i++) expect(iopt.unmap(baseIova + i * PAGE_SIZE, PAGE_SIZE)).toBe(PAGE_SIZE);
    // Split fails
    f.mapFixed(buffer, PAGE_SIZE * 2n, baseIova + 16n * PAGE_SIZE);
    expect(() => iopt.unmap(baseIova + 16n * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('ENOENT'));
    expect(() => iopt.unmap(baseIova + 17n * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('ENOENT'));
    // Over map fails
    for (const [len, at] of [[2n, 16n], [1n, 16n], [1n, 17n], [2n, 15n], [3n, 15n]] as const) {
      expect(() => f.mapFixed(buffer, PAGE_SIZE * len, baseIova + at * PAGE_SIZE)).toThrow(errno('EEXIST'));
    }
    expect(iopt.unmapAll()).toBe(2n * PAGE_SIZE);
    expect(iopt.unmapAll()).toBe(0n);
    iopt.checkInvariants();
  });

  it('unmap_fully_contained_areas', () => {
    const f = fixture(mockDomains);
    const base = f.baseIova + 4n * PAGE_SIZE;
    for (let i = 0n; i < 4n; i++) f.mapFixed(f.buffer, 8n * PAGE_SIZE, base + i * 16n * PAGE_SIZE);
    expect(() => f.iopt.unmap(base - 4n * PAGE_SIZE, 8n * PAGE_SIZE)).toThrow(errno('ENOENT'));
    expect(() => f.iopt.unmap(base + 3n * 16n * PAGE_SIZE + 8n * PAGE_SIZE - 4n * PAGE_SIZE, 8n * PAGE_SIZE)).toThrow(errno('ENOENT'));
    expect(f.iopt.unmap(base - 4n * PAGE_SIZE, 3n * 16n * PAGE_SIZE + 8n * PAGE_SIZE + 4n * PAGE_SIZE)).toBe(32n * PAGE_SIZE);
    expect(f.iopt.areas()).toEqual([]);
  });

  it('area_auto_iova', () => {
    const f = fixture(mockDomains);
    const { iopt, buffer } = f;
    const iovas: bigint[] = [];
    for (let i = 0; i < 10; i++) iovas.push(f.map(buffer, PAGE_SIZE));
    for (const iova of iovas) expect(iopt.unmap(iova, PAGE_SIZE)).toBe(PAGE_SIZE);
    // Automatically aligned to the length's lowest set bit
    const lowBit = (n: bigint) => n & -n;
    iovas.length = 0;
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE_SIZE * i;
      const iova = mockDomains ? f.map(buffer, length) : f.map(1n << 31n, length);
      expect(iova % lowBit(length)).toBe(0n);
      iovas.push(iova);
    }
    iovas.forEach((iova, i) => iopt.unmap(iova, PAGE_SIZE * BigInt(i + 1)));
    // Avoids a reserved region
    const resv = { start: PAGE_SIZE * 4n, length: PAGE_SIZE * 100n };
    iopt.reserve(resv.start, resv.start + resv.length - 1n, null);
    iovas.length = 0;
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE_SIZE * i;
      const iova = f.map(buffer, length);
      expect(iova % lowBit(length)).toBe(0n);
      expect(iova > resv.start && iova < resv.start + resv.length).toBe(false);
      iovas.push(iova);
    }
    iovas.forEach((iova, i) => iopt.unmap(iova, PAGE_SIZE * BigInt(i + 1)));
    // Allowed region intersects with a reserved region
    expect(() => iopt.allowIovas([{ start: PAGE_SIZE, last: PAGE_SIZE * 600n }])).toThrow(errno('EADDRINUSE'));
    // Allocate from an allowed region
    const range = mockDomains
      ? { start: MOCK_APERTURE_START + PAGE_SIZE, last: MOCK_APERTURE_START + PAGE_SIZE * 600n - 1n }
      : { start: PAGE_SIZE * 200n, last: PAGE_SIZE * 600n - 1n };
    iopt.allowIovas([range]);
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE_SIZE * i;
      const iova = f.map(buffer, length);
      expect(iova % lowBit(length)).toBe(0n);
      expect(iova >= range.start && iova + length <= range.last + 1n).toBe(true);
    }
    iopt.checkInvariants();
  });

  it('reserved_overflow', () => {
    const f = fixture(mockDomains);
    f.iopt.reserve(6n, 6n + 0xffffffffffff8001n - 1n, null);
    expect(() => f.map(f.buffer, 0x5000n)).toThrow(errno('ENOSPC'));
  });

  it('area_allowed', () => {
    const f = fixture(mockDomains);
    const { iopt } = f;
    const range = { start: f.baseIova, last: f.baseIova + PAGE_SIZE * 600n };
    iopt.allowIovas([range]);
    const resv = [range.start + PAGE_SIZE, range.start + 2n * PAGE_SIZE - 1n] as const;
    expect(() => iopt.reserve(...resv, null)).toThrow(errno('EADDRINUSE'));
    iopt.allowIovas([]);
    iopt.reserve(...resv, null);
    expect(() => iopt.allowIovas([range])).toThrow(errno('EADDRINUSE'));
    expect(iopt.allowedIovas()).toEqual([]);
  });

  it('copy_area', () => {
    const f = fixture(mockDomains);
    f.mapFixed(f.buffer, PAGE_SIZE, f.baseIova);
    // Inside a single IOAS
    expect(f.iopt.copy(f.iopt, f.baseIova, PAGE_SIZE, { iova: f.baseIova + PAGE_SIZE, prot: RW })).toBe(f.baseIova + PAGE_SIZE);
    // Between IOASes
    const dst = new IoPagetable();
    expect(dst.copy(f.iopt, f.baseIova, PAGE_SIZE, { iova: 0n, prot: RW })).toBe(0n);
    f.iopt.checkInvariants();
    dst.checkInvariants();
  });

  it('iova_ranges', () => {
    const f = fixture(mockDomains);
    const alignment = mockDomains ? Number(MOCK_PAGE_SIZE) : 1;
    expect(f.iopt.alignment).toBe(alignment);
    const one = mockDomains ? [{ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST }] : [{ start: 0n, last: U64_MAX }];
    expect(f.iopt.iovaRanges()).toEqual(one);
    f.iopt.reserve(PAGE_SIZE, 2n * PAGE_SIZE - 1n, null);
    expect(f.iopt.iovaRanges()).toEqual(
      mockDomains ? one : [{ start: 0n, last: PAGE_SIZE - 1n }, { start: 2n * PAGE_SIZE, last: U64_MAX }],
    );
  });

  it('access_pin', () => {
    const f = fixture(mockDomains);
    const access: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: false, unmap: () => {} };
    f.iopt.addAccess(access);
    const frame0 = f.mm.frameOf(f.buffer)!;
    for (let npages = 1n; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
      const length = npages * PAGE_SIZE;
      f.mapFixed(f.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      // Single user
      const frames = f.iopt.pinPages(access, MOCK_APERTURE_START, length, 0);
      expect(frames).toEqual(Array.from({ length: Number(npages) }, (_, i) => frame0 + i));
      f.iopt.unpinPages(access, MOCK_APERTURE_START, length);
      expect(framePinCount(f.phys, frame0)).toBe(mockDomains ? 1 : 0);
      // Double user: the same pages pinned once
      f.iopt.pinPages(access, MOCK_APERTURE_START, length, 0);
      f.iopt.pinPages(access, MOCK_APERTURE_START, length, 0);
      expect(framePinCount(f.phys, frame0)).toBe(1);
      f.iopt.unpinPages(access, MOCK_APERTURE_START, length);
      f.iopt.unpinPages(access, MOCK_APERTURE_START, length);
      // Add/remove a domain with a user: it must see every page, pinned or not
      f.iopt.pinPages(access, MOCK_APERTURE_START, length, 0);
      const d = mockDomain();
      f.iopt.attachDomain(d);
      for (let off = 0n; off < BUFFER_SIZE; off += MOCK_PAGE_SIZE) {
        expect(d.iovaToPhys(MOCK_APERTURE_START + off)).toBe(BigInt(frame0) * PAGE_SIZE + off);
      }
      f.iopt.checkInvariants();
      f.iopt.detachDomain(d);
      f.iopt.unpinPages(access, MOCK_APERTURE_START, length);
      expect(f.iopt.unmap(MOCK_APERTURE_START, BUFFER_SIZE)).toBe(BUFFER_SIZE);
      expect(framePinCount(f.phys, frame0)).toBe(0);
    }
    f.iopt.removeAccess(access);
    expect(f.owner.user.lockedPages).toBe(0);
  });

  it('access_domain_destory: an access pin survives the domain going away', () => {
    const f = fixture(mockDomains);
    const buf = f.mm.alloc(Number(4n << 20n)).addr; // 2 * HUGEPAGE_SIZE
    f.mapFixed(buf, 4n << 20n, f.baseIova);
    const access: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: false, unmap: () => {} };
    f.iopt.addAccess(access);
    const frames = f.iopt.pinPages(access, f.baseIova + PAGE_SIZE, PAGE_SIZE, 0);
    expect(frames).toEqual([f.mm.frameOf(buf + PAGE_SIZE)]);
    for (const d of f.domains) f.iopt.detachDomain(d);
    expect(framePinCount(f.phys, frames[0]!)).toBe(1);
    expect(framePinCount(f.phys, frames[0]! + 1)).toBe(0);
    f.iopt.unpinPages(access, f.baseIova + PAGE_SIZE, PAGE_SIZE);
    f.iopt.removeAccess(access);
    expect(framePinCount(f.phys, frames[0]!)).toBe(0);
    expect(f.owner.user.lockedPages).toBe(0);
  });

  it('access_pin_unmap: UNMAP asks the access to let go, then unmaps', () => {
    const f = fixture(mockDomains);
    const pinned: [bigint, bigint][] = [];
    const access: IoasAccess = {
      iovaAlignment: Number(PAGE_SIZE),
      internal: false,
      unmap(iova, length) {
        // The selftest access drops every pin inside the range ("kernel removed the item for us").
        for (const [i, l] of [...pinned]) {
          if (i >= iova && i + l <= iova + length) {
            f.iopt.unpinPages(access, i, l);
            pinned.splice(pinned.indexOf(pinned.find((p) => p[0] === i && p[1] === l)!), 1);
          }
        }
      },
    };
    f.iopt.addAccess(access);
    f.mapFixed(f.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    f.iopt.pinPages(access, MOCK_APERTURE_START, BUFFER_SIZE, 0);
    pinned.push([MOCK_APERTURE_START, BUFFER_SIZE]);
    expect(f.iopt.unmap(MOCK_APERTURE_START, BUFFER_SIZE)).toBe(BUFFER_SIZE);
    expect(pinned).toEqual([]);
    expect(framePinCount(f.phys, f.mm.frameOf(f.buffer)!)).toBe(0);
  });

  const checkAccessRw = (f: ReturnType<typeof fixture>, access: IoasAccess, iova: bigint) => {
    const buf = f.bufferBytes;
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7 + 3) & 0xff;
    for (let at = iova + PAGE_SIZE - 50n; at < iova + PAGE_SIZE + 50n; at++) {
      for (let len = 1; len < 64; len += 7) {
        const tmp = new Uint8Array(len);
        f.iopt.rw(access, at, tmp, 0);
        expect(tmp).toEqual(buf.subarray(Number(at - iova), Number(at - iova) + len));
        const src = Uint8Array.from({ length: len }, (_, i) => (i * 13 + len) & 0xff);
        f.iopt.rw(access, at, src, ACCESS_RW_WRITE);
        expect(buf.subarray(Number(at - iova), Number(at - iova) + len)).toEqual(src);
      }
    }
    const all = new Uint8Array(Number(BUFFER_SIZE));
    f.iopt.rw(access, iova, all, 0);
    expect(all).toEqual(buf);
  };

  it('access_rw', () => {
    const f = fixture(mockDomains);
    const access: IoasAccess = { iovaAlignment: 1, internal: false };
    f.iopt.addAccess(access);
    const iova = f.map(f.buffer, BUFFER_SIZE);
    checkAccessRw(f, access, iova);
    f.iopt.unmap(iova, BUFFER_SIZE);
    f.iopt.removeAccess(access);
  });

  it('access_rw_unaligned', () => {
    const f = fixture(mockDomains);
    const access: IoasAccess = { iovaAlignment: 1, internal: false };
    f.iopt.addAccess(access);
    const iova = f.baseIova + MOCK_PAGE_SIZE;
    f.mapFixed(f.buffer, BUFFER_SIZE, iova);
    checkAccessRw(f, access, iova);
  });

  it('fork_gone: pages of an exited process can be read through existing pins only', () => {
    const f = fixture(mockDomains);
    const access: IoasAccess = { iovaAlignment: 1, internal: false };
    f.iopt.addAccess(access);
    const child = new AddressSpace(f.phys);
    const childBuf = child.alloc(Number(BUFFER_SIZE));
    childBuf.bytes.fill(0x5a);
    f.iopt.mapUser(child, childBuf.addr, BUFFER_SIZE, { iova: MOCK_APERTURE_START, prot: RW, owner: { ...f.owner, mm: child }, rlimitMode: 0 });
    mmExited(child);
    if (mockDomains) {
      // Everything was pinned within the child: a new domain is filled from the pins.
      const d = mockDomain();
      f.iopt.attachDomain(d);
      const out = new Uint8Array(64);
      f.iopt.rw(access, MOCK_APERTURE_START + PAGE_SIZE - 7n, out, 0);
      expect(out.every((b) => b === 0x5a)).toBe(true);
    } else {
      expect(() => f.iopt.attachDomain(mockDomain())).toThrow(errno('EFAULT'));
      expect(() => f.iopt.rw(access, MOCK_APERTURE_START, new Uint8Array(4), 0)).toThrow(errno('EFAULT'));
    }
  });

  it('fork_present: pages of another live process are pinned from its mm', () => {
    const f = fixture(mockDomains);
    const access: IoasAccess = { iovaAlignment: 1, internal: false };
    f.iopt.addAccess(access);
    const child = new AddressSpace(f.phys);
    const childBuf = child.alloc(Number(BUFFER_SIZE));
    childBuf.bytes.fill(0x33);
    f.iopt.mapUser(child, childBuf.addr, BUFFER_SIZE, { iova: MOCK_APERTURE_START, prot: RW, owner: { ...f.owner, mm: child }, rlimitMode: 0 });
    f.iopt.attachDomain(mockDomain());
    const out = new Uint8Array(Number(BUFFER_SIZE));
    f.iopt.rw(access, MOCK_APERTURE_START, out, 0);
    expect(out.every((b) => b === 0x33)).toBe(true);
  });

  it('ioas_option_huge_pages', () => {
    const f = fixture(mockDomains);
    expect(f.iopt.hugePages).toBe(true);
    f.iopt.setHugePages(false);
    expect(f.iopt.hugePages).toBe(false);
    expect(f.iopt.alignment).toBe(Number(PAGE_SIZE));
    f.iopt.setHugePages(true);
    expect(f.iopt.alignment).toBe(mockDomains ? Number(MOCK_PAGE_SIZE) : 1);
  });

  it('ioas_iova_alloc', () => {
    const f = fixture(mockDomains);
    for (let length = 1n; length !== PAGE_SIZE * 2n; length++) {
      if (mockDomains && length % MOCK_PAGE_SIZE) {
        expect(() => f.map(f.buffer, length)).toThrow(errno('EINVAL'));
      } else {
        const iova = f.map(f.buffer, length);
        expect(f.iopt.unmap(iova, length)).toBe(length);
      }
    }
  });

  it('ioas_align_change', () => {
    if (mockDomains) return;
    const f = fixture(mockDomains);
    f.mapFixed(f.buffer, PAGE_SIZE, MOCK_APERTURE_START);
    f.iopt.setHugePages(false);
    // Misalignment is rejected at map time
    expect(() => f.mapFixed(f.buffer + MOCK_PAGE_SIZE, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE)).toThrow(errno('EINVAL'));
    f.iopt.setHugePages(false);
    f.iopt.setHugePages(true);
    // Confirm misalignment is rejected during alignment upgrade
    f.mapFixed(f.buffer + MOCK_PAGE_SIZE, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
    expect(() => f.iopt.setHugePages(false)).toThrow(errno('EADDRINUSE'));
    expect(f.iopt.hugePages).toBe(true);
    f.iopt.unmap(MOCK_APERTURE_START + PAGE_SIZE, PAGE_SIZE);
    f.iopt.unmap(MOCK_APERTURE_START, PAGE_SIZE);
  });

  it('copy_sweep', () => {
    const f = fixture(mockDomains);
    const dst = new IoPagetable();
    const lastIova = mockDomains ? MOCK_APERTURE_START + BUFFER_SIZE - 1n : MOCK_APERTURE_START + BUFFER_SIZE - 2n;
    f.mapFixed(f.buffer, lastIova - MOCK_APERTURE_START + 1n, MOCK_APERTURE_START);
    for (let iova = MOCK_APERTURE_START - PAGE_SIZE; iova <= lastIova; iova += 511n) {
      const run = () => dst.copy(f.iopt, iova, MOCK_PAGE_SIZE, { iova: MOCK_APERTURE_START, prot: RW });
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1n > lastIova) {
        expect(run).toThrow(errno('ENOENT'));
      } else {
        expect(run()).toBe(MOCK_APERTURE_START);
        expect(dst.unmap(MOCK_APERTURE_START, MOCK_PAGE_SIZE)).toBe(MOCK_PAGE_SIZE);
      }
    }
    dst.destroy();
  });

  it('read-only pages: COPY asking for WRITE is EPERM, access writes are EPERM', () => {
    const f = fixture(mockDomains);
    const iova = f.mapFixed(f.buffer, PAGE_SIZE, f.baseIova, IOMMU_READ);
    expect(() => f.iopt.copy(f.iopt, iova, PAGE_SIZE, { prot: RW })).toThrow(errno('EPERM'));
    const access: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: false, unmap: () => {} };
    f.iopt.addAccess(access);
    expect(() => f.iopt.pinPages(access, iova, PAGE_SIZE, ACCESS_RW_WRITE)).toThrow(errno('EPERM'));
    expect(() => f.iopt.rw(access, iova, new Uint8Array(4), ACCESS_RW_WRITE)).toThrow(errno('EPERM'));
    expect(f.iopt.copy(f.iopt, iova, PAGE_SIZE, { prot: IOMMU_READ })).toBeGreaterThan(0n);
  });
});

// The iommufd_mock_domain fixture's io page table scenarios (no huge pages; user memory and memfd).
describe.each([
  ['one_domain', 1, false],
  ['two_domains', 2, false],
  ['one_domain_file', 1, true],
])('iommufd_mock_domain/%s', (_name, mockDomains, file) => {
  const MMAP_BUF_SIZE = PAGE_SIZE * 8n;

  /** A fresh buffer (user memory or a memfd mmap) and how to map a piece of it. */
  const source = (f: ReturnType<typeof fixture>) => {
    if (!file) {
      const buf = f.mm.alloc(Number(MMAP_BUF_SIZE)).addr;
      return { buf, map: (start: bigint, length: bigint) => f.map(buf + start, length) };
    }
    const mfd = new MemFile(f.phys);
    mfd.truncate(Number(MMAP_BUF_SIZE));
    const { run, runOffset } = mfd.slice(0, Number(MMAP_BUF_SIZE))!;
    const buf = f.mm.mapShared(run, runOffset, Number(MMAP_BUF_SIZE), true).addr;
    return { buf, map: (start: bigint, length: bigint) => f.iopt.mapFile(mfd, start, length, { prot: RW, owner: f.owner, rlimitMode: 0 }) };
  };

  /** MD_CHECK_MAP on every domain: each mock page translates to the page behind the buffer. */
  const checkMockIova = (f: ReturnType<typeof fixture>, uptr: bigint, iova: bigint, length: bigint) => {
    for (const d of f.iopt.domains()) {
      for (let off = 0n; off < length; off += MOCK_PAGE_SIZE) {
        const va = uptr + off;
        expect(d.iovaToPhys(iova + off)).toBe(BigInt(f.mm.frameOf(va)!) * PAGE_SIZE + (va % PAGE_SIZE));
      }
    }
  };

  /** MD_CHECK_REFS: every page of [uptr, uptr + length) is pinned exactly `refs` times. */
  const checkRefs = (f: ReturnType<typeof fixture>, uptr: bigint, length: bigint, refs: number) => {
    for (let off = 0n; off < length; off += PAGE_SIZE) expect(framePinCount(f.phys, f.mm.frameOf(uptr + off)!)).toBe(refs);
  };

  it('basic', () => {
    const f = fixture(mockDomains);
    const iova = f.map(f.buffer, PAGE_SIZE);
    checkMockIova(f, f.buffer, iova, PAGE_SIZE);
    if (!file) {
      // EFAULT half way through the mapping (the half past the end is unmapped), and on the first page.
      const half = f.mm.alloc(Number(MMAP_BUF_SIZE / 2n)).addr;
      expect(() => f.map(half, MMAP_BUF_SIZE)).toThrow(errno('EFAULT'));
      expect(() => f.map(half + (1n << 36n), MMAP_BUF_SIZE)).toThrow(errno('EFAULT'));
    } else {
      const mfd = new MemFile(f.phys);
      mfd.truncate(Number(MMAP_BUF_SIZE));
      const opts = { prot: RW, owner: f.owner, rlimitMode: 0 as const };
      expect(() => f.iopt.mapFile(mfd, 0n, MMAP_BUF_SIZE + 1n, opts)).toThrow(errno('EINVAL'));
      mfd.truncate(0);
      expect(() => f.iopt.mapFile(mfd, 0n, MMAP_BUF_SIZE, opts)).toThrow(errno('EINVAL'));
    }
    expect(f.iopt.areas().length).toBe(1);
  });

  it('all_aligns', () => {
    const f = fixture(mockDomains);
    const { buf, map } = source(f);
    checkRefs(f, buf, MMAP_BUF_SIZE, 0);
    for (let start = 0n; start < MMAP_BUF_SIZE; start += MOCK_PAGE_SIZE) {
      for (let end = start + MOCK_PAGE_SIZE; end < MMAP_BUF_SIZE; end += MOCK_PAGE_SIZE) {
        const length = end - start;
        const iova = map(start, length);
        checkMockIova(f, buf + start, iova, length);
        checkRefs(f, buf + (start / PAGE_SIZE) * PAGE_SIZE, (end / PAGE_SIZE) * PAGE_SIZE - (start / PAGE_SIZE) * PAGE_SIZE, 1);
        expect(f.iopt.unmap(iova, length)).toBe(length);
      }
    }
    checkRefs(f, buf, MMAP_BUF_SIZE, 0);
  });

  it('all_aligns_copy: add and remove a domain while the area exists', () => {
    const f = fixture(mockDomains);
    const { buf, map } = source(f);
    for (let start = 0n; start < MMAP_BUF_SIZE; start += MOCK_PAGE_SIZE) {
      for (let end = start + MOCK_PAGE_SIZE; end < MMAP_BUF_SIZE; end += MOCK_PAGE_SIZE) {
        const length = end - start;
        const iova = map(start, length);
        const extra = mockDomain();
        f.iopt.attachDomain(extra);
        checkMockIova(f, buf + start, iova, length);
        checkRefs(f, buf + (start / PAGE_SIZE) * PAGE_SIZE, (end / PAGE_SIZE) * PAGE_SIZE - (start / PAGE_SIZE) * PAGE_SIZE, 1);
        f.iopt.detachDomain(extra);
        expect(extra.mappedBytes).toBe(0n);
        expect(f.iopt.unmap(iova, length)).toBe(length);
      }
    }
    checkRefs(f, buf, MMAP_BUF_SIZE, 0);
  });
});
