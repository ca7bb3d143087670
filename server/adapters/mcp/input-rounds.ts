/**
 * Input-required results (2026-07-28, "MRTR"): in that revision a server never sends the client a request
 * (sampling, elicitation, roots). A handler that needs the client's input ends its request with
 * `{ resultType: "input_required", inputRequests, requestState }`, and the client retries the same request
 * with `inputResponses` (one answer per key) and the `requestState` echoed back.
 *
 * Toka's handlers stay imperative (`await ctx.elicit(...)`): a request is replayed from the top on each
 * retry, and an ask is answered from what the client has given so far, in this round or an earlier one, by
 * its key (the handler names it, or `<method>-<n>` by the order of the asks, which replay keeps). An ask with
 * no answer yet is recorded and ends the run (`InputRequired`); every ask started before that ends (as with
 * `Promise.all`) is recorded too, so one round can carry several requests.
 *
 * The answers of earlier rounds travel in `requestState`, signed with HMAC-SHA256 under a key of this process
 * and bound to the caller (vault, subject), the method and its target, with an expiry: a state that was
 * altered, belongs to another caller or request, or is stale is refused (InvalidParams) before the handler
 * runs.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CreateMessageResultSchema, ElicitResultSchema, ErrorCode, ListRootsResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Session } from '../../host/host.js';

/** The server-to-client requests an input round can carry, by the client capability each needs. */
export const INPUT_METHODS = new Map([
  ['sampling/createMessage', 'sampling'],
  ['elicitation/create', 'elicitation'],
  ['roots/list', 'roots'],
] as const);
export type InputMethod = keyof typeof ANSWER_SCHEMAS;

const ANSWER_SCHEMAS = {
  'sampling/createMessage': CreateMessageResultSchema,
  'elicitation/create': ElicitResultSchema,
  'roots/list': ListRootsResultSchema,
} as const;

/** MissingRequiredClientCapabilityError (2026-07-28). */
export const MISSING_CLIENT_CAPABILITY = -32021;
/** Most bytes of a `requestState` accepted back (answers of earlier rounds included). */
export const MAX_REQUEST_STATE = 256 * 1024;
/** How long a `requestState` stays valid. */
const STATE_TTL_MS = 10 * 60_000;

/** Thrown by an ask with no answer yet: ends the run; the exchange answers with the round's input requests. */
export class InputRequired extends McpError {
  static readonly errorName = 'InputRequired';
  constructor() {
    super(ErrorCode.InternalError, 'input required', { name: InputRequired.errorName });
  }
}

/** One request's input rounds: the answers known, the asks still open. */
export class InputRounds {
  /** The asks of this run that have no answer yet, by key. */
  readonly pending = new Map<string, { method: InputMethod; params?: Record<string, unknown> }>();
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly answers: ReadonlyMap<string, unknown>,
    private readonly capabilities: Record<string, unknown>,
  ) {}

  /** The client's answer to `method(params)` under `key`, or `InputRequired` until it gives one. */
  ask(method: InputMethod, params: Record<string, unknown> | undefined, key?: string): Promise<unknown> {
    const n = (this.counts.get(method) ?? 0) + 1;
    this.counts.set(method, n);
    const name = key ?? `${method.replace('/', '-')}-${n}`;
    if (this.answers.has(name)) {
      const answer = ANSWER_SCHEMAS[method].safeParse(this.answers.get(name));
      if (answer.success) return Promise.resolve(answer.data);
      return Promise.reject(new McpError(ErrorCode.InvalidParams, `inputResponses.${name} is not a ${method} result: ${answer.error.issues[0]?.message}`, { name: 'InvalidParams' }));
    }
    const capability = INPUT_METHODS.get(method)!;
    if (!Object.hasOwn(this.capabilities, capability)) {
      return Promise.reject(
        new McpError(MISSING_CLIENT_CAPABILITY, `this request needs the client capability "${capability}", which the request did not declare`, {
          name: 'MissingRequiredClientCapability',
          requiredCapabilities: { [capability]: {} },
        }),
      );
    }
    this.pending.set(name, { method, ...(params ? { params } : {}) });
    return Promise.reject(new InputRequired());
  }

  /** Every answer known so far (for the next round's `requestState`). */
  known(): Record<string, unknown> {
    return Object.fromEntries(this.answers);
  }
}

/** What a `requestState` is bound to. */
export interface StateBinding {
  session: Session;
  method: string;
  /** The tool or prompt name, or the resource URI. */
  target: string;
}

/** Signs and verifies `requestState` with a key of this process. */
export class RequestStateSigner {
  private readonly key = randomBytes(32);

  constructor(private readonly now: () => number) {}

  sign(binding: StateBinding, answers: Record<string, unknown>): string {
    const body = Buffer.from(JSON.stringify({ b: bindingOf(binding), exp: this.now() + STATE_TTL_MS, answers })).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The answers carried by `state`; InvalidParams when it was altered, is stale or belongs elsewhere. */
  verify(binding: StateBinding, state: unknown): Map<string, unknown> {
    const refuse = (why: string) => new McpError(ErrorCode.InvalidParams, `Invalid requestState: ${why}`, { name: 'InvalidParams' });
    if (typeof state !== 'string' || state.length > MAX_REQUEST_STATE) throw refuse('not a state this server issued');
    const dot = state.indexOf('.');
    const body = state.slice(0, dot);
    const mac = Buffer.from(state.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(body), 'base64url');
    if (dot < 0 || mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw refuse('integrity check failed');
    const decoded = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { b: string; exp: number; answers: Record<string, unknown> };
    if (decoded.b !== bindingOf(binding)) throw refuse('issued for another request');
    if (decoded.exp < this.now()) throw refuse('expired');
    return new Map(Object.entries(decoded.answers));
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

function bindingOf({ session, method, target }: StateBinding): string {
  return JSON.stringify([session.claims.vault, session.principal, method, target]);
}
