// Backpressure on event streams, against a real daemon process on a real socket: a subscriber that
// stops reading costs the daemon bounded memory, records past max_queued are dropped and reported
// as lost, a client that reads nothing for --stall-ms is disconnected and torn down, and none of
// this holds up another client.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { enc, iommufd_viommu } from '@viommu/backend-mock';
import { connectDaemonProcess, FLAG, finishFrame, frameWriter, OP, type DaemonProcess } from '@viommu/protocol';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  iommu_ioas_alloc,
  iommu_test_cmd_trigger_vevent,
  iommu_viommu_event_selftest,
  iommufd_vevent_header,
} from '@viommu/uapi';
import { buildDaemon, eventually, sample, startDaemon, type RunningDaemon } from './spawn-daemon.js';

/** Streams never stall here: this daemon waits an hour before it calls a client stalled. */
let patient: RunningDaemon;
/** This one gives up on a client that reads nothing for 300 ms. */
let strict: RunningDaemon;

beforeAll(async () => {
  buildDaemon();
  patient = await startDaemon(['--stall-ms', '3600000']);
  strict = await startDaemon(['--stall-ms', '300']);
}, 600_000);

// Each stop waits up to the daemon's shutdown deadline for clients still connected.
afterAll(async () => {
  await patient?.stop();
  await strict?.stop();
}, 120_000);

const RECORD = iommufd_vevent_header.size + iommu_viommu_event_selftest.size;
/** An EVENT frame carrying one record: header, u32 lost, bytes (u32 length + data). */
const EVENT_FRAME = 16 + 4 + 4 + RECORD;
const MAX_QUEUED = 8;

/** A vIOMMU with a deep vEVENTQ (the kernel queue itself never overflows) and a vDEVICE that can raise events. */
async function eventSource(p: DaemonProcess) {
  const self = await iommufd_viommu.setup(p, { viommu: 1 });
  const q = self.testCmdVeventqAlloc(self.viommu_id, IOMMU_VEVENTQ_TYPE_SELFTEST, 1 << 19);
  self.testCmdVdeviceAlloc(self.viommu_id, self.device_id, 0x99);
  self.testCmdMockDomainReplace(self.stdev_id, self.nested_hwpt_id);
  const trigger = enc(iommu_test_cmd_trigger_vevent, { op: IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: self.device_id });
  /** `n` TRIGGER_VEVENT ioctls pipelined without waiting for replies (the client is not reading them). */
  const flood = (n: number) => {
    for (let i = 0; i < n; i++) {
      const w = frameWriter(trigger.length + 64);
      // IOCTL body (fd, request, kind 2 = struct, the struct), then an empty memory-sync section.
      w.i32(self.fd).u32(IOMMU_TEST_CMD).u8(2).bytes(trigger).u32(0);
      p.sendFrame(finishFrame(w, 0x4000_0000 + i, OP.IOCTL, FLAG.MEM).slice());
    }
  };
  return { self, fd: q.veventqFd, flood };
}

/** Unpacks streamed records into their sequence numbers (each EVENT carries one record here). */
function collect(p: DaemonProcess, fd: number) {
  const got = { sequences: [] as number[], lost: 0, lostFlags: 0, frames: 0 };
  p.subscribe(
    fd,
    (e) => {
      got.frames++;
      got.lost += e.lost;
      for (let off = 0; off + RECORD <= e.data.length; off += RECORD) {
        const hdr = iommufd_vevent_header.decode(e.data.subarray(off));
        if (hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) got.lostFlags++;
        else got.sequences.push(hdr.sequence);
      }
    },
    { readSize: RECORD, maxQueued: MAX_QUEUED },
  );
  return got;
}

const metric = async (d: RunningDaemon, name: string, labels = '') => sample(await d.metrics(), name, labels);

