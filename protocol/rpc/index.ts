/** The `toka/*` JSON-RPC protocol: import every method from here. See docs/protocol.md. */
export * from './common.js';
export * from './kernel.js';
export * from './state.js';
export * from './events.js';
export * from './capability.js';
export * from './host.js';
export * from './admin.js';
export * from './initialize.js';
export * from './runtime.js';
export * from './workstreams.js';
