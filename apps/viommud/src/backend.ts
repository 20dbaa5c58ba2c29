// Backends: where a session's syscalls really run. `sim` is one simulated host shared by every
// connection (like one machine's /dev/iommu), each connection a separate simulated process;
// `native` opens a NativeProcess on the real kernel per connection (through @viommu/native).
import { AddressSpace, createSimHost, FRAME_SIZE, OBJ_NAMES, type SimHost, type SimProcess } from '@viommu/core';
import type { Process } from '@viommu/uapi';

export interface BackendProcess extends Process {
  memfdCreate?(name?: string): number;
  ftruncate?(fd: number, size: number): void;
}

export interface Backend {
  readonly name: string;
  spawn(): BackendProcess;
  /** Process exit: every fd closed (objects torn down in dependency order, pending faults answered). */
  exit(p: BackendProcess): void;
  /** Live iommufd objects by type name held by `p` (empty when the backend cannot tell). */
  liveObjects(p: BackendProcess): Map<string, number>;
  /** Objects a context release could not destroy (a leak); 0 when the backend cannot tell. */
  leakCount(): number;
  /** Live iommufd contexts on the backend (0 when unknown). */
  contextCount(): number;
}

/**
 * The simulator. By default one host serves every connection (one machine); `perClient` gives each
 * connection a fresh host, as each in-process scenario gets (physical memory layout, and so huge
 * page alignment, then does not depend on what earlier clients did).
 */
export function simBackend(opts: { host?: SimHost; perClient?: boolean } = {}): Backend {
  const shared = opts.perClient ? undefined : (opts.host ?? createSimHost());
  const hosts = new Map<SimProcess, SimHost>();
  const hostOf = (p: BackendProcess) => shared ?? hosts.get(p as SimProcess);
  return {
    name: 'sim',
    spawn() {
      const host = shared ?? createSimHost();
      const p = host.spawn();
      if (!shared) hosts.set(p, host);
      return p;
    },
    exit(p) {
      (p as SimProcess).exit();
      hosts.delete(p as SimProcess);
    },
    liveObjects(p) {
      const out = new Map<string, number>();
      for (const ctx of hostOf(p)?.contexts ?? []) {
        if (ctx.mm !== (p as SimProcess).memory) continue;
        for (const o of ctx.objects.objects()) {
          const name = OBJ_NAMES[o.type] ?? String(o.type);
          out.set(name, (out.get(name) ?? 0) + 1);
        }
      }
      return out;
    },
    leakCount: () => (shared ? shared.leaks.length : [...hosts.values()].reduce((a, h) => a + h.leaks.length, 0)),
    contextCount: () => (shared ? shared.contexts.size : [...hosts.values()].reduce((a, h) => a + h.contexts.size, 0)),
  };
}

export async function nativeBackend(): Promise<Backend> {
  // Loaded only when asked for, so the daemon runs where the addon cannot be built.
  const native = await import('@viommu/native');
  native.loadAddon();
  return {
    name: 'native',
    spawn: () => native.openNativeProcess() as unknown as BackendProcess,
    exit: (p) => (p as unknown as { dispose(): void }).dispose(),
    liveObjects: () => new Map(),
    leakCount: () => 0,
    contextCount: () => 0,
  };
}

/** MEM_ALLOC on any backend: simulated memory is placed huge-page congruent (below), real memory as the kernel places it. */
export function allocUserMemory(p: BackendProcess, length: number): { addr: bigint; bytes: Uint8Array } {
  return p.memory instanceof AddressSpace ? congruentAlloc(p.memory, length) : p.memory.alloc(length);
}

const HUGE = 2 * 1024 * 1024;
const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * User memory of 2 MiB or more whose address and physical address agree modulo 2 MiB, as THP or
 * MAP_HUGETLB memory does on Linux, so a huge-aligned user address is a huge-aligned physical one
 * and the io page table can map it with huge pages (the dirty-tracking selftest relies on it).
 *
 * The simulator places a mapping's frames wherever the host's physical memory has got to, which on
 * a host shared by many clients depends on everything allocated before. A stopgap until
 * AddressSpace.alloc aligns big mappings itself (see ADR 0128): observe how the skew between
 * address and physical address moves from one allocation to the next, then skip physical frames
 * (never reused, so skipping costs nothing) so the next allocation lands congruent.
 */
export function congruentAlloc(mm: AddressSpace, length: number): { addr: bigint; bytes: Uint8Array } {
  const skew = (m: { addr: bigint }) => mod(Number(m.addr) - mm.frameOf(m.addr)! * FRAME_SIZE, HUGE);
  let m = mm.alloc(length);
  if (length < HUGE) return m;
  const first = skew(m);
  if (first === 0) return m;
  mm.free(m.addr);
  m = mm.alloc(length);
  const second = skew(m);
  if (second === 0) return m;
  // The skew grows by the same step with each allocation of this length (the unmapped gap the
  // address space leaves after a mapping); pad physical memory to cancel the next one.
  const step = mod(second - first, HUGE);
  mm.free(m.addr);
  const pad = mod(second + step, HUGE) / FRAME_SIZE;
  if (pad > 0) mm.physical.freeRun(mm.physical.allocRun(pad).firstFrame);
  return mm.alloc(length);
}
