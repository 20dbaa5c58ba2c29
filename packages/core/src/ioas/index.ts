// The IOAS io page table: see io-pagetable.ts.
export * from './io-pagetable.js';
export * from './types.js';
