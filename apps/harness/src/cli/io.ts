// Where the commands write, and their exit codes (stable: scripts may rely on them).

export const EXIT_OK = 0;
/** A check, a conformance case or a benchmark verification failed. */
export const EXIT_CHECK_FAILED = 1;
/** Bad command line. */
export const EXIT_USAGE = 2;
/** Something unexpected broke (a bug in the harness or the model). */
export const EXIT_INTERNAL = 3;

export interface Io {
  out(line: string): void;
  /** Progress and diagnostics; `newline` false for in-place updates. */
  err(line: string, newline?: boolean): void;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line, newline = true) => void process.stderr.write(newline ? `${line}\n` : line),
};
/** A conformance target cannot run here (no addon, no /dev/iommu, no daemon). */
export const EXIT_UNAVAILABLE = 4;
