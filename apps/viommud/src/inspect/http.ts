// The inspection HTTP server (viommud --inspect-port N): loopback only, read-only.
//   GET /                         the page (one self-contained HTML document, nothing fetched from elsewhere)
//   GET /api/clients              { backend, clients: ClientSummary[] }
//   GET /api/clients/:id/graph    ClientGraph, or 404
//   GET /api/events               Server-Sent Events: an `update` with every client's graph each tick
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Inspector } from './snapshot.js';
import { PAGE_HTML } from './page.js';

export interface InspectServerOptions {
  readonly inspector: Inspector;
  readonly backend: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** How often counters are sampled and SSE updates pushed. */
  readonly intervalMs?: number;
}

export interface InspectServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
// The page needs nothing but itself and this origin; the policy makes that checkable.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
};

export async function startInspectServer(opts: InspectServerOptions): Promise<InspectServer> {
  const { inspector, backend } = opts;
  const streams = new Set<ServerResponse>();
  let port = 0;

  const json = (res: ServerResponse, status: number, body: unknown) => void res.writeHead(status, JSON_HEADERS).end(JSON.stringify(body));

  function handle(req: IncomingMessage, res: ServerResponse): void {
    // Loopback only, and only under a loopback name: a page elsewhere cannot reach it through DNS rebinding.
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}` && host !== `[::1]:${port}`) return json(res, 403, { error: 'loopback host names only' });
    if (req.method !== 'GET') return json(res, 405, { error: 'GET only' });
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/') return void res.writeHead(200, PAGE_HEADERS).end(PAGE_HTML);
    if (path === '/api/clients') return json(res, 200, { backend, clients: inspector.clients() });
    const m = /^\/api\/clients\/(\d+)\/graph$/.exec(path);
    if (m) {
      const g = inspector.graph(Number(m[1]));
      return g ? json(res, 200, g) : json(res, 404, { error: `no client ${m[1]}` });
    }
    if (path === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      push([res]);
      return;
    }
    json(res, 404, { error: `no route ${path}` });
  }

  function push(to: Iterable<ServerResponse>): void {
    const data = JSON.stringify({ backend, at: Date.now(), clients: inspector.graphs() });
    for (const res of to) res.write(`event: update\ndata: ${data}\n\n`);
  }

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  inspector.sample();
  const timer = setInterval(() => {
    inspector.sample();
    if (streams.size) push(streams);
  }, opts.intervalMs ?? 500);
  timer.unref();

  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    close() {
      clearInterval(timer);
      for (const res of streams) res.end();
      streams.clear();
      return new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}
