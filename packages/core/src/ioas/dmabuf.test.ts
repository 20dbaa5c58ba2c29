import { describe, expect, it } from '@jest/globals';
import { errnoOf as errno } from '../testing/harness.js';
import { DmaBuf } from './dmabuf.js';
import { IoPagetable } from './io-pagetable.js';
import { PAGE_SIZE, RW, fixture, mockDomain } from './test-kit.js';
import { MemlockUser, type IoasAccess } from './types.js';

const BUF_SIZE = 4n * PAGE_SIZE;

function withDmabuf(mockDomains: number) {
  // A memlock limit of 0: any charge would fail with ENOMEM.
  const f = fixture(mockDomains, { memlockLimit: 0, user: new MemlockUser(1000) });
  const run = f.phys.allocRun(Number(BUF_SIZE / PAGE_SIZE));
  const buf = new DmaBuf(f.phys, run, Number(BUF_SIZE));
  const map = (start: bigint, length: bigint, iova?: bigint) => f.iopt.mapDmabuf(buf, start, length, { prot: RW, owner: f.owner, rlimitMode: 0, ...(iova === undefined ? {} : { iova }) });
  const pa = (page: number) => BigInt(run.firstFrame + page) * PAGE_SIZE;
  return { f, run, buf, map, pa };
}

function revoke(buf: DmaBuf, revoked: boolean): void {
  buf.revoked = revoked;
  buf.invalidateMappings();
}

describe('IOAS_MAP_FILE of a dma-buf', () => {
  it('checks the range against the buffer at map time, with no domain (dmabuf_simple)', () => {
    const { f, map } = withDmabuf(0);
    expect(errno(() => map(0n, 0n))).toBe('EINVAL');
    expect(errno(() => map(BUF_SIZE, BUF_SIZE))).toBe('EINVAL');
    expect(errno(() => map(0n, BUF_SIZE + 1n))).toBe('EINVAL');
    expect(errno(() => map(PAGE_SIZE, BUF_SIZE))).toBe('EINVAL');
    expect(f.iopt.areas()).toHaveLength(0);
    map(0n, BUF_SIZE);
    expect(f.iopt.areas()).toHaveLength(1);
  });

  it.each([1, 2])('maps the exporter frames into %i domain(s) without pinning or memlock charge', (n) => {
    const { f, map, pa } = withDmabuf(n);
    const iova = map(PAGE_SIZE, 2n * PAGE_SIZE);
    for (const d of f.domains) {
      expect(d.iovaToPhys(iova)).toBe(pa(1));
      expect(d.iovaToPhys(iova + PAGE_SIZE + 5n)).toBe(pa(2) + 5n);
    }
    expect(f.owner.user.lockedPages).toBe(0);
    f.iopt.checkInvariants();
    expect(f.iopt.unmap(iova, 2n * PAGE_SIZE)).toBe(2n * PAGE_SIZE);
    for (const d of f.domains) expect(d.mappedBytes).toBe(0n);
  });

  it('a domain attached later is filled with the dma-buf', () => {
    const { f, map, pa } = withDmabuf(0);
    const iova = map(0n, BUF_SIZE, 1n << 24n);
    const d = mockDomain();
    f.iopt.attachDomain(d);
    expect(d.iovaToPhys(iova + 3n * PAGE_SIZE)).toBe(pa(3));
    f.iopt.detachDomain(d);
    expect(d.mappedBytes).toBe(0n);
  });

  it('revocation unmaps it from every domain; new maps fail with ENODEV until restored (dmabuf_revoke)', () => {
    const { f, buf, map, pa } = withDmabuf(2);
    const iova = map(0n, BUF_SIZE);
    revoke(buf, true);
    for (const d of f.domains) expect(d.mappedBytes).toBe(0n);
    f.iopt.checkInvariants();
    // A domain attached now gets nothing for the revoked area.
    const late = mockDomain();
    f.iopt.attachDomain(late);
    expect(late.mappedBytes).toBe(0n);
    expect(errno(() => map(0n, BUF_SIZE))).toBe('ENODEV');
    revoke(buf, false);
    const iova2 = map(0n, BUF_SIZE);
    for (const d of [...f.domains, late]) {
      expect(d.iovaToPhys(iova2)).toBe(pa(0));
      // The first area stays revoked: restoring maps only what is mapped afterwards.
      expect(d.iovaToPhys(iova)).toBeUndefined();
    }
    expect(f.iopt.unmap(iova, BUF_SIZE)).toBe(BUF_SIZE);
    expect(map(0n, BUF_SIZE, iova)).toBe(iova);
    expect(late.iovaToPhys(iova + PAGE_SIZE)).toBe(pa(1));
    f.iopt.checkInvariants();
  });

  it('cannot be cut, pinned or read by an access, nor moved by CHANGE_PROCESS', () => {
    const { f, map } = withDmabuf(1);
    const iova = map(0n, BUF_SIZE);
    expect(errno(() => f.iopt.cutIova([iova + PAGE_SIZE - 1n]))).toBe('EOPNOTSUPP');
    const access: IoasAccess = { iovaAlignment: Number(PAGE_SIZE), internal: false, unmap: () => {} };
    f.iopt.addAccess(access);
    expect(errno(() => f.iopt.pinPages(access, iova, PAGE_SIZE, 0))).toBe('EINVAL');
    expect(errno(() => f.iopt.rw(access, iova, new Uint8Array(8), 0))).toBe('EINVAL');
    expect(errno(() => IoPagetable.changeProcess([f.iopt], f.owner))).toBe('EINVAL');
  });

  it('COPY shares the pages and their attachment; the buffer memory goes back after the file and the last area', () => {
    const { f, buf, map, run } = withDmabuf(1);
    const iova = map(0n, BUF_SIZE);
    const other = new IoPagetable();
    const d2 = mockDomain();
    other.attachDomain(d2);
    const iova2 = other.copy(f.iopt, iova, BUF_SIZE, { prot: RW });
    // One attachment: both areas share the same pages.
    expect(buf.attachments).toBe(1);
    revoke(buf, false);
    expect(f.domains[0]!.mappedBytes).toBe(0n);
    expect(d2.mappedBytes).toBe(0n);
    buf.put(); // the fd closed
    expect(f.phys.runAt(run.firstFrame * Number(PAGE_SIZE))).toBeDefined();
    f.iopt.unmapAll();
    expect(f.phys.runAt(run.firstFrame * Number(PAGE_SIZE))).toBeDefined();
    other.unmap(iova2, BUF_SIZE);
    expect(buf.attachments).toBe(0);
    expect(f.phys.runAt(run.firstFrame * Number(PAGE_SIZE))).toBeUndefined();
  });
});
