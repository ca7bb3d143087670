/**
 * `toka a2a card <url>` and `toka a2a send <url> "text" [--stream] [--binding jsonrpc|rest|ws]`: calling a
 * remote A2A agent (any A2A v1.0 peer, Toka or not) with Toka's A2A client (server/runtime/a2a/client.ts:
 * the reference SDK's client over its JSON-RPC or HTTP+JSON transport, or over Toka's WebSocket binding).
 * The token (a bearer credential of the remote side) comes from the CLI's one token source; the card needs
 * none (with one, the extended card is fetched). Results go to stdout as JSON (one line per update with --stream).
 */
import { AGENT_CARD_PATH, AgentCard, SendMessageRequest, StreamResponse, Task, Message } from '@a2a-js/sdk';
import { A2A_BINDINGS, a2aBaseUrl, boundedFetch, connectA2a, MAX_CARD_BYTES, isA2aBinding, type A2aBinding, type A2aConnection } from '../runtime/a2a/client.js';
import { UsageError, tokenFrom, type TokenFlags } from './args.js';
import type { Command } from './commands.js';

const TOKEN_OPTIONS = {
  'token-file': { type: 'string', value: '<file|->', help: 'read the remote bearer token from this file (- for stdin)', default: '$TOKA_TOKEN, else $TOKA_TOKEN_FILE' },
} as const;

const BINDING_OPTION = {
  binding: { type: 'string', value: `<${Object.keys(A2A_BINDINGS).join('|')}>`, help: 'the binding to call over (the card must offer it)', default: 'the first of the card Toka speaks' },
} as const;

/** The remote base URL: http(s), no credentials, query or fragment. */
function baseUrl(value: string | undefined): string {
  if (value === undefined) throw new UsageError('the remote agent\'s base URL is required (e.g. http://127.0.0.1:7420)');
  try {
    return a2aBaseUrl(value).href.replace(/\/+$/, '');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function bindingOf(flags: Record<string, unknown>): A2aBinding | undefined {
  const value = flags.binding;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isA2aBinding(value)) throw new UsageError(`--binding must be one of ${Object.keys(A2A_BINDINGS).join(', ')}`);
  return value;
}

function optionalToken(flags: TokenFlags): string | undefined {
  if (flags['token-file'] === undefined && process.env.TOKA_TOKEN === undefined && process.env.TOKA_TOKEN_FILE === undefined) return undefined;
  return tokenFrom(flags);
}

/** Run `work` with a connection to the remote agent, closed afterwards. */
async function withConnection<T>(url: string, token: string | undefined, binding: A2aBinding | undefined, work: (c: A2aConnection) => Promise<T>): Promise<T> {
  const connection = await connectA2a(url, { ...(token !== undefined ? { token } : {}), ...(binding ? { binding } : {}) });
  try {
    return await work(connection);
  } finally {
    connection.close();
  }
}

export const a2aCardCommand: Command = {
  summary: 'print a remote A2A agent\'s card: <url> (the extended card when a token is given)',
  options: { ...TOKEN_OPTIONS, ...BINDING_OPTION },
  async run(flags, positionals) {
    const url = baseUrl(positionals[0]);
    const binding = bindingOf(flags);
    const token = optionalToken(flags as TokenFlags);
    if (token === undefined) {
      const res = await boundedFetch(fetch, MAX_CARD_BYTES)(`${url}/${AGENT_CARD_PATH}`, { headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`GET ${url}/${AGENT_CARD_PATH}: HTTP ${res.status}`);
      process.stdout.write(`${JSON.stringify(AgentCard.toJSON(AgentCard.fromJSON(await res.json())), null, 2)}\n`);
      return 0;
    }
    const card = await withConnection(url, token, binding, (c) => c.client.getAgentCard());
    process.stdout.write(`${JSON.stringify(AgentCard.toJSON(card), null, 2)}\n`);
    return 0;
  },
};

export const a2aSendCommand: Command = {
  summary: 'send a message to a remote A2A agent: <url> "text" [--skill ID] [--task ID] [--stream] [--binding B]',
  options: {
    ...TOKEN_OPTIONS,
    ...BINDING_OPTION,
    skill: { type: 'string', value: '<id>', help: 'the skill (on Toka: the agent) the message addresses', default: 'the agent\'s only skill' },
    task: { type: 'string', value: '<id>', help: 'continue this task (on Toka: answer its approval with "approve" or "deny")', default: 'a new task' },
    stream: { type: 'boolean', help: 'print every update as a JSON line as it comes', default: 'off: wait and print the task' },
  },
  async run(flags, positionals) {
    const url = baseUrl(positionals[0]);
    const text = positionals[1];
    if (text === undefined || positionals.length > 2) throw new UsageError('usage: toka a2a send <url> "text" [--skill ID] [--task ID] [--stream] [--binding B]');
    const binding = bindingOf(flags);
    const skill = typeof flags.skill === 'string' ? flags.skill : undefined;
    const task = typeof flags.task === 'string' ? flags.task : undefined;
    const token = tokenFrom(flags as TokenFlags);
    const request = SendMessageRequest.fromJSON({
      message: {
        messageId: crypto.randomUUID(),
        role: 'ROLE_USER',
        parts: [{ text }],
        ...(task ? { taskId: task } : {}),
        ...(skill ? { metadata: { skill } } : {}),
      },
    });
    return withConnection(url, token, binding, async ({ client }) => {
      if (flags.stream === true) {
        for await (const update of client.sendMessageStream(request)) process.stdout.write(`${JSON.stringify(StreamResponse.toJSON(update))}\n`);
        return 0;
      }
      const result = await client.sendMessage(request);
      process.stdout.write(`${JSON.stringify('messageId' in result ? Message.toJSON(result) : Task.toJSON(result), null, 2)}\n`);
      return 0;
    });
  },
};
