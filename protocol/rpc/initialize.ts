/**
 * The Toka parts of the LSP `initialize` handshake on the stdio face (`toka serve --stdio`): what a client
 * may pass as `initializationOptions`, and what the host answers under `capabilities.experimental.toka`.
 * See docs/protocol-stdio.md.
 */
import { z } from 'zod';

/** What the client may pass as `initializationOptions`. */
export interface TokaInitializationOptions {
  /** A capability token: the session is that verified token instead of the local admin. */
  token?: string;
  /** Vault of the local-admin session, non-empty (ignored with `token`). Default `default`. */
  vault?: string;
}

/** Decodes `initializationOptions` (absent or null means `{}`); a mismatch is InvalidParams naming the field. */
export const initializationOptionsSchema = z.object({
  token: z.string().optional(),
  vault: z.string().min(1).optional(),
});

/** The `capabilities.experimental.toka` entry of the initialize result. */
export interface TokaServerCapabilities {
  /** The `toka/*` protocol version the host speaks (`TOKA_PROTOCOL_VERSION`). */
  protocolVersion: string;
  /** Every `toka/*` request method this host serves on the connection, sorted. */
  features: string[];
}
