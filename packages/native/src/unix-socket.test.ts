import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { POLLIN, PAGE_SIZE } from '@viommu/uapi';
import { addonPath } from './addon.js';
import type { NativeProcess } from './native-process.js';
import { codeOf, describeNative, hostProcess } from './test/native.js';
import { SCM_MAX_FD, SOCK_SEQPACKET, peerCred, recvFds, recvFdsAsync, sendFds, socketpair, unixAccept, unixListen } from './unix-socket.js';

const text = (b: Uint8Array) => Buffer.from(b).toString();

describeNative('Unix sockets: SCM_RIGHTS and SO_PEERCRED', () => {
  let p: NativeProcess;
  beforeEach(() => {
    p = hostProcess();
  });
  afterEach(() => p.dispose());

  it('passes a pipe over a socketpair; the received fd is the same pipe', async () => {
    const [a, b] = socketpair(p);
    const [r, w] = p.pipe();
    expect(sendFds(p, a, Buffer.from('pipe'), [w])).toBe(4);
    const buf = new Uint8Array(16);
    const got = await recvFdsAsync(p, b, buf);
    expect([got.length, text(buf.subarray(0, 4)), got.fds.length, got.truncated]).toEqual([4, 'pipe', 1, false]);
    const passed = got.fds[0]!;
    expect(passed).not.toBe(w);
    p.write(passed, Buffer.from('through the copy'));
    const out = new Uint8Array(32);
    expect(text(out.subarray(0, p.read(r, out)))).toBe('through the copy');
  });

  it('says who is on the other end', () => {
    const [a] = socketpair(p, SOCK_SEQPACKET);
    expect(peerCred(p, a)).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  it('reports the kernel\'s errors: nothing waiting, no data with rights, too many fds, not a socket', () => {
    const [a, b] = socketpair(p);
    expect(codeOf(() => recvFds(p, b, new Uint8Array(4)))).toBe('EAGAIN');
    expect(codeOf(() => sendFds(p, a, new Uint8Array(0), [a]))).toBe('EINVAL');
    expect(codeOf(() => sendFds(p, a, Uint8Array.of(1), new Array<number>(SCM_MAX_FD + 1).fill(a)))).toBe('EINVAL');
    const [r] = p.pipe();
    expect(codeOf(() => peerCred(p, r))).toBe('ENOTSOCK');
    expect(codeOf(() => sendFds(p, a, Uint8Array.of(1), [9999]))).toBe('EBADF');
  });

  it('passes fds both ways between two processes over a real listening socket', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'viommu-native-')), 'sock');
    const listener = unixListen(p, path);
    const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'fd-child.cjs'), addonPath(), path], { stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const conn = await unixAccept(p, listener);
    expect(peerCred(p, conn).pid).toBe(child.pid);

    // Parent -> child: the write end of a pipe; the child writes into it.
    const [r, w] = p.pipe();
    sendFds(p, conn, Buffer.from('hello'), [w]);
    p.close(w);
    const greeting = new Uint8Array(128);
    // POLLHUP may come with it: the child closes its copy right after writing.
    expect((await p.poll(r, POLLIN, -1)) & POLLIN).toBe(POLLIN);
    expect(text(greeting.subarray(0, p.read(r, greeting)))).toBe(`child ${child.pid} got "hello"`);

    // Child -> parent: a memfd it made; its pages are readable here.
    const msg = new Uint8Array(8);
    const got = await recvFdsAsync(p, conn, msg);
    expect([got.length, text(msg.subarray(0, 1)), got.fds.length]).toEqual([1, 'M', 1]);
    const view = p.mmap(got.fds[0]!, PAGE_SIZE, 0n);
    expect(text(view.bytes.subarray(0, 29))).toBe('memfd contents from the child');

    p.close(conn);
    expect(await exited).toBe(0);
  });
});
