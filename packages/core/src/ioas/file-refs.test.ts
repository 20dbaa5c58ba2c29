// Who keeps a memfd's pages alive (the kernel's file references), and pins after process exit.

import { describe, expect, it } from '@jest/globals';
import { errnoOf as errno } from '../testing/harness.js';
import { MemFile } from '../host/mem-file.js';
import { createSimHost } from '../host/sim-host.js';
import { IoPagetable } from './io-pagetable.js';
import { MOCK_APERTURE_START, PAGE_SIZE, RW, fixture, mockDomain } from './test-kit.js';
import { MemlockUser } from './types.js';

describe('memfd references', () => {
  it('an io page table keeps a closed memfd until its last area is unmapped', () => {
    const f = fixture(0);
    const before = f.phys.allocatedFrameCount;
    const file = new MemFile(f.phys);
    file.truncate(Number(4n * PAGE_SIZE));
    const opts = { prot: RW, owner: f.owner, rlimitMode: 0 as const };
    // Inside the mock aperture, so that a domain can be attached later.
    const iova = f.iopt.mapFile(file, 0n, 4n * PAGE_SIZE, { ...opts, iova: MOCK_APERTURE_START });
    // COPY within the IOAS makes a second area over the same pages.
    const iova2 = f.iopt.copy(f.iopt, iova, 2n * PAGE_SIZE, { ...opts, iova: MOCK_APERTURE_START + 16n * PAGE_SIZE });
    file.put(); // the last fd closed
    expect(f.phys.allocatedFrameCount).toBe(before + 4);
    const d = mockDomain();
    f.iopt.attachDomain(d); // pinning still finds the pages
    expect(f.iopt.unmap(iova, 4n * PAGE_SIZE)).toBe(4n * PAGE_SIZE);
    expect(f.phys.allocatedFrameCount).toBe(before + 4);
    f.iopt.unmap(iova2, 2n * PAGE_SIZE);
    expect(f.phys.allocatedFrameCount).toBe(before);
  });

  it('a failed MAP_FILE takes no reference', () => {
    const f = fixture(1);
    const before = f.phys.allocatedFrameCount;
    const file = new MemFile(f.phys);
    file.truncate(Number(PAGE_SIZE));
    // Past the end of the file: pinning fails with EINVAL.
    expect(errno(() => f.iopt.mapFile(file, 0n, 2n * PAGE_SIZE, { prot: RW, owner: f.owner, rlimitMode: 0 }))).toBe('EINVAL');
    file.put();
    expect(f.phys.allocatedFrameCount).toBe(before);
  });

  it('an mmap keeps a memfd after its fd is closed, until munmap', () => {
    const host = createSimHost({ iommus: [] });
    const proc = host.spawn();
    const before = host.physical.allocatedFrameCount;
    const fd = proc.memfdCreate('buf');
    proc.ftruncate(fd, 8192);
    const m = proc.mmap(fd, 8192, 0n);
    proc.close(fd);
    m.bytes[5] = 7;
    expect(host.physical.allocatedFrameCount).toBe(before + 2);
    proc.munmap(m.addr, 8192);
    expect(host.physical.allocatedFrameCount).toBe(before);
  });
});

describe('process exit', () => {
  it('pages of an exited process can no longer be pinned (mmExited)', () => {
    const host = createSimHost({ iommus: [] });
    const proc = host.spawn();
    const buf = proc.memory.alloc(Number(2n * PAGE_SIZE));
    const iopt = new IoPagetable();
    const owner = { mm: proc.memory, user: new MemlockUser(1), memlockLimit: Infinity, capIpcLock: true };
    iopt.mapUser(proc.memory, buf.addr, 2n * PAGE_SIZE, { iova: MOCK_APERTURE_START, prot: RW, owner, rlimitMode: 0 });
    proc.exit();
    expect(errno(() => iopt.attachDomain(mockDomain()))).toBe('EFAULT');
  });
});
