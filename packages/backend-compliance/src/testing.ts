// @viommu/backend-compliance/testing: the VMM rig and GuestMemory without the jest suites, for
// benchmarks and tools run by plain node (the main entry imports @jest/globals, which only loads
// under jest).
export { GuestMemory } from './kit.js';
export * from './rig.js';
