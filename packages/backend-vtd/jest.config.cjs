const path = require('node:path');

const config = require('@viommu/jest-config')(__dirname);
// The shared rig's jest-free entry point resolves to its source too (the preset maps only `@viommu/<name>`).
config.moduleNameMapper = {
  '^@viommu/backend-compliance/testing$': path.join(__dirname, '..', 'backend-compliance', 'src', 'testing.ts'),
  ...config.moduleNameMapper,
};
module.exports = config;
