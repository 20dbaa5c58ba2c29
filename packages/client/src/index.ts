// @viommu/client: the VMM-facing API over any Process target.
export * from './device.js';
export * from './errors.js';
export * from './hwpt.js';
export * from './iommufd.js';
export * from './ioas.js';
export * from './object.js';
export * from './queues.js';
export * from './viommu.js';
// The daemon's Process (viommud over its Unix socket), so a VMM needs only this package.
export { connectDaemonProcess, type ConnectOptions, DaemonProcess, type SessionInfo, type StreamedEvent } from '@viommu/protocol';
