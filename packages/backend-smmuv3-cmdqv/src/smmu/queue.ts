// SMMU-format queues in memory: a base (ADDR [51:5], LOG2SIZE [4:0]) and PROD/CONS indices whose
// low LOG2SIZE bits index the ring and whose next bit is the wrap flag. The command-queue consumer
// is shared by the SMMU's own CMDQ and the CMDQV's VCMDQs; only the executor differs.
import type { PhysicalMemory } from '@viommu/core';
import { CMD_SIZE, type Command, decodeCommandInto, emptyCommand } from '../formats/command.js';
import { CERROR_NONE } from './regs.js';

export const Q_OVERFLOW_FLAG = 0x8000_0000;
const CONS_ERR_SHIFT = 24;
const CONS_ERR_MASK = 0x7f << CONS_ERR_SHIFT;

/** Splits a 64-bit queue base register value (as halves) into address and log2 size. */
export function decodeQueueBase(lo: number, hi: number): { addr: number; log2size: number } {
  return { addr: (hi & 0xfffff) * 0x1_0000_0000 + ((lo & ~0x1f) >>> 0), log2size: lo & 0x1f };
}

/** Executes one command; returns 0 or a CERROR code that stops the queue. */
export type CommandExecutor = (cmd: Command) => number;

export class CommandQueueConsumer {
  addr = 0;
  log2size = 0;
  prod = 0;
  /** CONS including the wrap bit and the ERR field [30:24]. */
  cons = 0;
  enabled = false;
  /** Set while the queue is stopped by an error, until software acknowledges it. */
  halted = false;
  executed = 0;
  private readonly words = new Uint32Array(4);
  private readonly cmd = emptyCommand();

  constructor(private readonly mem: PhysicalMemory) {}

  get error(): number {
    return (this.cons & CONS_ERR_MASK) >>> CONS_ERR_SHIFT;
  }

  reset(): void {
    this.prod = 0;
    this.cons = 0;
    this.halted = false;
  }

  /** Software acknowledged the error: clear CERROR and continue from the entry that failed. */
  acknowledge(): void {
    this.halted = false;
    this.cons &= ~CONS_ERR_MASK;
  }

  /**
   * Consumes entries from CONS up to PROD. Returns the CERROR code if one stopped the queue
   * (CONS then points at the failing entry), else CERROR_NONE.
   */
  consume(exec: CommandExecutor): number {
    if (!this.enabled || this.halted) return CERROR_NONE;
    const wrapMask = (2 << this.log2size) - 1; // index plus wrap bit
    const idxMask = (1 << this.log2size) - 1;
    const prod = this.prod & wrapMask;
    let cons = this.cons & wrapMask;
    const w = this.words;
    while (cons !== prod) {
      const entry = this.addr + (cons & idxMask) * CMD_SIZE;
      w[0] = this.mem.readU32(entry);
      w[1] = this.mem.readU32(entry + 4);
      w[2] = this.mem.readU32(entry + 8);
      w[3] = this.mem.readU32(entry + 12);
      const err = exec(decodeCommandInto(w, this.cmd));
      if (err !== CERROR_NONE) {
        this.cons = (cons | (err << CONS_ERR_SHIFT)) >>> 0;
        this.halted = true;
        return err;
      }
      this.executed++;
      cons = (cons + 1) & wrapMask;
    }
    this.cons = cons;
    return CERROR_NONE;
  }
}

/** Free space check for an event-style producer: full when indices match and wraps differ. */
export function queueFull(prod: number, cons: number, log2size: number): boolean {
  const idxMask = (1 << log2size) - 1;
  const wrap = 1 << log2size;
  return (prod & idxMask) === (cons & idxMask) && (prod & wrap) !== (cons & wrap);
}
