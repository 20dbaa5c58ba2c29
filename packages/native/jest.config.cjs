// The addon is built (if missing or stale) before the tests; if it cannot be, the suites that need
// it are skipped and the availability test says why.
module.exports = require('@viommu/jest-config')(__dirname, {
  globalSetup: '<rootDir>/scripts/jest-build-addon.cjs',
});
