/** What the handler groups of one MCP session share (built by server.ts, used by the *-handlers.ts files). */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import type { CapabilityClaims } from '../../../protocol/capability.js';
import type { Host, Session } from '../../host/host.js';
import type { RequestDispatcher, RequestExtra } from './dispatch.js';
import type { McpContext, McpRegistry } from './registry.js';

export interface SessionScope {
  /** The session's SDK server: initialize, ping, and requests to the client (sampling, elicitation, roots). */
  readonly server: Server;
  /** Where the handler groups register the methods they answer (dispatch.ts). */
  readonly dispatcher: RequestDispatcher;
  readonly registry: McpRegistry;
  readonly host: Host;
  readonly session: Session;
  /** Re-verify the session's token and charge its rate limit; host refusals become MCP errors. */
  check(): Promise<CapabilityClaims>;
  /** Whether an entry needing `permission` (null: none) is listed for `claims`. */
  visible(claims: CapabilityClaims, permission: string | null): boolean;
  /** The context a registry handler gets for one request. */
  context(extra: RequestExtra): McpContext;
  /** Whether a `notifications/message` at `level` passes the level the client set (`logging/setLevel`). */
  logAllowed(level: LoggingLevel): boolean;
  /** True once the session has been closed. */
  readonly closed: boolean;
}
