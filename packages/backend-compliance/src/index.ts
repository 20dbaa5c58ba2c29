// @viommu/backend-compliance: the compliance cases a backend runs from its own tests
// (runComplianceSuite registers them with jest) and everything of the jest-free ./testing entry.
export * from './testing.js';
export * from './suite.js';
