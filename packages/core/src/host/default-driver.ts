// The driver a host gets when created with no options (ADR 0003): the selftest mock of
// src/selftest/. TODO(core): import { mockIommu } from '../selftest/index.js' once the selftest
// colleague's module lands; until then a placeholder with no translation keeps the tree building.

import { SystemError } from '@viommu/uapi';
import { TRANSLATE_FAULT, type DeviceInfo, type DriverDevice, type DriverV1 } from '../driver/driver.js';

export function defaultDriver(): DriverV1 {
  return placeholderMock();
}

function placeholderMock(): DriverV1 {
  return {
    apiVersion: 1,
    name: 'mock',
    probe() {},
    probeDevice(info: DeviceInfo): DriverDevice {
      return { info, maxPasidLog2: 0, dirtyTracking: false, atsUsable: false, pci: false, enforceCacheCoherency: false, reservedRegions: () => [] };
    },
    allocPagingDomain() {
      throw new SystemError('EOPNOTSUPP', 'ioctl', 'placeholder mock driver');
    },
    attach() {
      throw new SystemError('EOPNOTSUPP', 'ioctl', 'placeholder mock driver');
    },
    translate(_dev, _pasid, _iova, _access, out) {
      out.reason = 'placeholder mock driver';
      return TRANSLATE_FAULT;
    },
  };
}
