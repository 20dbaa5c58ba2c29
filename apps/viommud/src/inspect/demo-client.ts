#!/usr/bin/env node
// A client to watch on the inspection page: connects to a viommud socket, builds the nested flow
// (nested-flow.ts) and then, every --every ms, issues an invalidation of --entries requests and
// raises a vEVENT, reading the vEVENTQ back down to --keep queued records. Prints one JSON line
// with the object ids once the flow is built; stops on SIGTERM/SIGINT, or when stdin (a pipe) closes.
//
//   node dist/inspect/demo-client.js --socket /run/viommud.sock [--name demo] [--every 250] [--entries 4] [--keep 4]
import { fstatSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connectDaemonProcess } from '@viommu/protocol';
import { iommu_viommu_event_selftest, iommufd_vevent_header } from '@viommu/uapi';
import { nestedFlow } from './nested-flow.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      name: { type: 'string', default: 'demo-client' },
      every: { type: 'string', default: '250' },
      entries: { type: 'string', default: '4' },
      keep: { type: 'string', default: '4' },
    },
  });
  if (!values.socket) {
    process.stderr.write('usage: demo-client --socket PATH [--name NAME] [--every MS (0 = build and idle)] [--entries N] [--keep N]\n');
    process.exit(2);
  }
  const p = await connectDaemonProcess(values.socket, { clientName: values.name! });
  const f = await nestedFlow(p);
  const { self: _self, invalidate: _i, trigger: _t, destroy: _d, ...ids } = f;
  process.stdout.write(`${JSON.stringify({ ready: true, session: p.session.sessionId, ...ids })}\n`);
  const every = Number(values.every);
  const entries = Number(values.entries);
  const keep = Number(values.keep);
  // One record per read: a read returns as many whole records as fit.
  const record = new Uint8Array(iommufd_vevent_header.size + iommu_viommu_event_selftest.size);
  let queued = 0;
  const timer =
    every > 0
      ? setInterval(() => {
          f.invalidate(entries);
          f.trigger(1);
          // Read records back so the queue stays at `keep` (the page shows the depth move).
          if (++queued > keep) {
            p.read(f.veventqFd, record);
            queued = keep;
          }
        }, every)
      : undefined;
  const stop = () => {
    if (timer) clearInterval(timer);
    p.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A parent that holds our stdin as a pipe or socket (the tests) stops us by closing it; a
  // terminal or /dev/null is left alone. Either way the client stays until told to stop.
  const stdin = fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
  setInterval(() => {}, 1 << 30);
}

main().catch((e: unknown) => {
  process.stderr.write(`demo-client: ${(e as Error).message}\n`);
  process.exit(1);
});
