// The NVIDIA Tegra241 CMDQV hardware model: VINTFs (virtual interfaces), each owning logical
// VCMDQs that are SMMU-format command queues in memory, consumed by this hardware without a trap.
// A VINTF's page0 (its LVCMDQs' CONS/PROD/CONFIG/STATUS/GERROR/GERRORN registers, 0x80 apart)
// is a 64 KiB run of physical memory: the host maps it into the guest (mmap on the iommufd), the
// guest writes PROD there, and the hardware notices on service() — called on a doorbell
// (Atomics.notify on the PROD word, see startDoorbell) or explicitly.
//
// What a guest-owned (HYP_OWN = 0) queue executes: TLBI_NH_ASID and TLBI_NH_VA retagged with the
// VINTF's VMID, ATC_INV with its StreamID replaced through the VINTF's SID_MATCH/SID_REPLACE
// pairs, and CMD_SYNC; anything else stops the queue with CERROR_ILL (vendors.md 2.10: the kernel
// only sends those to a guest queue; what hardware does with others is our choice, documented).
import { FRAME_SIZE, type PhysicalMemory } from '@viommu/core';
import {
  CMDQ_OP_ATC_INV, CMDQ_OP_CMD_SYNC, CMDQ_OP_TLBI_NH_ASID, CMDQ_OP_TLBI_NH_VA, type Command,
} from '../formats/command.js';
import { CommandQueueConsumer, type CommandExecutor } from '../smmu/queue.js';
import { CERROR_ILL, CERROR_NONE } from '../smmu/regs.js';
import type { Smmu } from '../smmu/smmu.js';

export const CMDQV_PAGE_SIZE = 0x10000;
/** Per-LVCMDQ register block in a VINTF page0. */
export const VCMDQ_REG_STRIDE = 0x80;
export const VCMDQ_CONS = 0x00;
export const VCMDQ_PROD = 0x04;
export const VCMDQ_CONFIG = 0x08;
export const VCMDQ_STATUS = 0x0c;
export const VCMDQ_GERROR = 0x10;
export const VCMDQ_GERRORN = 0x14;
export const VCMDQ_EN = 1;
export const VCMDQ_GERROR_CMDQ_ERR = 1;
/** VCMDQ BASE: ADDR [47:5], LOG2SIZE [4:0]. */
export const VCMDQ_ADDR_MASK = 0xffff_ffff_ffe0;

export interface CmdqvParams {
  version: number;
  /** log2 of global VCMDQs (PARAM.NUM_VCMDQ_LOG2). */
  vcmdqLog2: number;
  /** log2 of VINTFs (PARAM.NUM_VINTF_LOG2). */
  vintfLog2: number;
  /** log2 of SID_MATCH/SID_REPLACE pairs per VINTF (PARAM.NUM_SID_PER_VM_LOG2). */
  sidPerVmLog2: number;
}

export const DEFAULT_CMDQV_PARAMS: CmdqvParams = { version: 1, vcmdqLog2: 7, vintfLog2: 4, sidPerVmLog2: 4 };

