/**
 * Built-in `http_fetch` tool: GET or POST to an allow-listed host.
 *
 * - The URL's host must match `allowHosts` (exact names or `*.suffix`; IP literals exactly). Only `http:` and
 *   `https:`, no credentials in the URL.
 * - Addresses: loopback, private, link-local, unique-local, CGNAT, multicast, reserved and documentation
 *   ranges are denied unless a range is listed in `allowAddresses`. The name is resolved by our own `lookup`,
 *   which refuses the whole answer when any address is denied; the connection goes to a checked address
 *   (no DNS-rebinding window), and the connected socket's peer address is checked once more.
 * - Redirects are followed by hand (at most `maxRedirects`), each hop checked like the first; credentials
 *   headers are dropped when the origin changes.
 * - Bounds: `httpTimeoutMs` for the whole fetch, `httpResponseBytes` of body kept (rest dropped with a
 *   marker), `httpRequestBytes` of request body. Cancel aborts the request.
 * - Permission `tool:http`; side effect `external` unless configured otherwise.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction, type Socket } from 'node:net';
import { limitExceeded, ToolError } from './errors.js';
import { SIDE_EFFECTS, type SideEffect, type Tool, type ToolContext, type ToolResult } from './types.js';

export interface HttpConfig {
  /** Hosts that may be fetched: exact names, `*.example.com` (any subdomain), IP literals, or `*` (any host). */
  allowHosts: readonly string[];
  /** CIDR ranges exempt from the denied address ranges, e.g. `127.0.0.1/32` for a local service. */
  allowAddresses?: readonly string[];
  /** Redirects followed per fetch. Default 5. */
  maxRedirects?: number;
  /** Side-effect class of the tool (default `external`). */
  sideEffect?: SideEffect;
}

/** Address ranges never fetched unless listed in `allowAddresses`. */
export const DENIED_RANGES: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
  '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24',
  '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', '64:ff9b::/96', '64:ff9b:1::/48', '100::/64', '2001:db8::/32', '2002::/16', 'fc00::/7',
  'fe80::/10', 'fec0::/10', 'ff00::/8',
];

/** Request headers the caller may not set (framing, routing and hop-by-hop headers are ours). */
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'expect']);
/** Headers dropped when a redirect changes origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);
/** Response headers shown to the LLM. */
const SHOWN_HEADERS = ['content-type', 'content-length', 'location', 'retry-after'];

interface FetchArgs { url: string; method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string }

