// What several vendor kits share: the session fields taken from the backend's compliance kit as
// they are, PCI device names, and the guest side of page requests on a vendor whose IOMMU walks the
// guest's stage-1 (VT-d, AMD-Vi): the guest prepares a page for each device, the device's DMA to an
// unmapped address raises a page request, the guest's fault handler maps the prepared page (a miss
// is never cached, so no invalidation is due) and the workload answers SUCCESS; the DMA then
// retries and must read the prepared bytes.

import type { AnyComplianceKit, ComplianceKit } from '@viommu/backend-compliance/testing';
import type { GuestDevice, NestedGuestDevice, WorkloadContext } from '../kit.js';

/** Where guest RAM goes and the GET_HW_INFO type, as the backend's compliance kit has them. */
export function vendorBasics(kit: AnyComplianceKit): { readonly guestRamIpa: number; readonly hwInfoType: number } {
  return { guestRamIpa: kit.guestRam.ipa, hwInfoType: kit.hwInfoType };
}

/** The vIOMMU request of the backend's compliance kit (its type, and fresh vendor data when it has any). */
export function viommuRequestOf(kit: ComplianceKit): () => { readonly type: number; readonly data?: Uint8Array } {
  return () => ({ type: kit.viommu.type, ...(kit.viommu.data ? { data: kit.viommu.data() } : {}) });
}

/** Device names nic0..nic{n-1} for one PCI segment (16-bit requester IDs from 0x0100). */
export function pciDeviceNames(count: number): string[] {
  if (count > 0xff00) throw new RangeError(`${count} devices do not fit one PCI segment`);
  return Array.from({ length: count }, (_, i) => `nic${i}`);
}

/** The bytes the guest's fault handler puts in the page it maps for device `i`'s page request. */
const faultedIn = (i: number) => new TextEncoder().encode(`faulted in for device ${i}`);

/** The guest's pages for the page requests of one session; `dma` is passed to the faulting read (e.g. its PASID). */
export function guestFaultIn(dma: { pasid?: number } = {}) {
  const pages = new Map<number, number>();
  return {
    /** Prepares `dev`'s page and starts the faulting DMA; resolves to a problem, or undefined once the retried read saw the page. */
    provoke(ctx: WorkloadContext, dev: GuestDevice | NestedGuestDevice, addr: bigint): Promise<string | undefined> {
      const want = faultedIn(dev.index);
      const page = ctx.guest.alloc(4096);
      ctx.guest.write(page, want);
      pages.set(dev.index, page);
      return ctx.host.device(dev.name).dma.read(addr, want.length, dma).then(
        (got) => (got.every((b, k) => b === want[k]) ? undefined : `${dev.name}: the retried DMA read other bytes`),
        (e: unknown) => `${dev.name}: the retried DMA failed (${(e as { code?: string }).code ?? String(e)})`,
      );
    },
    /** The guest's fault handler: maps `dev`'s prepared page at the faulting address. */
    handle(dev: GuestDevice | NestedGuestDevice, addr: bigint): void {
      dev.stage1.map!(Number(addr), pages.get(dev.index)!);
    },
  };
}
