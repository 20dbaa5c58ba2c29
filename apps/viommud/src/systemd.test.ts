// systemd integration against the real daemon: socket activation (LISTEN_FDS/LISTEN_PID with a
// listening socket as fd 3) and readiness/stopping notifications on NOTIFY_SOCKET.
//
// Node 20's dgram cannot bind an AF_UNIX datagram socket and @viommu/native's addon has no
// datagram primitive, so the NOTIFY_SOCKET end is a tiny python3 helper that prints each datagram
// on a line. The listening socket for activation comes from the addon (unixListen: a raw fd that
// nothing in this process accepts on or unlinks).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadAddon, type NativeAddon } from '@viommu/native';
import { connectDaemonProcess } from '@viommu/protocol';
import { buildDaemon, eventually, startDaemon } from './spawn-daemon.js';

const PYTHON = ['/usr/bin/python3', 'python3'].find((p) => {
  try {
    execFileSync(p, ['-c', 'import socket; socket.AF_UNIX'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
const HAVE_NOTIFY = (() => {
  try {
    execFileSync('systemd-notify', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const addon: NativeAddon | undefined = (() => {
  try {
    return loadAddon();
  } catch {
    return undefined;
  }
})();

beforeAll(() => buildDaemon(), 600_000);

/** A bound AF_UNIX datagram socket (the NOTIFY_SOCKET end), collecting what arrives. */
class NotifyListener {
  readonly messages: string[] = [];
  private readonly child: ChildProcess;
  private constructor(readonly path: string) {
    const helper = [
      'import socket, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      'print("bound", flush=True)',
      'while True:',
      '    print(s.recv(4096).decode().replace(chr(10), " "), flush=True)',
    ].join('\n');
    this.child = spawn(PYTHON!, ['-u', '-c', helper, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.messages.push(l));
  }
  static async open(): Promise<NotifyListener> {
    const l = new NotifyListener(join(mkdtempSync(join(tmpdir(), 'viommud-notify-')), 'notify.sock'));
    await eventually(() => l.messages[0] === 'bound', 'the notify socket to be bound');
    l.messages.shift();
    return l;
  }
  close(): void {
    this.child.kill();
  }
}

const notifyReason = !PYTHON ? 'no python3 for the datagram listener' : !HAVE_NOTIFY ? 'no systemd-notify(1) on this machine' : undefined;
const describeNotify = notifyReason ? describe.skip : describe;
if (notifyReason) it.skip(`sd_notify — skipped: ${notifyReason}`, () => {});

describeNotify('sd_notify', () => {
  let listener: NotifyListener;
  beforeAll(async () => {
    listener = await NotifyListener.open();
  });
  afterAll(() => listener?.close());

  it('sends READY=1 once the socket accepts clients, and STOPPING=1 on SIGTERM', async () => {
    const d = await startDaemon([], { env: { NOTIFY_SOCKET: listener.path } });
    await eventually(() => listener.messages.some((m) => /(^| )READY=1( |$)/.test(m)), 'READY=1');
    // Ready means connectable: a client is served right away.
    const p = await connectDaemonProcess(d.socketPath);
    expect(p.open('/dev/iommu')).toBe(3);
    p.disconnect();
    const ready = listener.messages.find((m) => m.includes('READY=1'))!;
    // systemd-notify names the daemon as the main pid (the datagram itself is the helper's: NotifyAccess=all).
    expect(ready).toContain(`MAINPID=${d.child.pid}`);
    expect(listener.messages.some((m) => m.includes('STOPPING=1'))).toBe(false);
    expect(await d.stop('SIGTERM')).toBe(0);
    await eventually(() => listener.messages.some((m) => m.includes('STOPPING=1')), 'STOPPING=1');
    const order = listener.messages.map((m) => (m.includes('READY=1') ? 'ready' : m.includes('STOPPING=1') ? 'stopping' : 'other')).filter((x) => x !== 'other');
    expect(order).toEqual(['ready', 'stopping']);
  });

  it('sends nothing without NOTIFY_SOCKET', async () => {
    const before = listener.messages.length;
    const d = await startDaemon([], { env: { NOTIFY_SOCKET: '' } });
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(listener.messages.length).toBe(before);
  });
});

const describeActivation = addon ? describe : describe.skip;
if (!addon) it.skip('socket activation — skipped: @viommu/native is not built (it makes the listening socket)', () => {});

describeActivation('socket activation', () => {
  it('serves on the socket passed as fd 3 and leaves the socket file alone', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'viommud-act-')), 'activated.sock');
    const fd = addon!.unixListen(path, 16);
    expect(fd).toBeGreaterThan(0);
    const before = statSync(path);
    const d = await startDaemon([], { activation: { fd, socketPath: path } });
    // The daemon has its own copy of the socket now, as a socket unit's service does.
    addon!.close(fd);
    try {
      const rec = d.logs.find((l) => l['msg'] === 'listening')!;
      expect(rec['fd']).toBe(3);
      expect(rec['socket']).toBeUndefined();
      const p = await connectDaemonProcess(path, { clientName: 'activated' });
      expect(p.session.backend).toBe('sim');
      expect(p.open('/dev/iommu')).toBe(3);
      p.disconnect();
      // Not unlinked and re-created: the same inode, the mode the service manager gave it.
      const after = statSync(path);
      expect([after.ino, after.mode]).toEqual([before.ino, before.mode]);
      // Two clients in a row on the inherited socket (it stays listening).
      const q = await connectDaemonProcess(path);
      q.disconnect();
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    // Shutting down closes our copy; the file stays for the service manager to manage.
    expect(existsSync(path)).toBe(true);
  });

  it('ignores LISTEN_FDS meant for another process (LISTEN_PID differs) and uses --socket', async () => {
    const d = await startDaemon([], { env: { LISTEN_PID: '1', LISTEN_FDS: '1' } });
    try {
      const rec = d.logs.find((l) => l['msg'] === 'listening')!;
      expect(rec['socket']).toBe(d.socketPath);
      const p = await connectDaemonProcess(d.socketPath);
      p.disconnect();
    } finally {
      await d.stop();
    }
  });
});
