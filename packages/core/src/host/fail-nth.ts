// Fault injection in the spirit of the kernel's fail_nth: arm it with N and the Nth failure point
// reached afterwards throws (ENOMEM by default). A failure point is every object-ID allocation,
// every allocation the core makes that can fail in the kernel, and every driver call that can fail
// (drivers call DriverHost.failPoint). A test sweeps N = 1, 2, ... over a scenario until a run
// completes without the injection firing, checking the invariants after each run.

import { SystemError, type ErrnoName } from '@viommu/uapi';

export class FailNth {
  private countdown = 0;
  private errno: ErrnoName = 'ENOMEM';
  /** Failure points passed since the last arm() (whether or not armed). */
  passed = 0;
  /** The point that fired last, for messages. */
  firedAt: string | undefined;

  /** Makes the `n`th failure point from now throw `errno` (n >= 1); n = 0 disarms. */
  arm(n: number, errno: ErrnoName = 'ENOMEM'): void {
    this.countdown = n;
    this.errno = errno;
    this.passed = 0;
    this.firedAt = undefined;
  }

  disarm(): void {
    this.countdown = 0;
  }

  get armed(): boolean {
    return this.countdown > 0;
  }

  /** True once the armed failure has been injected. */
  get fired(): boolean {
    return this.firedAt !== undefined;
  }

  /** A failure point: throws when it is the Nth. */
  point(what: string): void {
    this.passed++;
    if (this.countdown > 0 && --this.countdown === 0) {
      this.firedAt = what;
      throw new SystemError(this.errno, 'ioctl', `fail_nth injected at ${what}`);
    }
  }
}
