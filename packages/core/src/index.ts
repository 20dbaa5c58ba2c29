export * from './driver/domain.js';
export * from './host/physical-memory.js';
