/**
 * Toka's A2A client: the reference SDK's `Client` over the binding asked for — the SDK's JSON-RPC and
 * HTTP+JSON transports, or Toka's WebSocket binding (websocket-transport.ts) — with a bearer token on every
 * request. Used by `toka a2a card|send` and by the `a2a_delegate` tool.
 *
 * The Agent Card names where each binding lives; its URL must be on the host the caller named (same host
 * name and port), so a card cannot send the caller's token to a third party.
 */
import { AGENT_CARD_PATH, type AgentCard } from '@a2a-js/sdk';
import { ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory, type Client, type TransportFactory } from '@a2a-js/sdk/client';
import { WEBSOCKET_BINDING } from '../../../protocol/a2a.js';
import { A2aConnectionError, WebSocketTransport } from './websocket-transport.js';

/** Largest Agent Card body read from a remote agent. */
export const MAX_CARD_BYTES = 1024 * 1024;

/** The bindings a caller may choose, by the short name the CLI and the tool use. */
export const A2A_BINDINGS = { jsonrpc: 'JSONRPC', rest: 'HTTP+JSON', ws: WEBSOCKET_BINDING } as const;
export type A2aBinding = keyof typeof A2A_BINDINGS;

export function isA2aBinding(value: string): value is A2aBinding {
  return Object.hasOwn(A2A_BINDINGS, value);
}

export interface A2aConnectOptions {
  /** Bearer credential of the remote side, sent with every request (and at the WebSocket upgrade). */
  token?: string;
  /** The binding to use; the card must offer it. Default: the first one of the card Toka speaks. */
  binding?: A2aBinding;
  /** Aborts fetching the card. */
  signal?: AbortSignal;
}

export interface A2aConnection {
  client: Client;
  /** The card the client was made from (the public one). */
  card: AgentCard;
  /** The binding chosen. */
  binding: A2aBinding;
  /** Close what the client holds open (the WebSocket). */
  close(): void;
}

/** The base URL as given: http(s), no credentials, query or fragment; trailing slashes dropped. */
export function a2aBaseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new A2aConnectionError(`not a URL: ${JSON.stringify(value.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new A2aConnectionError(`an http(s) URL is required, got ${url.protocol}`);
  if (url.username || url.password) throw new A2aConnectionError('credentials in the URL are not allowed');
  if (url.search || url.hash) throw new A2aConnectionError('the base URL has no query or fragment');
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

/** Fetch the remote card and make a client of the chosen binding. */
export async function connectA2a(base: string, options: A2aConnectOptions = {}): Promise<A2aConnection> {
  const url = a2aBaseUrl(base);
  const fetchImpl = authorizedFetch(options.token, options.signal);
  const card = await new DefaultAgentCardResolver({ fetchImpl: boundedFetch(fetchImpl, MAX_CARD_BYTES) }).resolve(url.href.replace(/\/+$/, ''), AGENT_CARD_PATH);
  const offered = (card.supportedInterfaces ?? []).map((i) => i.protocolBinding.toUpperCase());
  const binding =
    options.binding ?? (Object.keys(A2A_BINDINGS) as A2aBinding[]).find((b) => offered.includes(A2A_BINDINGS[b].toUpperCase()));
  if (binding === undefined || !offered.includes(A2A_BINDINGS[binding].toUpperCase())) {
    throw new A2aConnectionError(
      `the agent at ${url.origin} does not offer ${binding === undefined ? 'a binding Toka speaks' : `the ${binding} binding (${A2A_BINDINGS[binding]})`}; its card offers: ${offered.join(', ') || 'nothing'}`,
    );
  }
  const chosen = card.supportedInterfaces.find((i) => i.protocolBinding.toUpperCase() === A2A_BINDINGS[binding].toUpperCase())!;
  const endpoint = new URL(chosen.url, url);
  if (endpoint.hostname !== url.hostname || effectivePort(endpoint) !== effectivePort(url)) {
    throw new A2aConnectionError(`the card puts the ${binding} binding on ${endpoint.host}, not on ${url.host}: refused (the token is only sent to the host named)`);
  }
  let transport: WebSocketTransport | null = null;
  const factory: TransportFactory =
    binding === 'ws'
      ? { protocolName: WEBSOCKET_BINDING, create: async (at) => (transport = new WebSocketTransport(at, { token: options.token })) }
      : binding === 'rest'
        ? new RestTransportFactory({ fetchImpl })
        : new JsonRpcTransportFactory({ fetchImpl });
  const client = await new ClientFactory({ transports: [factory] }).createFromAgentCard(card);
  return { client, card, binding, close: () => (transport as WebSocketTransport | null)?.close() };
}

/** The port a URL connects to (its default when none is written). */
function effectivePort(url: URL): string {
  if (url.port) return url.port;
  return url.protocol === 'https:' || url.protocol === 'wss:' ? '443' : '80';
}

/** `fetch` with the bearer token on every request, and the connection's signal when the request has none. */
function authorizedFetch(token: string | undefined, signal: AbortSignal | undefined): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers, signal: init?.signal ?? signal });
  };
}

/**
 * `fetch` whose response body is read whole, refusing one over `max` bytes (declared or actually sent), so a
 * remote side cannot make the caller buffer an unbounded body. For single JSON documents (not streams).
 */
export function boundedFetch(fetchImpl: typeof fetch, max: number): typeof fetch {
  return async (input, init) => {
    const res = await fetchImpl(input, init);
    const tooLarge = () => new A2aConnectionError(`the answer of ${res.url || 'the remote agent'} is larger than ${max} bytes`);
    if (Number(res.headers.get('content-length') ?? 0) > max) {
      await res.body?.cancel();
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > max) {
          await reader.cancel();
          throw tooLarge();
        }
        chunks.push(value);
      }
    }
    return new Response(res.body ? Buffer.concat(chunks) : null, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}
