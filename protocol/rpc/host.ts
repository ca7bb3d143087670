/** `toka/host/*` and `toka/log/*`: facts about the host and the caller's session; verifying the log. */
import { RequestType } from 'vscode-jsonrpc';
import { z } from 'zod';
import type { ErrorData } from '../errors.js';
import type { MessageDirection, NoParams } from './common.js';

/** The caller's session as `toka/host/info` reports it. */
export interface SessionInfo {
  /** The subject every operation on this connection is sent as. */
  principal: string;
  /** The vault the session acts in. */
  vault: string;
  /** The permissions held, `area:verb` with wildcards. */
  permissions: string[];
  /** When the session's token expires, seconds since the epoch. */
  exp: number;
}

export interface HostInfo {
  /** Always `toka`. */
  name: 'toka';
  /** Host software version. */
  version: string;
  /** `toka/*` protocol version. */
  protocolVersion: string;
  /** Event log engine (`sqlite`, `memory`). */
  store: string;
  /** Last durable log sequence number. */
  seq: number;
  /** False while the host is shutting down or out of service. */
  ready: boolean;
  /** The caller's session. */
  session: SessionInfo;
}

/** Describe the host and the caller's session. Any valid token may ask. */
export namespace HostInfoRequest {
  export const method = 'toka/host/info' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<NoParams, HostInfo, ErrorData>(method);
  export const paramsSchema = z.object({});
}

export interface LogVerifyParams {
  /** LSP work-done progress token: when given, the host reports `$/progress` under it. */
  workDoneToken?: string | number;
}

/** The first record that fails the hash-chain check. */
export interface ChainFault {
  /** Its sequence number. */
  seq: number;
  /** What is wrong with it (`gap`, `broken link`, `body not JSON`, `hash mismatch`, `index mismatch`). */
  reason: string;
}

export interface LogVerifyResult {
  /** Chain intact and replay from zero reproduces the live state digest. */
  ok: boolean;
  /** Records checked. */
  checked: number;
  /** The log head when the check ran. */
  headSeq: number;
  /** First record that fails the chain check. */
  firstBad?: ChainFault;
  /** Digest of the live state (snapshot plus tail). */
  liveDigest: string;
  /** Digest of the state replayed from zero (empty when the chain check failed). */
  replayDigest: string;
}

/**
 * Verify the whole log: hash chain, then replay from zero against the live state digest.
 * Long-running: reports LSP work-done progress when the request carries a `workDoneToken`, and honours
 * `$/cancelRequest`. Requires `log:verify`.
 */
export namespace LogVerifyRequest {
  export const method = 'toka/log/verify' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<LogVerifyParams, LogVerifyResult, ErrorData>(method);
  export const paramsSchema = z.object({ workDoneToken: z.union([z.string(), z.number()]).optional() });
}
