/**
 * Toka's A2A WebSocket binding as a wire contract (docs/a2a-websocket-binding.md): the names the server
 * (server/adapters/a2a/websocket.ts) and the client transport (server/runtime/a2a/websocket-transport.ts)
 * both use, so that neither can drift from the other.
 */

/** The binding's URI, the `protocolBinding` of its interface on the Agent Card. */
export const WEBSOCKET_BINDING = 'https://toka.dev/a2a/bindings/websocket/v1';
/** The notification that carries one update of a stream: `{id: <request id>, eventId, result: StreamResponse}`. */
export const STREAM_UPDATE = 'StreamUpdate';
/** The request that ends one of the connection's streams early: `{id: <request id of the stream>}`. */
export const CANCEL_STREAM = 'CancelStream';
/** Largest frame either side sends or accepts (bytes). */
export const WEBSOCKET_MAX_FRAME_BYTES = 1024 * 1024;
