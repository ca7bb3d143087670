/**
 * Bearer authentication on MCP Streamable HTTP: every request carries `Authorization: Bearer <capability
 * token>`, verified by the host; refusals are answered with the RFC 6750 challenge that points at the
 * resource metadata (RFC 9728).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes } from '../../../protocol/errors.js';
import { HostError } from '../../host/errors.js';
import type { Host, Session } from '../../host/host.js';
import { bearerToken, retryAfterSeconds, sendJsonRpcError } from '../http-request.js';
import { MCP_PATH, RESOURCE_METADATA_PATH, baseUrl } from './resource-metadata.js';

/**
 * Verify the request's bearer token; on failure answer 401 and return null. The audience is this resource
 * (`<base>/mcp`): an OAuth access token issued for it is accepted here and nowhere else.
 */
export async function authenticate(host: Host, req: IncomingMessage, res: ServerResponse): Promise<Session | null> {
  const token = bearerToken(req.headers.authorization);
  if (token === null) {
    req.resume();
    sendJsonRpcError(
      res,
      401,
      { code: ErrorCodes.Unauthenticated, message: 'a Bearer capability token is required', data: { name: 'Unauthenticated' } },
      { headers: { 'www-authenticate': `Bearer realm="toka", resource_metadata="${baseUrl(req)}${RESOURCE_METADATA_PATH}"` } },
    );
    return null;
  }
  try {
    return await host.authenticate(token, `${baseUrl(req)}${MCP_PATH}`);
  } catch (err) {
    req.resume();
    refuse(req, res, HostError.from(err));
    return null;
  }
}

/**
 * Answer a host refusal: 401 `invalid_token` (Unauthenticated), 403 `insufficient_scope` (CapabilityDenied),
 * 429 with `Retry-After` (RateLimited), else 503.
 */
export function refuse(req: IncomingMessage, res: ServerResponse, e: HostError, id: string | number | null = null): void {
  const metadata = `${baseUrl(req)}${RESOURCE_METADATA_PATH}`;
  const error = { code: e.code, message: e.message, data: e.data };
  if (e.errorName === 'Unauthenticated') {
    sendJsonRpcError(res, 401, error, {
      id,
      headers: {
        'www-authenticate': `Bearer realm="toka", error="invalid_token", error_description="${quoted(e.message)}", resource_metadata="${metadata}"`,
      },
    });
  } else if (e.errorName === 'CapabilityDenied') {
    const scope = typeof e.data.required === 'string' ? `, scope="${quoted(e.data.required)}"` : '';
    sendJsonRpcError(res, 403, error, {
      id,
      headers: { 'www-authenticate': `Bearer realm="toka", error="insufficient_scope"${scope}, resource_metadata="${metadata}"` },
    });
  } else if (e.errorName === 'RateLimited') {
    sendJsonRpcError(res, 429, error, { id, headers: { 'retry-after': String(retryAfterSeconds(e)) } });
  } else {
    sendJsonRpcError(res, 503, error, { id });
  }
}

/** Text safe inside a quoted challenge parameter. */
function quoted(text: string): string {
  return text.replace(/["\\]/g, '');
}

/** The unknown-session answer (also for a session the caller does not own: its existence is not disclosed). */
export function unknownSession(res: ServerResponse): void {
  sendJsonRpcError(res, 404, { code: ErrorCodes.UnknownEntity, message: 'Session not found', data: { name: 'UnknownEntity', entity: 'mcp-session' } });
}
