// A small argument parser: `--name value`, `--name=value`, boolean `--flag`, positionals. Unknown
// options are usage errors (exit code 2), so a typo never silently runs the default.

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface OptionSpec {
  readonly type: 'boolean' | 'string' | 'number';
  readonly help: string;
}

export type Parsed = { readonly positionals: string[]; readonly values: Record<string, string | number | boolean | undefined> };

export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, OptionSpec>>): Parsed {
  const values: Record<string, string | number | boolean | undefined> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      values[name] = true;
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    if (s.type === 'number') {
      const n = parseSize(raw);
      if (n === undefined) throw new UsageError(`--${name}: not a number: ${raw}`);
      values[name] = n;
    } else {
      values[name] = raw;
    }
  }
  return { positionals, values };
}

/** A non-negative integer, with an optional K/M/G (binary) suffix: `64`, `512M`, `4G`. */
export function parseSize(raw: string): number | undefined {
  const m = /^(\d+)([kmg]i?b?)?$/i.exec(raw.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').charAt(0).toLowerCase();
  const mul = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * mul;
}

export function optionHelp(spec: Readonly<Record<string, OptionSpec>>): string {
  return Object.entries(spec)
    .map(([name, s]) => `  --${name}${s.type === 'boolean' ? '' : ` <${s.type === 'number' ? 'n' : 'value'}>`}`.padEnd(28) + s.help)
    .join('\n');
}
