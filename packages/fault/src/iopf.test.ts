import { describe, expect, it } from '@jest/globals';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE as LAST,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID as PASID_VALID,
  IOMMU_PAGE_RESP_FAILURE,
  IOMMU_PAGE_RESP_INVALID,
} from './constants.js';
import { FaultQueue } from './fault-queue.js';
import { type FaultGroup, GroupState, IopfDevice, type IopfHandle, type PageRequest } from './iopf.js';

interface Response {
  grpid: number;
  pasid: number;
  code: number;
  group: FaultGroup | undefined;
}

function device() {
  const responses: Response[] = [];
  const dev = new IopfDevice((request, code, group) => responses.push({ grpid: request.grpid, pasid: request.pasid, code, group }));
  return { dev, responses };
}

/** Captures what the FAULT queue is handed. */
class CaptureQueue extends FaultQueue {
  readonly groups: FaultGroup[] = [];
  override enqueue(group: FaultGroup): boolean {
    this.groups.push(group);
    return super.enqueue(group);
  }
}

const req = (grpid: number, addr: number, flags = 0, pasid = 0): PageRequest => ({ flags, pasid, grpid, perm: 1, addr: BigInt(addr) });

describe('IopfDevice group assembly', () => {
  it('delivers a lone last-page request as a group of one', () => {
    const { dev } = device();
    const queue = new CaptureQueue();
    const handle: IopfHandle = { devId: 1, queue };
    expect(dev.report(req(2, 0x1000, LAST), handle)).toBe(0);
    expect(queue.groups).toHaveLength(1);
    expect(queue.groups[0]!.faults.map((f) => f.addr)).toEqual([0x1000n]);
    expect(queue.groups[0]!.state).toBe(GroupState.Queued);
  });

  it('holds requests until their group index sees LAST_PAGE, then delivers them in arrival order', () => {
    const { dev, responses } = device();
    const queue = new CaptureQueue();
    const handle: IopfHandle = { devId: 1, queue };
    dev.report(req(5, 0x1000), handle);
    dev.report(req(7, 0x9000), handle);
    dev.report(req(5, 0x2000), handle);
    dev.report(req(5, 0x3000), handle);
    expect(queue.groups).toHaveLength(0);
    expect(responses).toHaveLength(0); // partial requests need no response
    expect(dev.partialCount).toBe(4);
    dev.report(req(5, 0x4000, LAST), handle);
    expect(queue.groups).toHaveLength(1);
    const g = queue.groups[0]!;
    expect(g.faults.map((f) => f.addr)).toEqual([0x1000n, 0x2000n, 0x3000n, 0x4000n]);
    expect(g.last.addr).toBe(0x4000n);
    expect(dev.partialCount).toBe(1); // group 7 still waits
    dev.report(req(7, 0xa000, LAST), handle);
    expect(queue.groups[1]!.faults.map((f) => f.addr)).toEqual([0x9000n, 0xa000n]);
    expect(dev.partialCount).toBe(0);
  });

  it('matches partial requests by group index only, whatever their PASID (as io-pgfault does)', () => {
    const { dev } = device();
    const queue = new CaptureQueue();
    const handle: IopfHandle = { devId: 1, queue };
    dev.report(req(3, 0x1000, PASID_VALID, 10), handle);
    dev.report(req(3, 0x2000, PASID_VALID | LAST, 11), handle);
    expect(queue.groups[0]!.faults.map((f) => f.pasid)).toEqual([10, 11]);
  });

  it('answers INVALID at once and returns -EINVAL when no fault-capable domain is attached', () => {
    const { dev, responses } = device();
    expect(dev.report(req(4, 0x1000), undefined)).toBe(-22);
    expect(dev.report(req(4, 0x2000, LAST | PASID_VALID, 9), undefined)).toBe(-22);
    expect(responses.map((r) => [r.grpid, r.pasid, r.code, r.group])).toEqual([
      [4, 0, IOMMU_PAGE_RESP_INVALID, undefined],
      [4, 9, IOMMU_PAGE_RESP_INVALID, undefined],
    ]);
    expect(dev.partialCount).toBe(0);
  });

  it('aborts with FAILURE when the handler cannot take the group', () => {
    const { dev, responses } = device();
    const queue = new FaultQueue();
    queue.destroy();
    dev.report(req(1, 0x1000), { devId: 1, queue });
    dev.report(req(1, 0x2000, LAST), { devId: 1, queue });
    expect(responses).toHaveLength(1);
    expect(responses[0]!.code).toBe(IOMMU_PAGE_RESP_FAILURE);
    expect(responses[0]!.group!.faults).toHaveLength(2);
    expect(dev.responses).toEqual([0, 0, 1]);
  });

  it('discards partial requests without a response on overflow and on removal, and refuses later ones', () => {
    const { dev, responses } = device();
    const queue = new CaptureQueue();
    const handle: IopfHandle = { devId: 1, queue };
    dev.report(req(1, 0x1000), handle);
    dev.report(req(2, 0x2000), handle);
    expect(dev.discardPartial()).toBe(2);
    dev.report(req(1, 0x3000, LAST), handle);
    expect(queue.groups[0]!.faults).toHaveLength(1);
    dev.report(req(3, 0x4000), handle);
    dev.remove();
    expect(dev.partialCount).toBe(0);
    expect(responses).toHaveLength(0);
    expect(dev.report(req(3, 0x5000, LAST), handle)).toBe(-22);
    expect(responses.map((r) => r.code)).toEqual([IOMMU_PAGE_RESP_INVALID]);
  });

  it('refuses to answer a group twice', () => {
    const { dev, responses } = device();
    const queue = new CaptureQueue();
    dev.report(req(1, 0x1000, LAST), { devId: 1, queue });
    const g = queue.groups[0]!;
    dev.respond(g, 0);
    expect(() => dev.respond(g, 1)).toThrow(/twice/);
    expect(responses).toHaveLength(1);
    expect(() => device().dev.respond(g, 0)).toThrow(/wrong device/);
  });
});
