// The `viommu` command: dispatch to a subcommand, map errors to the stable exit codes.

import { UsageError } from './args.js';
import { demo } from './demo.js';
import { EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, processIo, type Io } from './io.js';
import { detectTerm, type Term } from './term.js';

type Command = (argv: readonly string[], io: Io, term: Term) => Promise<number>;

const commands: Record<string, { run: () => Promise<Command>; summary: string }> = {
  demo: { run: async () => demo, summary: 'the nested vIOMMU VM workload on every simulated vendor (the main job)' },
  conformance: { run: async () => (await import('./conformance.js')).conformance, summary: 'run the scenario set against a target; JUnit XML, TAP, JSON; --compare' },
  bench: { run: async () => (await import('./bench.js')).bench, summary: 'workload and package benchmarks at a fixed budget; JSON and an HTML report' },
  inspect: { run: async () => (await import('./inspect.js')).inspect, summary: 'print the live object graphs of a running viommud (--url of its --inspect-port)' },
};

export const mainHelp = `viommu — the iommufd / vIOMMU harness

Usage: viommu <command> [options]     (viommu <command> --help for its options)

Commands:
${Object.entries(commands).map(([n, c]) => `  ${n.padEnd(14)}${c.summary}`).join('\n')}

Exit codes: 0 ok, 1 a check or case failed, 2 usage error, 3 internal error, 4 target unavailable.
Environment: NO_COLOR disables colour; CI=true (or output not a TTY) prints plain lines.`;

export async function main(argv: readonly string[], io: Io = processIo, term: Term = detectTerm(process.stderr)): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const cmd = commands[name];
  if (!cmd) {
    io.err(`viommu: unknown command '${name}'\n\n${mainHelp}`);
    return EXIT_USAGE;
  }
  try {
    return await (await cmd.run())(rest, io, term);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`viommu ${name}: ${e.message} (see viommu ${name} --help)`);
      return EXIT_USAGE;
    }
    io.err(`viommu ${name}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT_INTERNAL;
  }
}
