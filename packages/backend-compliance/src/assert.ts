// The compliance cases' own assertions: small, jest-free, and each failure says what was checked,
// what was expected and what came instead, so a case reads the same in jest, in `viommu
// conformance` and in a vendor's own runner.

/** A compliance check that did not hold. */
export class ComplianceFailure extends Error {
  override readonly name = 'ComplianceFailure';
}

/** A value as a failure message shows it: bigints as hex, byte arrays as hex, errors by code. */
export function show(v: unknown, depth = 0): string {
  if (typeof v === 'bigint') return `0x${v.toString(16)}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code;
    return `${v.name}${typeof code === 'string' ? ` ${code}` : ''}: ${v.message}`;
  }
  if (depth > 3) return '…';
  if (v instanceof Uint8Array) return `<${[...v.subarray(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}${v.length > 32 ? ` … (${v.length} bytes)` : ''}>`;
  if (Array.isArray(v)) return `[${v.map((x) => show(x, depth + 1)).join(', ')}]`;
  const fields = Object.entries(v).filter(([, x]) => x !== undefined);
  return `{ ${fields.map(([k, x]) => `${k}: ${show(x, depth + 1)}`).join(', ')} }`;
}

/** Structural equality as jest's toEqual sees it: undefined fields count as absent. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b) || ArrayBuffer.isView(a) !== ArrayBuffer.isView(b)) return false;
  if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<unknown>;
    const y = b as unknown as ArrayLike<unknown>;
    if (a.constructor !== b.constructor || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  const keys = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const ka = keys(a);
  if (ka.length !== keys(b).length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Whether `actual` has every field of `partial` (recursively), as jest's toMatchObject. */
export function matchesPartial(actual: unknown, partial: unknown): boolean {
  if (typeof partial !== 'object' || partial === null || ArrayBuffer.isView(partial) || Array.isArray(partial)) return deepEqual(actual, partial);
  if (typeof actual !== 'object' || actual === null) return false;
  return Object.entries(partial).every(([k, v]) => matchesPartial((actual as Record<string, unknown>)[k], v));
}

function fail(what: string, expected: string, actual: unknown): never {
  throw new ComplianceFailure(`${what}: expected ${expected}, got ${show(actual)}`);
}

/** `cond` holds; otherwise fails with `what`. */
export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new ComplianceFailure(what);
}

/** `actual` equals `expected` (structurally, undefined fields absent). */
export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  if (!deepEqual(actual, expected)) fail(what, show(expected), actual);
}

/** `actual` has every field of `partial`. */
export function expectMatch(actual: unknown, partial: unknown, what: string): void {
  if (!matchesPartial(actual, partial)) fail(what, `a match of ${show(partial)}`, actual);
}

/** `actual` is one of `options`. */
export function expectOneOf(actual: unknown, options: readonly unknown[], what: string): void {
  if (!options.some((o) => deepEqual(actual, o))) fail(what, `one of ${show(options)}`, actual);
}

/** `lo <= actual <= hi` (either bound may be left out). */
export function expectWithin(actual: number, bounds: { min?: number; max?: number }, what: string): void {
  if ((bounds.min !== undefined && actual < bounds.min) || (bounds.max !== undefined && actual > bounds.max)) {
    fail(what, [bounds.min !== undefined ? `>= ${bounds.min}` : '', bounds.max !== undefined ? `<= ${bounds.max}` : ''].filter(Boolean).join(' and '), actual);
  }
}

/** `fn` throws (anything); returns what it threw. */
export function expectThrows(fn: () => unknown, what: string): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new ComplianceFailure(`${what}: expected it to throw, it returned`);
}

/** `p` rejects with an error carrying errno `code`. */
export async function expectRejects(p: Promise<unknown>, code: string, what: string): Promise<void> {
  let got: unknown;
  try {
    got = await p;
  } catch (e) {
    if ((e as { code?: unknown }).code === code) return;
    fail(what, `a rejection with ${code}`, e);
  }
  fail(what, `a rejection with ${code}`, got);
}