type WaitAsync = (view: Int32Array, index: number, value: number, timeout: number) => { async: boolean; value: Promise<string> | string };
/** Atomics.waitAsync (Node 16+; not in the ES2023 lib typings). */
const waitAsync: WaitAsync = (view, index, value, timeout) => (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(view, index, value, timeout);
/**
 * The doorbell re-checks PROD at least this often: Node occasionally loses an Atomics.notify from
 * another thread to a waitAsync waiter (seen on Node 20), so a wait never lasts longer than this.
 */
export const DOORBELL_RECHECK_MS = 2;

export class Vcmdq {
  readonly consumer: CommandQueueConsumer;
  /** Set from CONFIG.EN as last seen. */
  enabled = false;
  constructor(
    mem: PhysicalMemory,
    readonly vintf: Vintf,
    readonly lidx: number,
    readonly globalIndex: number,
  ) {
    this.consumer = new CommandQueueConsumer(mem);
  }

  /** Word index of register `off` of this queue in the VINTF page. */
  reg(off: number): number {
    return (this.lidx * VCMDQ_REG_STRIDE + off) >> 2;
  }
}

export class Vintf {
  enabled = false;
  hypOwn = false;
  vmid = 0;
  /** SID_MATCH (vSID << 1 | ENABLE) and SID_REPLACE (pSID) pairs. */
  readonly sidMatch: Uint32Array;
  readonly sidReplace: Uint32Array;
  readonly lvcmdqs: (Vcmdq | undefined)[];
  /** 128-bit LVCMDQ error map as four 32-bit words. */
  readonly errMap = new Uint32Array(4);
  /** page0: guest-visible registers, in physical memory. */
  readonly page0Pa: number;
  readonly regs: Int32Array;

  constructor(mem: PhysicalMemory, readonly index: number, params: CmdqvParams, perVintf: number) {
    this.sidMatch = new Uint32Array(2 ** params.sidPerVmLog2);
    this.sidReplace = new Uint32Array(2 ** params.sidPerVmLog2);
    this.lvcmdqs = new Array<Vcmdq | undefined>(perVintf).fill(undefined);
    const run = mem.allocRun(CMDQV_PAGE_SIZE / FRAME_SIZE);
    this.page0Pa = run.firstFrame * FRAME_SIZE;
    this.regs = new Int32Array(run.bytes.buffer, run.bytes.byteOffset, CMDQV_PAGE_SIZE / 4);
  }

  /** The physical SID for a guest SID, or -1 when no enabled pair matches. */
  replaceSid(vsid: number): number {
    for (let s = 0; s < this.sidMatch.length; s++) {
      const m = this.sidMatch[s]!;
      if ((m & 1) !== 0 && m >>> 1 === vsid) return this.sidReplace[s]!;
    }
    return -1;
  }
}

export interface CmdqvHooks {
  /** A user VINTF's LVCMDQ stopped with an error (the CMDQV interrupt; VINTF_ERR_MAP bit set). */
  vintfError?(vintf: Vintf): void;
}

export class Cmdqv {
  readonly params: CmdqvParams;
  readonly vintfs: Vintf[];
  readonly perVintf: number;
  /** Global VINTF error map (one bit per VINTF). */
  vintfErrMap = 0n;
  hooks: CmdqvHooks = {};
  private readonly scratch: Command;
  private doorbell = false;
  private readonly armed = new Set<Vcmdq>();
  private readonly executors: CommandExecutor[];

  constructor(
    readonly mem: PhysicalMemory,
    readonly smmu: Smmu,
    params: Partial<CmdqvParams> = {},
  ) {
    this.params = { ...DEFAULT_CMDQV_PARAMS, ...params };
    this.perVintf = 2 ** (this.params.vcmdqLog2 - this.params.vintfLog2);
    this.vintfs = Array.from({ length: 2 ** this.params.vintfLog2 }, (_, i) => new Vintf(mem, i, this.params, this.perVintf));
    this.scratch = { opcode: 0 } as Command;
    this.executors = this.vintfs.map((v) => (cmd: Command) => this.execGuest(v, cmd));
  }

  /** PARAM register. */
  get paramReg(): number {
    const p = this.params;
    return p.version | (p.vcmdqLog2 << 4) | (p.vintfLog2 << 8) | (p.sidPerVmLog2 << 12);
  }

  enableVintf(v: Vintf, vmid: number, hypOwn: boolean): void {
    v.vmid = vmid;
    v.hypOwn = hypOwn;
    v.enabled = true;
  }

  disableVintf(v: Vintf): void {
    v.enabled = false;
    v.vmid = 0;
    v.sidMatch.fill(0);
    v.sidReplace.fill(0);
  }

  /** Maps a global VCMDQ to the VINTF's logical index (CMDQ_ALLOC.ALLOCATED) and programs BASE. */
  mapQueue(v: Vintf, lidx: number, baseAddr: number, log2size: number): Vcmdq {
    const q = new Vcmdq(this.mem, v, lidx, v.index * this.perVintf + lidx);
    q.consumer.addr = baseAddr;
    q.consumer.log2size = log2size;
    v.lvcmdqs[lidx] = q;
    this.resetRegs(q);
    return q;
  }

  /** Disables, zeroes PROD/CONS/BASE, clears GERROR, and unmaps (the kernel's deinit + unmap). */
  unmapQueue(q: Vcmdq): void {
    this.resetRegs(q);
    q.consumer.enabled = false;
    this.armed.delete(q);
    q.vintf.lvcmdqs[q.lidx] = undefined;
    this.clearErr(q);
  }

  private resetRegs(q: Vcmdq): void {
    const r = q.vintf.regs;
    for (const off of [VCMDQ_CONS, VCMDQ_PROD, VCMDQ_CONFIG, VCMDQ_STATUS, VCMDQ_GERROR, VCMDQ_GERRORN]) Atomics.store(r, q.reg(off), 0);
    q.consumer.reset();
    q.enabled = false;
  }

  /**
   * Notices guest register writes and consumes every enabled queue up to its PROD. Returns the
   * number of commands executed.
   */
  service(): number {
    let n = 0;
    for (const v of this.vintfs) {
      if (!v.enabled) continue;
      for (const q of v.lvcmdqs) if (q) n += this.serviceQueue(q);
    }
    return n;
  }

  serviceQueue(q: Vcmdq): number {
    const r = q.vintf.regs;
    const c = q.consumer;
    const en = (Atomics.load(r, q.reg(VCMDQ_CONFIG)) & VCMDQ_EN) !== 0;
    if (en !== q.enabled) {
      q.enabled = en;
      c.enabled = en;
      Atomics.store(r, q.reg(VCMDQ_STATUS), en ? 1 : 0);
      if (en) this.arm(q);
    }
    if (!en) return 0;
    if (c.halted) {
      // The guest acknowledges by writing GERRORN := GERROR.
      if (Atomics.load(r, q.reg(VCMDQ_GERRORN)) !== Atomics.load(r, q.reg(VCMDQ_GERROR))) return 0;
      c.acknowledge();
      this.clearErr(q);
    }
    const before = c.executed;
    c.prod = Atomics.load(r, q.reg(VCMDQ_PROD)) >>> 0;
    const wrapMask = (2 << c.log2size) - 1;
    const pending = ((c.prod & wrapMask) - (c.cons & wrapMask) + (2 << c.log2size)) & wrapMask;
    let err: number;
    if (pending > 1 << c.log2size) {
      // PROD more than a queue ahead of CONS: the guest overran its own queue.
      c.cons = (c.cons | (CERROR_ILL << 24)) >>> 0;
      c.halted = true;
      err = CERROR_ILL;
    } else {
      err = c.consume(this.executorFor(q.vintf));
    }
    Atomics.store(r, q.reg(VCMDQ_CONS), c.cons | 0);
    // Wake a guest thread waiting for CONS to move (a CMD_SYNC wait, in its terms).
    Atomics.notify(r, q.reg(VCMDQ_CONS));
    if (err !== CERROR_NONE) this.raiseErr(q);
    return c.executed - before;
  }

  private executorFor(v: Vintf): CommandExecutor {
    return this.executors[v.index]!;
  }

  private execGuest(v: Vintf, cmd: Command): number {
    if (v.hypOwn) return this.smmu.executeCommand(cmd);
    const c = Object.assign(this.scratch, cmd);
    switch (c.opcode) {
      case CMDQ_OP_TLBI_NH_ASID:
      case CMDQ_OP_TLBI_NH_VA:
        c.vmid = v.vmid;
        return this.smmu.executeCommand(c);
      case CMDQ_OP_ATC_INV: {
        const psid = v.replaceSid(c.sid);
        if (psid < 0) return CERROR_ILL;
        c.sid = psid;
        return this.smmu.executeCommand(c);
      }
      case CMDQ_OP_CMD_SYNC:
        return this.smmu.executeCommand(c);
      default:
        return CERROR_ILL;
    }
  }

  private raiseErr(q: Vcmdq): void {
    const r = q.vintf.regs;
    Atomics.store(r, q.reg(VCMDQ_GERROR), (Atomics.load(r, q.reg(VCMDQ_GERROR)) ^ VCMDQ_GERROR_CMDQ_ERR) | 0);
    const v = q.vintf;
    v.errMap[q.lidx >> 5] = (v.errMap[q.lidx >> 5]! | (1 << (q.lidx & 31))) >>> 0;
    this.vintfErrMap |= 1n << BigInt(v.index);
    this.hooks.vintfError?.(v);
  }

  private clearErr(q: Vcmdq): void {
    const v = q.vintf;
    v.errMap[q.lidx >> 5] = (v.errMap[q.lidx >> 5]! & ~(1 << (q.lidx & 31))) >>> 0;
    if (v.errMap.every((w) => w === 0)) this.vintfErrMap &= ~(1n << BigInt(v.index));
  }

  /**
   * Doorbell mode: the hardware waits on each enabled queue's PROD word (Atomics.waitAsync) and
   * consumes when a guest thread stores PROD and calls Atomics.notify on it: no syscall, no trap.
   */
  startDoorbell(): void {
    this.doorbell = true;
    this.service();
  }

  stopDoorbell(): void {
    this.doorbell = false;
    // Release the pending waits so nothing keeps the event loop alive.
    for (const q of this.armed) Atomics.notify(q.vintf.regs, q.reg(VCMDQ_PROD));
    this.armed.clear();
  }

  private arm(q: Vcmdq): void {
    if (!this.doorbell || this.armed.has(q)) return;
    this.armed.add(q);
    const r = q.vintf.regs;
    const idx = q.reg(VCMDQ_PROD);
    const wait = (): void => {
      if (!this.doorbell || !this.armed.has(q)) return;
      const seen = Atomics.load(r, idx);
      const res = waitAsync(r, idx, seen, DOORBELL_RECHECK_MS);
      const next = (): void => {
        if (!this.doorbell || !this.armed.has(q)) return;
        this.serviceQueue(q);
        wait();
      };
      if (res.async) void (res.value as Promise<string>).then(next);
      else setImmediate(next);
    };
    wait();
  }
}
