// How output looks: colour only on a TTY without NO_COLOR; live progress only on a TTY outside CI
// (under CI, or piped, progress is plain lines, one per phase).

export interface Term {
  readonly color: boolean;
  readonly live: boolean;
  green(s: string): string;
  red(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export function detectTerm(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Term {
  const tty = stream.isTTY === true;
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  const color = tty && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
  const wrap = (code: number) => (s: string) => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { color, live: tty && !ci, green: wrap(32), red: wrap(31), dim: wrap(2), bold: wrap(1) };
}

/** A fixed-width text table (no colour codes inside cells, so widths stay right). */
export function table(head: readonly string[], rows: readonly (readonly string[])[], rightAlign: ReadonlySet<number> = new Set()): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((x, c) => (rightAlign.has(c) ? x.padStart(widths[c]!) : x.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
