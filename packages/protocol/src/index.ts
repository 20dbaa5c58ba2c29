// @viommu/protocol: the viommud wire format (docs/protocol.md) and a Process over the daemon socket.
export * from './buffer.js';
export * from './daemon-process.js';
export * from './direct-channel.js';
export * from './errno.js';
export * from './fd-channel.js';
export * from './frames.js';
export * from './mirror.js';
export * from './sync-channel.js';
export * from './wire.js';
