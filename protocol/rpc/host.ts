/** `toka/host/*`: facts about the host and the caller's session. */
import { RequestType } from 'vscode-jsonrpc';
import type { ErrorData } from '../errors.js';
import type { MessageDirection } from './common.js';

export interface HostInfo {
  name: 'toka';
  /** Host software version. */
  version: string;
  /** `toka/*` protocol version. */
  protocolVersion: string;
  /** Event log engine (`sqlite`, `memory`). */
  store: string;
  /** Last durable log sequence number. */
  seq: number;
  ready: boolean;
  /** The caller's session. */
  session: { principal: string; vault: string; permissions: string[]; exp: number };
}

/** Describe the host and the caller's session. Any valid token may ask. */
export namespace HostInfoRequest {
  export const method = 'toka/host/info' as const;
  export const messageDirection: MessageDirection = 'clientToServer';
  export const type = new RequestType<Record<string, never>, HostInfo, ErrorData>(method);
}

export interface LogVerifyResult {
  /** Chain intact and replay from zero reproduces the live state digest. */
  ok: boolean;
  /** Records checked. */
  checked: number;
  headSeq: number;
  /** First record that fails the chain check. */
  firstBad?: { seq: number; reason: string };
  liveDigest: string;
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
  export const type = new RequestType<{ workDoneToken?: string | number }, LogVerifyResult, ErrorData>(method);
}
