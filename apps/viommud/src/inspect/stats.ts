// Per-client ioctl counters for the inspection page, kept without touching Session: the backend is
// wrapped so each process it spawns counts its own ioctls (by request number; names are looked up
// only when a snapshot is taken) and its guest invalidations (IOMMU_HWPT_INVALIDATE and the
// entries the kernel reports handled in entry_num).
import { IOMMU_HWPT_INVALIDATE, iommu_hwpt_invalidate, ioctlByRequest, type IoctlArg } from '@viommu/uapi';
import type { Backend } from '../backend.js';

/** _IOC_TYPE of every iommufd, VFIO and selftest ioctl (';'): those are counted by number in an array. */
const IOMMUFD_TYPE = 0x3b;

export class IoctlStats {
  /** Calls by _IOC_NR for requests of type ';' (iommufd, VFIO); the request number of each, for naming. */
  private readonly byNr = new Float64Array(256);
  private readonly requestOfNr = new Float64Array(256);
  /** Calls of any other request (none from a well-behaved VMM), by request number. */
  private readonly others = new Map<number, number>();
  total = 0;
  errors = 0;
  /** Successful IOMMU_HWPT_INVALIDATE calls (on a nested HWPT or a vIOMMU). */
  invalidations = 0;
  /** Invalidation entries handled (entry_num written back, on success and on failure). */
  invalidationEntries = 0;

  record(request: number, arg: IoctlArg, ok: boolean): void {
    this.total++;
    if (!ok) this.errors++;
    if (((request >>> 8) & 0xff) === IOMMUFD_TYPE) {
      const nr = request & 0xff;
      this.byNr[nr]!++;
      this.requestOfNr[nr] = request;
    } else {
      this.others.set(request, (this.others.get(request) ?? 0) + 1);
    }
    if (request === IOMMU_HWPT_INVALIDATE && arg instanceof Uint8Array && arg.length >= iommu_hwpt_invalidate.size) {
      if (ok) this.invalidations++;
      this.invalidationEntries += iommu_hwpt_invalidate.get(arg, 'entry_num') as number;
    }
  }

  /** Calls by ioctl name (unknown requests by number), most frequent first. */
  byName(): Record<string, number> {
    const rows: [string, number][] = [];
    const name = (req: number) => ioctlByRequest(req)?.name ?? `0x${(req >>> 0).toString(16)}`;
    for (let nr = 0; nr < 256; nr++) if (this.byNr[nr]) rows.push([name(this.requestOfNr[nr]!), this.byNr[nr]!]);
    for (const [req, n] of this.others) rows.push([name(req), n]);
    rows.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return Object.fromEntries(rows);
  }
}

/** A backend whose processes count their ioctls; `statsOf(p)` reads them. */
export interface InstrumentedBackend extends Backend {
  statsOf(p: object): IoctlStats | undefined;
}

export function instrumentBackend(inner: Backend): InstrumentedBackend {
  const stats = new WeakMap<object, IoctlStats>();
  return {
    // Everything else is the inner backend's (spread, so members added to Backend later pass through).
    ...inner,
    spawn() {
      const p = inner.spawn();
      const s = new IoctlStats();
      // The process object itself is kept (the backend's other calls identify it), and only its
      // ioctl method is replaced by a counting one.
      const ioctl = p.ioctl.bind(p);
      p.ioctl = (fd, request, arg) => {
        let ok = false;
        try {
          const ret = ioctl(fd, request, arg);
          ok = true;
          return ret;
        } finally {
          s.record(request >>> 0, arg, ok);
        }
      };
      stats.set(p, s);
      return p;
    },
    statsOf: (p) => stats.get(p),
  };
}