function addRanges(list: BlockList, ranges: readonly string[], what: string): void {
  for (const r of ranges) {
    const slash = r.lastIndexOf('/');
    const addr = slash < 0 ? r : r.slice(0, slash);
    const family = isIP(addr);
    const prefix = slash < 0 ? (family === 6 ? 128 : 32) : Number(r.slice(slash + 1));
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new ToolError('InvalidArguments', `http_fetch ${what}: ${JSON.stringify(r)} is not a CIDR range`);
    }
    list.addSubnet(addr, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
}

export function createHttpTool(config: HttpConfig): Tool {
  const denied = new BlockList();
  addRanges(denied, DENIED_RANGES, 'denied ranges');
  const exempt = new BlockList();
  addRanges(exempt, config.allowAddresses ?? [], 'allowAddresses');
  const hosts = config.allowHosts.map((h) => h.toLowerCase());
  const maxRedirects = config.maxRedirects ?? 5;
  const sideEffect = config.sideEffect ?? 'external';
  if (!SIDE_EFFECTS.includes(sideEffect)) throw new ToolError('InvalidArguments', `http_fetch sideEffect must be one of ${SIDE_EFFECTS.join(', ')}`);

  const addressAllowed = (address: string): boolean => {
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return !denied.check(address, type) || exempt.check(address, type);
  };
  const hostAllowed = (host: string): boolean =>
    hosts.some((h) => h === '*' || h === host || (h.startsWith('*.') && host.endsWith(h.slice(1))));

  /** Resolves like dns.lookup, but fails when any resolved address is denied. */
  const lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => !addressAllowed(a.address));
      if (bad || addresses.length === 0) {
        return callback(new ToolError('Denied', `${hostname} resolves to ${bad?.address ?? 'nothing'}, a denied address range`) as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };

  /** Checks a URL before any connection: scheme, credentials, host allow-list, literal address. */
  const checkUrl = (raw: string, base?: URL): URL => {
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      throw new ToolError('InvalidArguments', `${JSON.stringify(raw.slice(0, 200))} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ToolError('Denied', `scheme ${url.protocol} is not allowed (http and https only)`);
    if (url.username || url.password) throw new ToolError('Denied', 'credentials in the URL are not allowed; use a header');
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (!hostAllowed(host)) throw new ToolError('Denied', `host ${host} is not in the allow-list`, { host });
    if (isIP(host) && !addressAllowed(host)) throw new ToolError('Denied', `address ${host} is in a denied address range`, { host });
    return url;
  };

  return {
    manifest: {
      name: 'http_fetch',
      description:
        'Fetch a URL with GET or POST (allow-listed hosts only). Returns the status, the content type and the body as text, truncated past the limit. Redirects are followed.',
      inputSchema: {
        type: 'object',
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 8192 },
          method: { enum: ['GET', 'POST'] },
          headers: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 8192 } },
          body: { type: 'string', description: 'Request body (POST only).' },
        },
        required: ['url'],
        additionalProperties: false,
      },
      sideEffect,
      permission: 'tool:http',
    },
    async call(raw, ctx) {
      const args = raw as FetchArgs;
      let method = args.method ?? 'GET';
      const headers = new Map<string, string>();
      for (const [k, v] of Object.entries(args.headers ?? {})) {
        const name = k.toLowerCase();
        if (FORBIDDEN_HEADERS.has(name) || name.startsWith('proxy-')) throw new ToolError('InvalidArguments', `header ${k} may not be set`);
        headers.set(name, v);
      }
      let body: Buffer | undefined;
      if (args.body !== undefined) {
        if (method !== 'POST') throw new ToolError('InvalidArguments', 'a body is only sent with POST');
        body = Buffer.from(args.body, 'utf8');
        if (body.length > ctx.limits.httpRequestBytes) throw limitExceeded('httpRequestBytes', ctx.limits.httpRequestBytes, `request body of ${body.length} bytes is too large`);
      }
      const timeout = AbortSignal.timeout(ctx.limits.httpTimeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      let url = checkUrl(args.url);
      for (let hop = 0; ; hop++) {
        const res = await send(url, method, headers, body, signal, lookup, addressAllowed, ctx, timeout);
        const location = res.headers.location;
        if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location) return readBody(url, res, ctx, signal, timeout);
        res.resume();
        if (hop === maxRedirects) throw limitExceeded('maxRedirects', maxRedirects, `too many redirects from ${args.url.slice(0, 200)}`);
        const next = checkUrl(location, url);
        if (next.origin !== url.origin) for (const h of CREDENTIAL_HEADERS) headers.delete(h);
        if (res.statusCode === 303 || (method === 'POST' && (res.statusCode === 301 || res.statusCode === 302))) {
          method = 'GET';
          body = undefined;
          headers.delete('content-type');
        }
        url = next;
      }
    },
  };
}

function aborted(ctx: ToolContext, timeout: AbortSignal): ToolError {
  if (ctx.signal.aborted) return new ToolError('Cancelled', 'the tool call was cancelled');
  if (timeout.aborted) {
    const e = limitExceeded('httpTimeoutMs', ctx.limits.httpTimeoutMs, 'the fetch took too long');
    return new ToolError('Timeout', e.message, e.data);
  }
  return new ToolError('Failed', 'the fetch was aborted');
}

function send(
  url: URL,
  method: string,
  headers: Map<string, string>,
  body: Buffer | undefined,
  signal: AbortSignal,
  lookup: LookupFunction,
  addressAllowed: (a: string) => boolean,
  ctx: ToolContext,
  timeout: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = Object.fromEntries(headers);
    if (body) h['content-length'] = String(body.length);
    const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers: h, lookup, signal, agent: false });
    req.on('socket', (socket: Socket) => {
      socket.once('connect', () => {
        const peer = socket.remoteAddress;
        if (!peer || !addressAllowed(peer)) req.destroy(new ToolError('Denied', `connected to ${peer ?? 'an unknown address'}, a denied address range`));
      });
    });
    req.on('response', resolve);
    req.on('error', (err) => {
      if (err instanceof ToolError) return reject(err);
      if (signal.aborted) return reject(aborted(ctx, timeout));
      reject(new ToolError('Failed', `fetching ${url.origin} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    req.end(body);
  });
}

function readBody(url: URL, res: IncomingMessage, ctx: ToolContext, signal: AbortSignal, timeout: AbortSignal): Promise<ToolResult> {
  const cap = ctx.limits.httpResponseBytes;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      const status = res.statusCode ?? 0;
      const head = [`HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd()];
      const shown: Record<string, string> = {};
      for (const name of SHOWN_HEADERS) {
        const v = res.headers[name];
        if (typeof v === 'string') {
          head.push(`${name}: ${v}`);
          shown[name] = v;
        }
      }
      let text = `${head.join('\n')}\n\n${Buffer.concat(chunks).toString('utf8')}`;
      if (truncated) text += `\n[response truncated at ${cap} bytes (limit httpResponseBytes)]`;
      resolve({ content: text, isError: status >= 400, data: { url: url.href, status, headers: shown, bytes: kept, truncated } });
    };
    const fail = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (signal.aborted) return reject(aborted(ctx, timeout));
      reject(new ToolError('Failed', `reading the response of ${url.origin} failed: ${err?.message ?? 'the connection closed early'}`));
    };
    res.on('data', (chunk: Buffer) => {
      const room = cap - kept;
      if (chunk.length > room) {
        chunks.push(chunk.subarray(0, room));
        kept = cap;
        truncated = true;
        done();
        res.destroy();
        return;
      }
      chunks.push(chunk);
      kept += chunk.length;
    });
    res.on('end', done);
    res.on('error', fail);
    res.on('close', () => fail());
  });
}
