/** Shared bits of the `toka/*` JSON-RPC protocol. */

/** Which side sends a message. */
export type MessageDirection = 'clientToServer' | 'serverToClient';

/** Version of the `toka/*` protocol, advertised at `initialize` and by `toka/host/info`. */
export const TOKA_PROTOCOL_VERSION = '0.1.0';

/** Largest JSON-RPC message a Toka endpoint accepts, in bytes (observations are ≤ 1 MiB plus envelope). */
export const MAX_MESSAGE_BYTES = 2 * 1024 * 1024;
