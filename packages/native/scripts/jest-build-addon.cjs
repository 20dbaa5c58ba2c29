// jest globalSetup: build the addon the tests load (never fails: see build-addon.mjs).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

module.exports = function buildAddon() {
  spawnSync(process.execPath, [path.join(__dirname, 'build-addon.mjs')], { stdio: 'inherit' });
};
