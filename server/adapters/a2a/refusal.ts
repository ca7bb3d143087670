/**
 * How the A2A bindings over HTTP answer a host refusal (a HostError the handler left in the call context):
 * its HTTP status on the JSON-RPC binding, and the headers that go with it on every binding.
 */
import type { HostError } from '../../host/errors.js';
import { retryAfterSeconds } from '../http-request.js';

/** The HTTP status of a host refusal on the JSON-RPC binding (others are answered as JSON-RPC errors with 200). */
export function refusalStatus(e: HostError): number {
  switch (e.errorName) {
    case 'Unauthenticated':
      return 401;
    case 'CapabilityDenied':
      return 403;
    case 'RateLimited':
      return 429;
    case 'Unavailable':
      return 503;
    default:
      return 200;
  }
}

/** The headers that go with a refusal: the Bearer challenge, `Retry-After`. */
export function refusalHeaders(e: HostError): Record<string, string> {
  if (e.errorName === 'Unauthenticated') return { 'www-authenticate': 'Bearer realm="toka", error="invalid_token"' };
  if (e.errorName === 'CapabilityDenied') return { 'www-authenticate': 'Bearer realm="toka", error="insufficient_scope"' };
  if (e.errorName === 'RateLimited') return { 'retry-after': String(retryAfterSeconds(e)) };
  return {};
}
