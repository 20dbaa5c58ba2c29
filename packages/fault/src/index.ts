export * from './clock.js';
export * from './constants.js';
export { CookieTable } from './cookies.js';
export { EventQueue, type ReadyListener } from './eventq.js';
export { MinHeap } from './min-heap.js';
export * from './fault-queue.js';
export * from './iopf.js';
export * from './reader.js';
export * from './veventq.js';
