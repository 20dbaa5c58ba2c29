// errno numbers on the wire; names (and SystemError) at the ends.
import { ERRNO, SystemError, type ErrnoName } from '@viommu/uapi';

const NAMES = new Map<number, ErrnoName>(Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoName]));

export const EPROTO = ERRNO.EPROTO;

export function errnoName(n: number): ErrnoName {
  return NAMES.get(n) ?? 'EIO';
}

/** The positive errno of a thrown error: a SystemError's, or EIO for anything that is not one. */
export function errnoOfError(e: unknown): number {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && code in ERRNO) return ERRNO[code as ErrnoName];
  return ERRNO.EIO;
}

export function toSystemError(errno: number, syscall: string, detail: string): SystemError {
  return new SystemError(errnoName(errno), syscall, detail || undefined);
}
