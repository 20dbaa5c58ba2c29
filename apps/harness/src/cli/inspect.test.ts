// `viommu inspect` against a real viommud child (built from apps/viommud) with --inspect-port 0,
// and a real client child (viommud's demo client: the nested flow on the selftest mock).
// The harness does not depend on the daemon package: both are run as programs from its dist.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { renderTree, type InspectGraph } from './inspect.js';
import { runCaptured } from './capture.js';

const VIOMMUD = join(dirname(fileURLToPath(import.meta.url)), '../../../viommud');
const TSC = join(VIOMMUD, '../../node_modules/.bin/tsc');

const run = (argv: string[]) => runCaptured(['inspect', ...argv]);

/** Spawns `node script args`, resolves with the child and the first stdout JSON line matching `pick`. */
function startChild(script: string, args: string[], pick: (rec: Record<string, unknown>) => boolean): Promise<{ child: ChildProcess; rec: Record<string, unknown> }> {
  const child = spawn(process.execPath, [join(VIOMMUD, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (pick(rec)) resolve({ child, rec });
      } catch {
        // not a JSON line
      }
    });
  });
}

let daemon: ChildProcess;
let client: ChildProcess;
let url: string;
let ids: Record<string, number>;

beforeAll(async () => {
  // The daemon app and what it references (incremental); if a referenced package is mid-change,
  // compile the protocol and the app against the others' existing dist (as viommud's own tests do).
  try {
    execFileSync(TSC, ['--build'], { cwd: VIOMMUD, stdio: 'pipe' });
  } catch {
    execFileSync(TSC, ['-p', join(VIOMMUD, '../../packages/protocol/tsconfig.json')], { stdio: 'inherit' });
    execFileSync(TSC, ['-p', join(VIOMMUD, 'tsconfig.json')], { stdio: 'inherit' });
  }
  const socket = join(mkdtempSync(join(tmpdir(), 'viommu-inspect-')), 'viommud.sock');
  const d = await startChild('dist/cli.js', ['--socket', socket, '--inspect-port', '0'], (r) => r['msg'] === 'inspect listening');
  daemon = d.child;
  url = d.rec['url'] as string;
  const c = await startChild('dist/inspect/demo-client.js', ['--socket', socket, '--name', 'inspect-test', '--every', '0'], (r) => r['ready'] === true);
  client = c.child;
  ids = c.rec as Record<string, number>;
  // The build runs first and takes as long as the machine needs.
}, 600_000);

afterAll(() => {
  client?.kill('SIGTERM');
  daemon?.kill('SIGTERM');
});

describe('viommu inspect', () => {
  it('prints each client as a tree from its IOAS down, with counts', async () => {
    const r = await run(['--url', url]);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^client ${ids['session']} "inspect-test" — pid \\d+ uid \\d+ gid \\d+, up [\\d.]+ s$`));
    expect(lines[1]).toMatch(/^ {2}10 objects, \d+ ioctls \([\d.]+\/s\), 0 invalidations \([\d.]+\/s\), 0 events \([\d.]+\/s\), queue depth 0, lost 0$/);
    const at = (text: string) => {
      const i = lines.findIndex((l) => l.includes(text));
      expect([text, i >= 0]).toEqual([text, true]);
      return { i, depth: lines[i]!.search(/\S/) };
    };
    const ioas = at(`IOAS ${ids['ioas']} (areas=1, mappedBytes=4096)`);
    const hwpt = at(`hwpt → HWPT ${ids['parent']} (kind=paging, nestParent=true`);
    const viommu = at(`viommu → vIOMMU ${ids['viommu']} (viommuType=SELFTEST`);
    const vdev = at(`vdevice → vDEVICE ${ids['vdevice']} (virtId=0x99`);
    const q = at(`veventq → vEVENTQ ${ids['veventq']} (veventqType=SELFTEST, depth=16, queued=0, lost=0, produced=0)`);
    const hwq = at(`hw_queue → HW queue ${ids['hwQueue']} (queueType=SELFTEST, index=0`);
    const nested = at(`nested → HWPT ${ids['nested']} (kind=nested`);
    expect(ioas.depth).toBe(2);
    expect(hwpt.depth).toBe(4);
    expect(viommu.depth).toBe(6);
    for (const child of [vdev, q, hwq, nested]) expect(child.depth).toBe(8);
    // The device shows under the nested HWPT it is attached to, and again (referred to) under its vDEVICE.
    expect(at(`attached → DEVICE ${ids['device']}`).depth).toBe(10);
    expect(r.out).toContain(`device → DEVICE ${ids['device']} ↑ see above`);
  });

  it('--json prints the raw graphs; --client picks one', async () => {
    const all = await run(['--url', url, '--json']);
    expect(all.code).toBe(0);
    const graphs = JSON.parse(all.out) as InspectGraph[];
    expect(graphs.map((g) => g.id)).toEqual([ids['session']]);
    const one = await run(['--url', url, '--client', String(ids['session']), '--json']);
    const g = JSON.parse(one.out) as InspectGraph;
    expect(g.nodes.find((n) => n.id === ids['viommu'])).toMatchObject({ type: 'VIOMMU', label: `vIOMMU ${ids['viommu']}` });
    expect(g.edges.filter((e) => e.relation === 'vdevice')).toHaveLength(1);
    expect(renderTree(g)).toContain(`vIOMMU ${ids['viommu']}`);
  });

  it('exit 1 for a client that is not connected, 2 for usage errors, 0 for --help', async () => {
    const none = await run(['--url', url, '--client', '999']);
    expect(none.code).toBe(1);
    expect(none.err).toContain('no client 999');
    expect((await run([])).code).toBe(2);
    expect((await run(['--url', 'not a url'])).code).toBe(2);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('viommu inspect');
  });

  it('exit 4 when nothing listens at --url', async () => {
    // A port that was free a moment ago.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const r = await run(['--url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/cannot reach viommud at http:\/\/127\.0\.0\.1:\d+\/: ECONNREFUSED/);
  });
});
