// The SMMU's TLB, keyed as the hardware keys it: stage-1 and nested (combined) entries by VMID,
// ASID and input page; global (nG = 0) stage-1 entries by VMID only; stage-2 entries by VMID and
// IPA. An entry stays until an invalidation that covers it, whatever happens to the tables in
// memory: that is what makes a missing TLBI observable.
//
// Each context keeps one Map per entry size, keyed by address >> size (small integers for the
// address ranges in use); a lookup probes each size present in the context.

export interface TlbEntry {
  /** Output address of the entry's first byte (PA). */
  out: number;
  /** IPA of the entry's first byte (nested), for stage-2 permission faults on a hit. */
  ipa: number;
  shift: number;
  /** Stage-1 and stage-2 permission sets (PERM_*); PERM_ALL for a stage that is not in use. */
  s1perm: number;
  s2perm: number;
  global: boolean;
}

class Context {
  /** One Map per entry size (index = log2 size), keyed by address >> size: small integer keys. */
  readonly maps: (Map<number, TlbEntry> | undefined)[] = [];
  shifts: number[] = [];
  count = 0;

  add(shift: number, addr: number, e: TlbEntry): void {
    let m = this.maps[shift];
    if (!m) {
      m = this.maps[shift] = new Map();
      this.shifts = [...this.shifts, shift].sort((a, b) => a - b);
    }
    const key = Math.floor(addr / POW2[shift]!);
    if (!m.has(key)) this.count++;
    m.set(key, e);
  }

  find(addr: number): TlbEntry | undefined {
    const shifts = this.shifts;
    for (let i = 0; i < shifts.length; i++) {
      const s = shifts[i]!;
      const e = this.maps[s]!.get(Math.floor(addr / POW2[s]!));
      if (e) return e;
    }
    return undefined;
  }

  /** Removes every entry overlapping [start, start + length). */
  removeRange(start: number, length: number): void {
    for (const s of this.shifts) {
      const m = this.maps[s]!;
      if (m.size === 0) continue;
      const first = Math.floor(start / POW2[s]!);
      const last = Math.floor((start + length - 1) / POW2[s]!);
      if (last - first + 1 <= m.size) {
        for (let k = first; k <= last; k++) if (m.delete(k)) this.count--;
      } else {
        for (const k of m.keys()) if (k >= first && k <= last && m.delete(k)) this.count--;
      }
    }
  }
}

const POW2: number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);
const GLOBAL_ASID = 0x10000;

function s1Key(vmid: number, asid: number): number {
  return vmid * 0x20000 + asid;
}

export class Tlb {
  /** Stage-1 / nested contexts by s1Key(VMID, ASID or GLOBAL_ASID). */
  private readonly s1 = new Map<number, Context>();
  /** Which stage-1 context keys each VMID has (for VAA / NH_ALL / S12_VMALL). */
  private readonly s1ByVmid = new Map<number, Set<number>>();
  private readonly s2 = new Map<number, Context>();
  hits = 0;
  misses = 0;

  lookupS1(vmid: number, asid: number, va: number): TlbEntry | undefined {
    const e = this.s1.get(s1Key(vmid, asid))?.find(va) ?? this.s1.get(s1Key(vmid, GLOBAL_ASID))?.find(va);
    if (e) this.hits++;
    else this.misses++;
    return e;
  }

  insertS1(vmid: number, asid: number, va: number, e: TlbEntry): void {
    const key = s1Key(vmid, e.global ? GLOBAL_ASID : asid);
    let ctx = this.s1.get(key);
    if (!ctx) {
      ctx = new Context();
      this.s1.set(key, ctx);
      let set = this.s1ByVmid.get(vmid);
      if (!set) this.s1ByVmid.set(vmid, (set = new Set()));
      set.add(key);
    }
    ctx.add(e.shift, va, e);
  }

  lookupS2(vmid: number, ipa: number): TlbEntry | undefined {
    const e = this.s2.get(vmid)?.find(ipa);
    if (e) this.hits++;
    else this.misses++;
    return e;
  }

  insertS2(vmid: number, ipa: number, e: TlbEntry): void {
    let ctx = this.s2.get(vmid);
    if (!ctx) this.s2.set(vmid, (ctx = new Context()));
    ctx.add(e.shift, ipa, e);
  }

  /** TLBI_NH_ASID: the non-global entries of one ASID. */
  invalidateAsid(vmid: number, asid: number): void {
    this.dropS1(vmid, s1Key(vmid, asid));
  }

  /** TLBI_NH_VA: entries of the ASID and global entries overlapping the range. */
  invalidateVa(vmid: number, asid: number, va: number, length: number): void {
    this.s1.get(s1Key(vmid, asid))?.removeRange(va, length);
    this.s1.get(s1Key(vmid, GLOBAL_ASID))?.removeRange(va, length);
  }

  /** TLBI_NH_VAA: entries of every ASID of the VMID overlapping the range. */
  invalidateVaa(vmid: number, va: number, length: number): void {
    for (const key of this.s1ByVmid.get(vmid) ?? []) this.s1.get(key)?.removeRange(va, length);
  }

  /** TLBI_NH_ALL: every stage-1 and nested entry of the VMID. */
  invalidateVmidS1(vmid: number): void {
    for (const key of [...(this.s1ByVmid.get(vmid) ?? [])]) this.dropS1(vmid, key);
  }

  /** TLBI_S2_IPA: stage-2 entries only; combined nested entries survive (NH_ALL is needed too). */
  invalidateIpa(vmid: number, ipa: number, length: number): void {
    this.s2.get(vmid)?.removeRange(ipa, length);
  }

  /** TLBI_S12_VMALL. */
  invalidateVmid(vmid: number): void {
    this.invalidateVmidS1(vmid);
    this.s2.delete(vmid);
  }

  /** TLBI_NSNH_ALL. */
  invalidateAll(): void {
    this.s1.clear();
    this.s1ByVmid.clear();
    this.s2.clear();
  }

  get size(): number {
    let n = 0;
    for (const c of this.s1.values()) n += c.count;
    for (const c of this.s2.values()) n += c.count;
    return n;
  }

  private dropS1(vmid: number, key: number): void {
    this.s1.delete(key);
    this.s1ByVmid.get(vmid)?.delete(key);
  }
}
