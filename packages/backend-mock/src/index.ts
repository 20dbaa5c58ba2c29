export * as vfioType1 from './vfio-type1.js';
export * from './fail-nth.js';
export * from './fixtures.js';
export * from './harness.js';
export * from './pending.js';
export * from './rng.js';
export * from './scenarios.js';
export * from './utils.js';
