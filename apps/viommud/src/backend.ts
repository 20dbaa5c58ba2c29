// Backends: where a session's syscalls really run. `sim` is one simulated host shared by every
// connection (like one machine's /dev/iommu), each connection a separate simulated process;
// `native` opens a NativeProcess on the real kernel per connection (through @viommu/native).
import { createSimHost, OBJ_NAMES, type SimHost, type SimProcess } from '@viommu/core';
import type { Process } from '@viommu/uapi';


export interface BackendProcess extends Process {
  memfdCreate?(name?: string): number;
  ftruncate?(fd: number, size: number): void;
  /**
   * Simulator (ADR 0193): user memory whose pages are `bytes`, the daemon's mapping of a client's
   * memfd (MEM_SHARED), freed with memory.free; `release` runs when nothing maps or pins it any more.
   */
  adoptMemory?(bytes: Uint8Array, release?: () => void): { addr: bigint; bytes: Uint8Array };
  /** Simulator (ADR 0193): a memfd of `size` bytes whose pages are `bytes` (FD_IMPORT); returns its fd. */
  memfdAdopt?(bytes: Uint8Array, opts: { size: number; name?: string; sealGrow?: boolean; release?: () => void }): number;
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

export { NativeClientProcess, nativeBackend } from './native-client.js';
