/** What the handler groups of one MCP session share (built by server.ts, used by the *-handlers.ts files). */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { LoggingLevel, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { CapabilityClaims } from '../../../protocol/capability.js';
import type { Host, Session } from '../../host/host.js';
import type { McpContext, McpRegistry } from './registry.js';

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface SessionScope {
  readonly server: Server;
  readonly registry: McpRegistry;
  readonly host: Host;
  readonly session: Session;
  /** Re-verify the session's token and charge its rate limit; host refusals become MCP errors. */
  check(): Promise<CapabilityClaims>;
  /** Whether an entry needing `permission` (null: none) is listed for `claims`. */
  visible(claims: CapabilityClaims, permission: string | null): boolean;
  /** The context a registry handler gets for one request. */
  context(extra: Extra): McpContext;
  /** Whether a `notifications/message` at `level` passes the level the client set (`logging/setLevel`). */
  logAllowed(level: LoggingLevel): boolean;
  /** True once the session has been closed. */
  readonly closed: boolean;
}
