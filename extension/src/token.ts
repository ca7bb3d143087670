/**
 * The capability token of a remote connection: kept in VS Code's SecretStorage (never in settings, never
 * logged) and renewed before it expires. Renewal mints a fresh token for the session's own subject and
 * permissions (`toka/capability/mint`, so the token needs `capability:grant`), stores it, and reconnects.
 * A token that cannot renew itself is left to expire, with a warning ahead of time.
 */
import * as vscode from 'vscode';
import type { RequestType } from 'vscode-jsonrpc';
import type { ErrorData } from '../../protocol/errors.js';
import { MAX_TOKEN_LIFETIME_S, permits } from '../../protocol/capability.js';
import { CapabilityMintRequest, type HostInfo } from '../../protocol/rpc/index.js';

export const TOKEN_SECRET = 'toka.server.token';
/** Renew this long before `exp`. */
export const RENEW_BEFORE_S = 5 * 60;

type Send = <P, R>(definition: { type: RequestType<P, R, ErrorData> }, params: P) => Promise<R>;

export class TokenKeeper implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private send: Send | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
    private readonly reconnect: () => Promise<void>,
  ) {}

  current(): Thenable<string | undefined> {
    return this.secrets.get(TOKEN_SECRET);
  }

  bind(send: Send): void {
    this.send = send;
  }

  /** Arrange the renewal of the session `info` describes. */
  schedule(info: HostInfo): void {
    this.dispose();
    const { exp, principal, permissions } = info.session;
    const inMs = Math.max(0, (exp - RENEW_BEFORE_S) * 1000 - Date.now());
    if (!permits(permissions, 'capability:grant')) {
      this.timer = setTimeout(
        () => void vscode.window.showWarningMessage('Toka: the host token expires in 5 minutes and cannot renew itself (it lacks capability:grant). Run "Toka: Connect to Host" with a new token.'),
        inMs,
      );
      return;
    }
    this.timer = setTimeout(() => void this.renew(principal, permissions), inMs);
  }

  private async renew(subject: string, permissions: string[]): Promise<void> {
    if (!this.send) return;
    try {
      const minted = await this.send(CapabilityMintRequest, { subject, permissions, ttlSeconds: MAX_TOKEN_LIFETIME_S, label: 'vscode session renewal' });
      await this.secrets.store(TOKEN_SECRET, minted.token);
      this.log.appendLine(`[toka] token renewed (grant ${minted.grant}, expires ${new Date(minted.claims.exp * 1000).toISOString()})`);
      await this.reconnect();
    } catch (err) {
      this.log.appendLine(`[toka] token renewal failed: ${(err as Error).message}`);
      void vscode.window.showWarningMessage(`Toka: renewing the host token failed: ${(err as Error).message}`);
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
