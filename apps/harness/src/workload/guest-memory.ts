// Guest RAM as the guest sees it: the VMM's user memory, mapped in the IOAS at IOVA = guest physical
// address (the stage-2), addressed here by IPA. Kits write their guest page tables and descriptors
// into it exactly as a guest kernel would; the workload writes and checks its test data here.

export class GuestMemory {
  private next: number;
  private readonly view: DataView;

  constructor(
    /** IPA of the first byte. */
    readonly base: number,
    /** The VMM's view of the RAM (its user memory). */
    readonly bytes: Uint8Array,
  ) {
    this.next = base;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get size(): number {
    return this.bytes.length;
  }

  /** Bytes handed out so far (tables, descriptors, data pages). */
  get used(): number {
    return this.next - this.base;
  }

  /** The byte offset of `ipa` in `bytes`; RangeError outside guest RAM. */
  offsetOf(ipa: number, len = 1): number {
    const off = ipa - this.base;
    if (off < 0 || off + len > this.bytes.length) throw new RangeError(`IPA 0x${ipa.toString(16)} (+${len}) is outside guest RAM`);
    return off;
  }

  /** Zeroed guest RAM of `bytes`, aligned to `align` (default 4 KiB). */
  alloc(bytes: number, align = 4096): number {
    const ipa = Math.ceil(this.next / align) * align;
    const off = this.offsetOf(ipa, bytes);
    this.next = ipa + bytes;
    this.bytes.fill(0, off, off + bytes);
    return ipa;
  }

  /** The live bytes at `ipa` (a view, not a copy). */
  view4k(ipa: number, length = 4096): Uint8Array {
    const off = this.offsetOf(ipa, length);
    return this.bytes.subarray(off, off + length);
  }

  write(ipa: number, data: Uint8Array): void {
    this.bytes.set(data, this.offsetOf(ipa, data.length));
  }

  readU32(ipa: number): number {
    return this.view.getUint32(this.offsetOf(ipa, 4), true);
  }

  writeU32(ipa: number, value: number): void {
    this.view.setUint32(this.offsetOf(ipa, 4), value >>> 0, true);
  }
}
