// Shared jest preset. A package's jest.config.cjs is: module.exports = require('@viommu/jest-config')(__dirname)
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..');

module.exports = function viommuJestConfig(packageDir, overrides = {}) {
  return {
    rootDir: packageDir,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
    transform: {
      '^.+\\.(t|j)s$': [
        require.resolve('@swc/jest'),
        {
          jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
          module: { type: 'commonjs' },
          sourceMaps: 'inline',
        },
      ],
    },
    moduleNameMapper: {
      // Sources import siblings as './x.js' (NodeNext ESM); jest runs the .ts file itself.
      '^(\\.{1,2}/.*)\\.js$': '$1',
      // Workspace packages resolve to their sources, so tests never wait on a build.
      '^@viommu/([a-z0-9-]+)$': path.join(repoRoot, 'packages', '$1', 'src', 'index.ts'),
      // A subpath entry (`@viommu/backend-compliance/testing`) is `src/<entry>.ts` of its package.
      '^@viommu/([a-z0-9-]+)/([a-z0-9-]+)$': path.join(repoRoot, 'packages', '$1', 'src', '$2.ts'),
    },
    // Silence per-test console noise; failures still print in full.
    verbose: false,
    // jest's 5 s default is a time limit in disguise: tests that talk to a spawned daemon miss it on a
    // loaded 2-core machine. This is only a guard against a hang.
    testTimeout: 600_000,
    ...overrides,
  };
};
