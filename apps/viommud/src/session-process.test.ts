// The native backend's one-process-per-client (ADR 0125) through a real daemon on a real Unix
// socket: the broker hands each connection to a session process of its own. No /dev/iommu here, so
// the session processes load src/testing/fake-kernel.ts (memfds and eventfds standing in for the
// kernel's files); the same path on the real kernel is the kernel lane's daemon run.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { connectDaemonProcess, FEATURE, type DaemonProcess } from '@viommu/protocol';
import { IOMMU_FAULT_QUEUE_ALLOC, IOMMU_IOAS_ALLOC, IOMMU_VEVENTQ_ALLOC, POLLIN, iommu_fault_alloc, iommu_ioas_alloc, iommu_veventq_alloc } from '@viommu/uapi';
import { APP_DIR, buildDaemon, eventually, sample, startDaemon, type RunningDaemon } from './spawn-daemon.js';
import { addonOrReason, codeOf } from './testing/daemon-tests.js';
import { FAKE_FAULT_COUNT, FAKE_VEVENTQ_COUNT } from './testing/fake-kernel.js';

const { addon, reason: notBuilt } = addonOrReason();
const suite = addon ? describe : describe.skip;
if (!addon) it.skip(`session processes — skipped: ${notBuilt}`, () => {});

const env = { VIOMMUD_NATIVE_BACKEND_MODULE: join(APP_DIR, 'dist/testing/fake-kernel.js') };
const native = (extra: string[] = []) => startDaemon(['--backend', 'native', '--inspect-port', '0', ...extra], { env });

let daemon: RunningDaemon;

beforeAll(async () => {
  if (!addon) return;
  buildDaemon();
  daemon = await native();
}, 600_000);

afterAll(async () => {
  await daemon?.stop();
}, 120_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


/** The session process serving `p` (from the broker's "client connected" line). */
async function sessionPidOf(d: RunningDaemon, p: DaemonProcess): Promise<number> {
  let pid = 0;
  await eventually(() => {
    const rec = d.logs.find((l) => l['msg'] === 'client connected' && l['session'] === p.session.sessionId);
    pid = (rec?.['sessionPid'] as number | undefined) ?? 0;
    return pid > 0;
  }, 'the client connected line');
  return pid;
}

const ioasAlloc = () => iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size });