describe('a subscriber that stops reading', () => {
  it('costs bounded memory, loses records past max_queued with a count, and others are served meanwhile', async () => {
    const p = await connectDaemonProcess(patient.socketPath, { clientName: 'stalled-subscriber' });
    try {
      const { fd, flood } = await eventSource(p);
      const got = collect(p, fd);
      const lostBefore = await metric(patient, 'viommud_events_lost_total');
      p.pauseReading();
      const N = 4000;
      flood(N);
      // The daemon has drained all N records from the vEVENTQ: streamed to us or dropped.
      await eventually(
        async () => (await metric(patient, 'viommud_events_streamed')) + (await metric(patient, 'viommud_events_lost_total')) - lostBefore >= N,
        'the daemon to stream or drop every record',
      );
      const text = await patient.metrics();
      const lost = sample(text, 'viommud_events_lost_total') - lostBefore;
      expect(lost).toBeGreaterThan(0);
      // Unsent EVENT frames are capped by max_queued, however many records were produced.
      expect(sample(text, 'viommud_event_queue_depth')).toBeLessThanOrEqual(MAX_QUEUED);
      expect(sample(text, 'viommud_event_unsent_bytes')).toBeLessThanOrEqual(MAX_QUEUED * EVENT_FRAME);
      // Everything unsent: at most the replies to what we sent (one per request) plus those frames.
      const reply = 16 + 8 + 4 + trigger().length + 4 + 4;
      expect(sample(text, 'viommud_unsent_bytes')).toBeLessThanOrEqual(N * reply + MAX_QUEUED * EVENT_FRAME);

      // Another client is served while this one is stuck.
      const other = await connectDaemonProcess(patient.socketPath);
      const ofd = other.open('/dev/iommu');
      const arg = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size, flags: 0, out_ioas_id: 0 });
      expect(other.ioctl(ofd, IOMMU_IOAS_ALLOC, arg)).toBe(0);
      expect(iommu_ioas_alloc.get(arg, 'out_ioas_id')).toBeGreaterThan(0);
      other.disconnect();

      // Reading again: every record produced was either delivered or counted lost, and the loss is
      // reported even though no record follows it.
      p.resumeReading();
      await eventually(() => got.sequences.length + got.lost >= N, 'delivered + lost to account for every record');
      expect(got.sequences.length + got.lost).toBe(N);
      expect(got.lost).toBe(lost);
      expect(got.lostFlags).toBe(0);
      expect(got.sequences.length).toBeGreaterThanOrEqual(MAX_QUEUED);
      // In order, no duplicates, and the gaps are the lost ones.
      for (let i = 1; i < got.sequences.length; i++) expect(got.sequences[i]!).toBeGreaterThan(got.sequences[i - 1]!);
      expect(got.sequences.at(-1)!).toBeLessThan(N);
      // The session is intact: a synchronous call works again.
      expect(p.open('/dev/iommu')).toBeGreaterThan(0);
    } finally {
      p.disconnect();
    }
  });

  it('is disconnected after --stall-ms without reading, and its objects are torn down', async () => {
    const p = await connectDaemonProcess(strict.socketPath, { clientName: 'stalled-reader' });
    const { fd, flood } = await eventSource(p);
    collect(p, fd);
    const live = await metric(strict, 'viommud_live_objects', 'type="VIOMMU"');
    expect(live).toBe(1);
    p.pauseReading();
    // Enough replies and records to fill the kernel's socket buffer, so bytes wait in the daemon.
    flood(4000);
    await eventually(async () => (await metric(strict, 'viommud_clients')) === 0, 'the stalled client to be disconnected');
    const text = await strict.metrics();
    expect(sample(text, 'viommud_live_objects', 'type="VIOMMU"')).toBe(0);
    expect(sample(text, 'viommud_live_objects', 'type="VEVENTQ"')).toBe(0);
    expect(sample(text, 'viommud_unsent_bytes')).toBe(0);
    expect(sample(text, 'viommud_protocol_errors_total', 'kind="stalled-reader"')).toBe(1);
    expect(strict.logs.some((l) => l['msg'] === 'client stopped reading, disconnecting')).toBe(true);
    const gone = strict.logs.find((l) => l['msg'] === 'client gone, context torn down' && (l['objectsTornDown'] as Record<string, number>)?.['VEVENTQ'] === 1);
    expect(gone).toBeDefined();
    p.resumeReading();
    await eventually(() => !p.connected, 'the client to see the disconnect');
    expect(() => p.open('/dev/iommu')).toThrow(/ECONNRESET|ENOTCONN/);
    // The daemon serves the next client.
    const q = await connectDaemonProcess(strict.socketPath);
    expect(q.open('/dev/iommu')).toBe(3);
    q.disconnect();
  });
});

function trigger(): Uint8Array {
  return enc(iommu_test_cmd_trigger_vevent, { op: IOMMU_TEST_OP_TRIGGER_VEVENT, dev_id: 0 });
}
