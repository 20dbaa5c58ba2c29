// Linux errno numbers (asm-generic, as on x86-64 and arm64) and the error every process target throws.

export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9,
  ECHILD: 10, EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17,
  EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25,
  ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33,
  ERANGE: 34, EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40,
  ENOMSG: 42, EIDRM: 43, EBADE: 52, ENODATA: 61, ETIME: 62, ENOLINK: 67, EPROTO: 71, EBADMSG: 74,
  EOVERFLOW: 75, EBADFD: 77, EILSEQ: 84, EUSERS: 87, ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90,
  EPROTOTYPE: 91, ENOPROTOOPT: 92, EPROTONOSUPPORT: 93, EOPNOTSUPP: 95, EAFNOSUPPORT: 97,
  EADDRINUSE: 98, EADDRNOTAVAIL: 99, ENETDOWN: 100, ENETUNREACH: 101, ECONNABORTED: 103,
  ECONNRESET: 104, ENOBUFS: 105, EISCONN: 106, ENOTCONN: 107, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ESTALE: 116, EDQUOT: 122, ECANCELED: 125,
  EOWNERDEAD: 130, ENOTRECOVERABLE: 131,
} as const;

export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, ErrnoName>(Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoName]));

/** EAGAIN and EWOULDBLOCK, EOPNOTSUPP and ENOTSUP share numbers on Linux. */
export const EWOULDBLOCK = ERRNO.EAGAIN;
export const ENOTSUP = ERRNO.EOPNOTSUPP;

// Short descriptions in the words of strerror(3), which Node's own system errors also use.
const DESCRIPTIONS: Partial<Record<ErrnoName, string>> = {
  EPERM: 'operation not permitted', ENOENT: 'no such file or directory', EIO: 'i/o error',
  ENXIO: 'no such device or address', E2BIG: 'argument list too long', EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable', ENOMEM: 'not enough memory', EACCES: 'permission denied',
  EFAULT: 'bad address', EBUSY: 'resource busy or locked', EEXIST: 'file already exists',
  ENODEV: 'no such device', EINVAL: 'invalid argument', EMFILE: 'too many open files',
  ENOTTY: 'inappropriate ioctl for device', ENOSPC: 'no space left on device',
  EOVERFLOW: 'value too large for defined data type', EMSGSIZE: 'message too long',
  EOPNOTSUPP: 'operation not supported', ERANGE: 'result too large', ENOSYS: 'function not implemented',
  ETIMEDOUT: 'connection timed out',
};

export function errnoName(errno: number): ErrnoName | undefined {
  return NAMES.get(Math.abs(errno));
}

/** An error shaped like Node's own system errors: `code` names the errno, `errno` is its negative number. */
export class SystemError extends Error {
  readonly code: ErrnoName;
  readonly errno: number;
  readonly syscall: string;
  /** Why, in words, when the thrower knows more than the errno says (not part of the kernel ABI). */
  readonly detail: string | undefined;

  constructor(code: ErrnoName, syscall: string, detail?: string) {
    const text = DESCRIPTIONS[code] ?? code.toLowerCase();
    super(`${code}: ${text}, ${syscall}${detail ? ` (${detail})` : ''}`);
    this.name = 'SystemError';
    this.code = code;
    this.errno = -ERRNO[code];
    this.syscall = syscall;
    this.detail = detail;
  }
}

/** True for an error that carries an errno (ours, or Node's own from a real syscall). */
export function isErrnoError(e: unknown): e is Error & { code: string; errno: number; syscall?: string } {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { errno?: unknown }).errno === 'number';
}
