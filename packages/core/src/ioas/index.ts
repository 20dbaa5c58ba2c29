// The IOAS io page table (see io-pagetable.ts and docs/adr/0020-ioas-io-page-table.md).
export { DmaBuf, dmaBufOf, type DmaBufFile, type DmaBufImporter } from './dmabuf.js';
export { mmCounters, accountModeFor, type MmCounters } from './accounting.js';
export * from './io-pagetable.js';
export { mmExited } from './pages.js';
export { framePinCount, runHasPins } from './pin-counts.js';
export * from './types.js';
