export * from './codec.js';
export * from './constants.js';
export * from './errno.js';
export * from './ioctls.js';
export * from './process.js';
export * from './selftest.js';
export * from './structs.js';
export * from './vfio.js';
