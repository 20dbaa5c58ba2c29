// A small deterministic generator standing in for rand(3), so a failing case replays exactly.

export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }

  /** xorshift32 */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }

  /** Fills bytes two at a time, as the C code fills uint16_t arrays with rand(). */
  fill16(bytes: Uint8Array): void {
    for (let i = 0; i + 1 < bytes.length; i += 2) {
      const v = this.next();
      bytes[i] = v & 0xff;
      bytes[i + 1] = (v >>> 8) & 0xff;
    }
  }
}
