const path = require('node:path');

const config = require('@viommu/jest-config')(__dirname);
// GuestMemory comes from the compliance package's jest-free entry; map it to its source too (the preset maps only `@viommu/<name>`).
config.moduleNameMapper = {
  '^@viommu/backend-compliance/testing$': path.join(__dirname, '..', '..', 'packages', 'backend-compliance', 'src', 'testing.ts'),
  ...config.moduleNameMapper,
};
module.exports = config;
