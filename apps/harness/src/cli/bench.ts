import { EXIT_INTERNAL, EXIT_OK, type Io } from './io.js';
import type { Term } from './term.js';

export async function bench(argv: readonly string[], io: Io, _term: Term): Promise<number> {
  if (argv.includes('--help')) {
    io.out('viommu bench — (in progress)');
    return EXIT_OK;
  }
  io.err('viommu bench: not implemented yet');
  return EXIT_INTERNAL;
}