suite('native backend: a session process per client', () => {
  it('gives two clients two different session processes, neither of them the daemon', async () => {
    const a = await connectDaemonProcess(daemon.socketPath);
    const b = await connectDaemonProcess(daemon.socketPath);
    const pa = await sessionPidOf(daemon, a);
    const pb = await sessionPidOf(daemon, b);
    expect(pa).not.toBe(pb);
    expect([pa, pb]).not.toContain(daemon.child.pid);
    expect(alive(pa) && alive(pb)).toBe(true);
    // Each has its own fd table: the numbers may coincide, the files do not. A's memfd is not
    // open in B's process (the kernel's own EBADF there), whatever number it has.
    const fa = a.memfdCreate('a');
    a.ftruncate(fa, 4096);
    expect(codeOf(() => b.ftruncate(fa, 0))).toBe('EBADF');
    expect(codeOf(() => b.close(fa))).toBe('EBADF');
    expect(a.write(fa, new Uint8Array([1, 2, 3]))).toBe(3);
    a.disconnect();
    b.disconnect();
  });

  it('ends the session process when its client disconnects, and logs the teardown with the client id', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { clientName: 'leaver' });
    const pid = await sessionPidOf(daemon, p);
    p.open('/dev/iommu');
    const id = p.session.sessionId;
    p.disconnect();
    await eventually(() => !alive(pid), 'the session process to exit');
    await eventually(() => daemon.logs.some((l) => l['msg'] === 'client gone, context torn down' && l['session'] === id && l['sessionPid'] === pid), 'the teardown line');
    const greeted = daemon.logs.find((l) => l['msg'] === 'client greeted' && l['session'] === id)!;
    expect(greeted['client']).toBe('leaver');
    expect((greeted['peer'] as { pid: number }).pid).toBe(process.pid);
    await eventually(async () => sample(await daemon.metrics(), 'viommud_clients') === 0, 'the client count to drop');
  });

  it('survives a session process that dies: the client is disconnected, the crash logged and counted, others served', async () => {
    const victim = await connectDaemonProcess(daemon.socketPath);
    const other = await connectDaemonProcess(daemon.socketPath);
    const pid = await sessionPidOf(daemon, victim);
    const before = sample(await daemon.metrics(), 'viommud_session_crashes_total');
    process.kill(pid, 'SIGKILL');
    await eventually(() => !alive(pid), 'the killed process to go');
    await eventually(() => codeOf(() => victim.open('/dev/iommu')) !== undefined, 'the victim to see its connection gone');
    expect(['ECONNRESET', 'ENOTCONN']).toContain(codeOf(() => victim.open('/dev/iommu')));
    await eventually(async () => sample(await daemon.metrics(), 'viommud_session_crashes_total') === before + 1, 'the crash to be counted');
    expect(daemon.logs.some((l) => l['msg'] === 'session process died; its client is disconnected' && l['sessionPid'] === pid && l['signal'] === 'SIGKILL')).toBe(true);
    // The daemon and the other client carry on, and a new client is served.
    expect(other.open('/dev/iommu')).toBeGreaterThanOrEqual(0);
    const fresh = await connectDaemonProcess(daemon.socketPath);
    expect(fresh.open('/dev/iommu')).toBeGreaterThanOrEqual(0);
    victim.disconnect();
    other.disconnect();
    fresh.disconnect();
  });

  it('counts a client\'s ioctls in the broker\'s metrics and inspection API (batched from its process)', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { clientName: 'counted' });
    const fd = p.open('/dev/iommu');
    const before = sample(await daemon.metrics(), 'viommud_ioctls_total', 'ioctl="IOMMU_IOAS_ALLOC",errno="ENOTTY"');
    // The stand-in /dev/iommu is a memfd: the kernel answers ENOTTY, and that is what is counted.
    for (let i = 0; i < 25; i++) expect(codeOf(() => p.ioctl(fd, IOMMU_IOAS_ALLOC, ioasAlloc()))).toBe('ENOTTY');
    await eventually(
      async () => sample(await daemon.metrics(), 'viommud_ioctls_total', 'ioctl="IOMMU_IOAS_ALLOC",errno="ENOTTY"') === before + 25,
      'the ioctls to reach the broker',
    );
    const text = await daemon.metrics();
    expect(sample(text, 'viommud_ioctl_seconds_count', 'ioctl="IOMMU_IOAS_ALLOC"')).toBeGreaterThanOrEqual(before + 25);
    expect(sample(text, 'viommud_session_processes')).toBeGreaterThanOrEqual(2); // this client's and the spare
    const url = daemon.logs.find((l) => l['msg'] === 'inspect listening')!['url'] as string;
    let me: { name: string; ioctls: number; peer: { pid: number } } | undefined;
    await eventually(async () => {
      const body = (await (await fetch(new URL('/api/clients', url))).json()) as { backend: string; clients: Array<{ id: number; name: string; ioctls: number; peer: { pid: number } }> };
      expect(body.backend).toBe('native');
      me = body.clients.find((c) => c.id === p.session.sessionId);
      return me?.ioctls === 25;
    }, 'the inspection counters');
    expect(me!.name).toBe('counted');
    expect(me!.peer.pid).toBe(process.pid);
    p.disconnect();
  });

  it('passes the vEVENTQ and FAULT fds to a client that negotiated them: it reads, polls, writes and closes them itself', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon });
    expect(p.session.minor).toBe(2);
    expect(p.session.features & FEATURE.EVENT_FDS).toBe(FEATURE.EVENT_FDS);
    const ctl = p.open('/dev/iommu');
    const vq = iommu_veventq_alloc.encode({ size: iommu_veventq_alloc.size });
    p.ioctl(ctl, IOMMU_VEVENTQ_ALLOC, vq);
    const fault = iommu_fault_alloc.encode({ size: iommu_fault_alloc.size });
    p.ioctl(ctl, IOMMU_FAULT_QUEUE_ALLOC, fault);
    const vfd = iommu_veventq_alloc.get(vq, 'out_veventq_fd');
    const ffd = iommu_fault_alloc.get(fault, 'out_fault_fd');
    expect(p.holdsLocally(vfd) && p.holdsLocally(ffd)).toBe(true);
    const reads = () => daemon.metrics().then((t) => sample(t, 'viommud_requests_total', 'op="READ",errno="0"') + sample(t, 'viommud_requests_total', 'op="READ",errno="EAGAIN"'));
    const readsBefore = await reads();
    expect(await p.poll(vfd, POLLIN, 0)).toBe(POLLIN);
    const buf = new Uint8Array(8);
    expect(p.read(vfd, buf)).toBe(8);
    expect(new DataView(buf.buffer).getBigUint64(0, true)).toBe(BigInt(FAKE_VEVENTQ_COUNT));
    expect(p.read(ffd, buf)).toBe(8);
    expect(new DataView(buf.buffer).getBigUint64(0, true)).toBe(BigInt(FAKE_FAULT_COUNT));
    // Empty now: the kernel's own EAGAIN, and a poll that waits until a write makes it readable.
    expect(codeOf(() => p.read(vfd, buf))).toBe('EAGAIN');
    const woken = p.poll(vfd, POLLIN, -1);
    setTimeout(() => p.write(vfd, new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0])), 20);
    expect(await woken).toBe(POLLIN);
    expect(p.read(vfd, buf)).toBe(8);
    expect(buf[0]).toBe(3);
    // None of that went through the daemon.
    await new Promise((r) => setTimeout(r, 600));
    expect(await reads()).toBe(readsBefore);
    // Closing closes both copies; the number is then not open anywhere.
    p.close(vfd);
    expect(p.holdsLocally(vfd)).toBe(false);
    expect(codeOf(() => p.read(vfd, buf))).toBe('EBADF');
    expect(codeOf(() => p.close(vfd))).toBe('EBADF');
    p.disconnect();
  });

  it('keeps event fds in the daemon for a client without the feature (read through READ, as 1.1)', async () => {
    const p = await connectDaemonProcess(daemon.socketPath, { fdBridge: addon, eventFds: false });
    expect(p.session.features & FEATURE.EVENT_FDS).toBe(0);
    expect(p.session.features & FEATURE.SCM_RIGHTS).toBe(FEATURE.SCM_RIGHTS);
    const ctl = p.open('/dev/iommu');
    const vq = iommu_veventq_alloc.encode({ size: iommu_veventq_alloc.size });
    p.ioctl(ctl, IOMMU_VEVENTQ_ALLOC, vq);
    const vfd = iommu_veventq_alloc.get(vq, 'out_veventq_fd');
    expect(p.holdsLocally(vfd)).toBe(false);
    const buf = new Uint8Array(8);
    expect(p.read(vfd, buf)).toBe(8);
    expect(buf[0]).toBe(FAKE_VEVENTQ_COUNT);
    p.disconnect();
  });

  it('SIGTERM ends every session process within the deadline; a killed broker leaves no orphans', async () => {
    const d = await native(['--shutdown-deadline', '300']);
    const a = await connectDaemonProcess(d.socketPath);
    const pa = await sessionPidOf(d, a);
    a.open('/dev/iommu');
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(alive(pa)).toBe(false);
    expect(d.logs.some((l) => l['msg'] === 'client gone, context torn down' && l['sessionPid'] === pa && l['reason'] === 'shutdown')).toBe(true);
    a.disconnect();

    const k = await native();
    const b = await connectDaemonProcess(k.socketPath);
    const pb = await sessionPidOf(k, b);
    await k.stop('SIGKILL');
    // Its IPC channel closed: the session process tears down and exits on its own.
    await eventually(() => !alive(pb), 'the orphaned session process to exit');
    b.disconnect();
  });
});
