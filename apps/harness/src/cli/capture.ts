// The `viommu` command run in-process with its output captured: what the CLI's tests call.
import type { Io } from './io.js';
import { main } from './main.js';
import { detectTerm } from './term.js';

/** Runs `viommu <argv>` with a plain (non-TTY) terminal; resolves with the exit code and what it wrote to stdout and stderr. */
export async function runCaptured(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (l) => void (out += `${l}\n`), err: (l, nl = true) => void (err += nl ? `${l}\n` : l) };
  const code = await main(argv, io, detectTerm({ isTTY: false }, {}));
  return { code, out, err };
}
