/** OAuth 2.0 Protected Resource Metadata (RFC 9728) for `/mcp`: what the resource is and the scopes it knows. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PERMISSIONS } from '../../../protocol/capability.js';
import { sendJson } from '../http-request.js';

export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';
/** Where MCP Streamable HTTP is served: the protected resource. */
export const MCP_PATH = '/mcp';

/** The route hook of the HTTP face (`HttpServer.route`). */
export interface RouteTarget {
  route(method: string, path: string, handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): void;
}

/** `http://<Host>`: the Host header has passed the HTTP face's allow-list by the time a route runs. */
export function baseUrl(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

/**
 * Serve the metadata of the resource at `resourcePath`, at the well-known path and at its resource-specific
 * form. `authorizationServer`: the host is its own authorization server (oauth.ts), named in the metadata.
 */
export function mountResourceMetadata(target: RouteTarget, resourcePath: string, authorizationServer = false): void {
  const metadata = (req: IncomingMessage, res: ServerResponse) => {
    const body = {
      resource: `${baseUrl(req)}${resourcePath}`,
      ...(authorizationServer ? { authorization_servers: [baseUrl(req)] } : {}),
      resource_name: 'Toka MCP server',
      bearer_methods_supported: ['header'],
      scopes_supported: Object.keys(PERMISSIONS),
    };
    sendJson(res, 200, body, { 'cache-control': 'max-age=300' });
  };
  target.route('GET', RESOURCE_METADATA_PATH, metadata);
  target.route('GET', `${RESOURCE_METADATA_PATH}${resourcePath}`, metadata);
}
