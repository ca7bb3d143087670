/**
 * `toka a2a card <url>` and `toka a2a send <url> "text" [--stream]`: calling a remote A2A agent (any A2A
 * v1.0 peer, Toka or not) with the reference SDK's client over its JSON-RPC binding. The token (a bearer
 * credential of the remote side) comes from the CLI's one token source; the card needs none (with one, the
 * extended card is fetched). Results go to stdout as JSON (one line per update with --stream).
 */
import { AGENT_CARD_PATH, AgentCard, SendMessageRequest, StreamResponse, Task, Message } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import { UsageError, tokenFrom, type TokenFlags } from './args.js';
import type { Command } from './commands.js';

const TOKEN_OPTIONS = {
  'token-file': { type: 'string', value: '<file|->', help: 'read the remote bearer token from this file (- for stdin)', default: '$TOKA_TOKEN, else $TOKA_TOKEN_FILE' },
} as const;

/** The remote base URL: http(s), no query or fragment. */
function baseUrl(value: string | undefined): string {
  if (value === undefined) throw new UsageError('the remote agent\'s base URL is required (e.g. http://127.0.0.1:7420)');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`not a URL: ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`an http(s) URL is required, got ${url.protocol}`);
  return url.toString().replace(/\/+$/, '');
}

function optionalToken(flags: TokenFlags): string | undefined {
  if (flags['token-file'] === undefined && process.env.TOKA_TOKEN === undefined && process.env.TOKA_TOKEN_FILE === undefined) return undefined;
  return tokenFrom(flags);
}

/** A client of the remote agent whose every request carries the token. */
export async function a2aClient(url: string, token: string | undefined): Promise<Client> {
  const fetchImpl: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { transports: [new JsonRpcTransportFactory({ fetchImpl })] }));
  return factory.createFromUrl(url);
}

export const a2aCardCommand: Command = {
  summary: 'print a remote A2A agent\'s card: <url> (the extended card when a token is given)',
  options: { ...TOKEN_OPTIONS },
  async run(flags, positionals) {
    const url = baseUrl(positionals[0]);
    const token = optionalToken(flags as TokenFlags);
    if (token === undefined) {
      const res = await fetch(`${url}/${AGENT_CARD_PATH}`, { headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`GET ${url}/${AGENT_CARD_PATH}: HTTP ${res.status}`);
      process.stdout.write(`${JSON.stringify(AgentCard.toJSON(AgentCard.fromJSON(await res.json())), null, 2)}\n`);
      return 0;
    }
    const card = await (await a2aClient(url, token)).getAgentCard();
    process.stdout.write(`${JSON.stringify(AgentCard.toJSON(card), null, 2)}\n`);
    return 0;
  },
};

export const a2aSendCommand: Command = {
  summary: 'send a message to a remote A2A agent: <url> "text" [--skill ID] [--task ID] [--stream]',
  options: {
    ...TOKEN_OPTIONS,
    skill: { type: 'string', value: '<id>', help: 'the skill (on Toka: the agent) the message addresses', default: 'the agent\'s only skill' },
    task: { type: 'string', value: '<id>', help: 'continue this task (on Toka: answer its approval with "approve" or "deny")', default: 'a new task' },
    stream: { type: 'boolean', help: 'print every update as a JSON line as it comes', default: 'off: wait and print the task' },
  },
  async run(flags, positionals) {
    const url = baseUrl(positionals[0]);
    const text = positionals[1];
    if (text === undefined || positionals.length > 2) throw new UsageError('usage: toka a2a send <url> "text" [--skill ID] [--task ID] [--stream]');
    const skill = typeof flags.skill === 'string' ? flags.skill : undefined;
    const task = typeof flags.task === 'string' ? flags.task : undefined;
    const client = await a2aClient(url, tokenFrom(flags as TokenFlags));
    const request = SendMessageRequest.fromJSON({
      message: {
        messageId: crypto.randomUUID(),
        role: 'ROLE_USER',
        parts: [{ text }],
        ...(task ? { taskId: task } : {}),
        ...(skill ? { metadata: { skill } } : {}),
      },
    });
    if (flags.stream === true) {
      for await (const update of client.sendMessageStream(request)) process.stdout.write(`${JSON.stringify(StreamResponse.toJSON(update))}\n`);
      return 0;
    }
    const result = await client.sendMessage(request);
    process.stdout.write(`${JSON.stringify('messageId' in result ? Message.toJSON(result) : Task.toJSON(result), null, 2)}\n`);
    return 0;
  },
};
