// Loads every module that registers iommufd ioctls, so that importing the core (or creating a
// host) fills the dispatcher's table. A new object family adds its module here.
import './iommufd/ioas.js';
import './iommufd/main-cmds.js';
import './iommufd/vfio-compat.js';
import './device/device.js';
import './hwpt/paging.js';
import './viommu/index.js';
import './selftest/index.js';
