export * from './backend.js';
export * from './metrics.js';
export * from './peer.js';
export * from './server.js';
export * from './session.js';
export * from './systemd.js';
export * from './spawn-daemon.js';
