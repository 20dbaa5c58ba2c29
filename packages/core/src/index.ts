export * from './driver/domain.js';
export * from './host/address-space.js';
export * from './host/physical-memory.js';
