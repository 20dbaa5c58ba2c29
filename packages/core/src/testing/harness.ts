// Small helpers for the core's tests: call an ioctl with a codec, expect an errno.

import { isErrnoError, type StructCodec, type StructValue, type FieldSpec, type Process } from '@viommu/uapi';

/** Encodes `fields`, issues the ioctl, and decodes the (written-back) struct. */
export function call<F extends Record<string, FieldSpec>>(proc: Process, fd: number, request: number, codec: StructCodec<F>, fields: Partial<StructValue<F>> = {}): StructValue<F> {
  const bytes = codec.encode(fields);
  proc.ioctl(fd, request, bytes);
  return codec.decode(bytes);
}

/** The errno name `fn` throws, or 'OK' when it returns. Any other exception is rethrown. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
}
