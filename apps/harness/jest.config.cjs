module.exports = require('@viommu/jest-config')(__dirname);
