// Helpers for the inspection tests (API, browser, and the harness's `viommu inspect` test): a
// daemon child with the inspection server on, an SSE reader, and a poll-until.
import { get } from 'node:http';
import { startDaemon, type RunningDaemon } from '../spawn-daemon.js';
import type { ClientGraph } from './snapshot.js';

/** Polls `cond` every 20 ms, up to 1,000 times (a bound on tries, not a time limit on the daemon). */
export async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Starts the built daemon (sim backend) with --inspect-port 0 and returns its inspection URL. */
export async function startInspectedDaemon(start: typeof startDaemon = startDaemon, extraArgs: string[] = []): Promise<{ daemon: RunningDaemon; url: string }> {
  const daemon = await start(['--inspect-port', '0', ...extraArgs]);
  let url = '';
  await until(() => {
    const rec = daemon.logs.find((l) => l['msg'] === 'inspect listening');
    if (rec) url = rec['url'] as string;
    return rec !== undefined;
  }, 'the inspect listening log line');
  return { daemon, url };
}

export interface UpdateMessage {
  readonly backend: string;
  readonly at: number;
  readonly clients: ClientGraph[];
}

export interface EventStream {
  /** The first update (from now on, or already received and not yet consumed) that satisfies `pred`. */
  next(pred: (m: UpdateMessage) => boolean): Promise<UpdateMessage>;
  close(): void;
}

/** Reads /api/events: parses `event: update` messages into a queue. */
export function openEvents(base: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const queue: UpdateMessage[] = [];
    let wake: (() => void) | undefined;
    const req = get(new URL('/api/events', base), (res) => {
      if (res.statusCode !== 200) return reject(new Error(`/api/events answered ${res.statusCode}`));
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const lines = block.split('\n');
          if (!lines.includes('event: update')) continue;
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          queue.push(JSON.parse(data) as UpdateMessage);
          wake?.();
        }
      });
      resolve({
        async next(pred) {
          for (let tries = 0; tries < 1000; tries++) {
            while (queue.length) {
              const m = queue.shift()!;
              if (pred(m)) return m;
            }
            await new Promise<void>((r) => (wake = r));
          }
          throw new Error('no matching update in 1,000 messages');
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', (e) => reject(e));
  });
}
