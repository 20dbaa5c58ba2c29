// A dma-buf as IOMMU_IOAS_MAP_FILE sees it (spec §5.6): an exporter's physically contiguous range
// that the io page table maps without pinning or memlock charge, through an attachment that the
// exporter can revoke. The kernel accepts only exporters that hand iommufd a single physical range
// (VFIO PCI, and the selftest's IOMMU_TEST_OP_DMABUF_GET, the only exporter modelled here).

import { SystemError } from '@viommu/uapi';
import type { FrameRun, PhysicalMemory } from '../host/physical-memory.js';
import type { OpenFile } from '../process/file.js';

/** An importer's side of an attachment: told when the exporter invalidates its mappings. */
export interface DmaBufImporter {
  invalidate(): void;
}

export class DmaBuf {
  /** The exporter refuses new iommufd mappings (the selftest's priv->revoked). */
  revoked = false;
  private readonly importers = new Set<DmaBufImporter>();
  /** The open file plus every attachment; the memory goes back when the last one is dropped. */
  private refs = 1;

  constructor(
    readonly physical: PhysicalMemory,
    /** The exporter's memory: `size` bytes from the start of this run. */
    readonly run: FrameRun,
    readonly size: number,
  ) {}

  /**
   * The physical range iommufd maps (vfio_pci_dma_buf_iommufd_map / the selftest's
   * iommufd_test_dma_buf_iommufd_map): its first frame; ENODEV while revoked.
   */
  iommufdMap(): number {
    if (this.revoked) throw new SystemError('ENODEV', 'ioctl', 'the dma-buf is revoked');
    return this.run.firstFrame;
  }

  /** dma_buf_dynamic_attach + pin: the attachment holds a reference to the buffer. */
  attach(importer: DmaBufImporter): void {
    this.importers.add(importer);
    this.refs++;
  }

  /** Unpin + detach + dma_buf_put. */
  detach(importer: DmaBufImporter): void {
    if (this.importers.delete(importer)) this.put();
  }

  /** dma_buf_invalidate_mappings: every importer drops what it mapped. */
  invalidateMappings(): void {
    for (const imp of [...this.importers]) imp.invalidate();
  }

  /** Drops a reference (the file's on its last close); the last one frees the memory. */
  put(): void {
    if (--this.refs === 0) this.physical.freeRun(this.run.firstFrame);
  }

  get attachments(): number {
    return this.importers.size;
  }
}

/** An open file that is a dma-buf (dma_buf_get succeeds on it). */
export interface DmaBufFile extends OpenFile {
  readonly dmabuf: DmaBuf;
}

/** The dma-buf behind an open file, or undefined when it is not one (or not open). */
export function dmaBufOf(file: OpenFile | undefined): DmaBuf | undefined {
  const d = (file as Partial<DmaBufFile> | undefined)?.dmabuf;
  return d instanceof DmaBuf ? d : undefined;
}
