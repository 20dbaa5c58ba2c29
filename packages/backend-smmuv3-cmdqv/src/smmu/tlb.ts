// The SMMU's TLB, keyed as the hardware keys it: stage-1 and nested (combined) entries by VMID,
// ASID and input page; global (nG = 0) stage-1 entries by VMID only; stage-2 entries by VMID and
// IPA. An entry stays until an invalidation that covers it, whatever happens to the tables in
// memory: that is what makes a missing TLBI observable.
//
// Entries of any size live in one Map per context, under key = (address >> shift) * 64 + shift;
// a lookup probes each size present in the context.

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
  readonly map = new Map<number, TlbEntry>();
  shifts: number[] = [];

  add(key: number, shift: number, e: TlbEntry): void {
    if (!this.shifts.includes(shift)) this.shifts = [...this.shifts, shift].sort((a, b) => a - b);
    this.map.set(key, e);
  }

  find(addr: number): TlbEntry | undefined {
    const shifts = this.shifts;
    for (let i = 0; i < shifts.length; i++) {
      const s = shifts[i]!;
      const e = this.map.get(Math.floor(addr / POW2[s]!) * 64 + s);
      if (e) return e;
    }
    return undefined;
  }

  /** Removes every entry overlapping [start, start + length). */
  removeRange(start: number, length: number): void {
    if (this.map.size === 0) return;
    let probes = 0;
    for (const s of this.shifts) probes += Math.ceil(length / POW2[s]!) + 1;
    if (probes <= this.map.size) {
      for (const s of this.shifts) {
        const step = POW2[s]!;
        for (let a = Math.floor(start / step) * step; a < start + length; a += step) this.map.delete((a / step) * 64 + s);
      }
      return;
    }
    for (const [key, e] of this.map) {
      const base = Math.floor(key / 64) * POW2[e.shift]!;
      if (base < start + length && base + POW2[e.shift]! > start) this.map.delete(key);
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
    ctx.add(Math.floor(va / POW2[e.shift]!) * 64 + e.shift, e.shift, e);
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
    ctx.add(Math.floor(ipa / POW2[e.shift]!) * 64 + e.shift, e.shift, e);
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
    for (const c of this.s1.values()) n += c.map.size;
    for (const c of this.s2.values()) n += c.map.size;
    return n;
  }

  private dropS1(vmid: number, key: number): void {
    this.s1.delete(key);
    this.s1ByVmid.get(vmid)?.delete(key);
  }
}
