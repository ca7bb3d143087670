/**
 * Builds the configured provider from explicit settings and the environment (names from the original
 * Toka: LLM_PROVIDER, ANTHROPIC_API_KEY, OPENAI_API_KEY, LLM_MODEL, LLM_BASE_URL, LOCAL_LLM_ENDPOINT,
 * LLM_RATE_LIMIT, LLM_TIMEOUT; plus LLM_TRANSCRIPT for `scripted`). Keys come only from the environment or
 * a secret file named by `<NAME>_FILE`; they are held by the SDK client and never logged or put in errors.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from '../../host/logger.js';
import { ANTHROPIC_DEFAULT_MODEL, ANTHROPIC_DEFAULT_URL, anthropicProvider } from './anthropic.js';
import { mcpSamplingProvider, type SamplingClient } from './mcp-sampling.js';
import { OLLAMA_DEFAULT_MODEL, OLLAMA_DEFAULT_URL, ollamaProvider } from './ollama.js';
import { OPENAI_DEFAULT_MODEL, OPENAI_DEFAULT_URL, openAiProvider } from './openai.js';
import { DEFAULT_POLICY, type PolicyOptions } from './policy.js';
import { LlmError, type LlmProvider } from './provider.js';
import { loadTranscript, scriptedProvider } from './scripted.js';

export const PROVIDER_NAMES = ['anthropic', 'openai', 'ollama', 'local', 'scripted', 'mcp-sampling'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** Explicit settings; each one left out is read from the environment (variable named in the comment). */
export interface LlmConfig {
  /** LLM_PROVIDER. `local` is the original Toka's name for `ollama`. */
  provider?: ProviderName;
  /** LLM_MODEL; default: the provider's default model (docs/llm-providers.md). */
  model?: string;
  /** LLM_BASE_URL: the provider's API base URL. */
  baseUrl?: string;
  /** LOCAL_LLM_ENDPOINT: the Ollama server (wins over LLM_BASE_URL for `ollama`). */
  localEndpoint?: string;
  /** LLM_RATE_LIMIT: requests per minute; default 60. */
  ratePerMinute?: number;
  /** LLM_TIMEOUT: seconds per request; default 30. */
  timeoutSeconds?: number;
  /** Retries of 429 / 5xx / network errors after the first attempt; default 2 (0 for mcp-sampling). */
  maxRetries?: number;
  /** LLM_TRANSCRIPT: the `scripted` provider's transcript file. */
  transcript?: string;
}

export interface LlmDeps {
  /** Where variables and keys are read; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Required for `mcp-sampling`: the MCP client session that requested the run. */
  sampling?: SamplingClient;
  /** Told which provider and model were chosen, and warned about loose secret-file permissions. */
  logger?: Logger;
}

/** Largest secret file read. */
const SECRET_FILE_MAX_BYTES = 16_384;

export async function createProvider(config: LlmConfig = {}, deps: LlmDeps = {}): Promise<LlmProvider> {
  const env = deps.env ?? process.env;
  const provider = config.provider ?? parseProvider(env.LLM_PROVIDER) ?? (await detectProvider(env));
  const model = config.model ?? nonEmpty(env.LLM_MODEL);
  const policy: PolicyOptions = {
    ratePerMinute: config.ratePerMinute ?? parseNumber(env, 'LLM_RATE_LIMIT', 1, 100_000, true) ?? DEFAULT_POLICY.ratePerMinute,
    timeoutMs: Math.round(1000 * (config.timeoutSeconds ?? parseNumber(env, 'LLM_TIMEOUT', 0.1, 3_600, false) ?? DEFAULT_POLICY.timeoutMs / 1000)),
    maxRetries: config.maxRetries ?? (provider === 'mcp-sampling' ? 0 : DEFAULT_POLICY.maxRetries),
    maxRetryDelayMs: DEFAULT_POLICY.maxRetryDelayMs,
    secrets: [],
  };
  const baseUrl = (fallback: string) => checkUrl(config.baseUrl ?? nonEmpty(env.LLM_BASE_URL) ?? fallback, 'LLM_BASE_URL');
  let built: LlmProvider;
  let chosenModel = model;
  switch (provider) {
    case 'anthropic': {
      const apiKey = await readKey(env, 'ANTHROPIC_API_KEY', deps.logger);
      chosenModel = model ?? ANTHROPIC_DEFAULT_MODEL;
      built = anthropicProvider({ apiKey, model: chosenModel, baseUrl: baseUrl(ANTHROPIC_DEFAULT_URL), policy: { ...policy, secrets: [apiKey] } });
      break;
    }
    case 'openai': {
      const apiKey = await readKey(env, 'OPENAI_API_KEY', deps.logger);
      chosenModel = model ?? OPENAI_DEFAULT_MODEL;
      built = openAiProvider({ apiKey, model: chosenModel, baseUrl: baseUrl(OPENAI_DEFAULT_URL), policy: { ...policy, secrets: [apiKey] } });
      break;
    }
    case 'ollama':
    case 'local': {
      const host = checkUrl(
        config.localEndpoint ?? nonEmpty(env.LOCAL_LLM_ENDPOINT) ?? config.baseUrl ?? nonEmpty(env.LLM_BASE_URL) ?? OLLAMA_DEFAULT_URL,
        'LOCAL_LLM_ENDPOINT',
      );
      chosenModel = model ?? OLLAMA_DEFAULT_MODEL;
      built = ollamaProvider({ host, model: chosenModel, policy });
      break;
    }
    case 'scripted': {
      const path = config.transcript ?? nonEmpty(env.LLM_TRANSCRIPT);
      if (!path) throw new LlmError('Misconfigured', 'the scripted provider needs a transcript file (LLM_TRANSCRIPT)');
      built = scriptedProvider(await loadTranscript(path), path);
      chosenModel = 'transcript';
      break;
    }
    case 'mcp-sampling': {
      if (!deps.sampling) {
        throw new LlmError('Misconfigured', 'mcp-sampling needs a connected MCP client (it can only be chosen from an MCP session)');
      }
      built = mcpSamplingProvider({ client: deps.sampling, policy });
      chosenModel = "the MCP client's";
      break;
    }
  }
  deps.logger?.info('llm provider', { provider: built.name, model: chosenModel, ratePerMinute: policy.ratePerMinute, timeoutMs: policy.timeoutMs });
  return built;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value.trim() : undefined;
}

function parseProvider(value: string | undefined): ProviderName | undefined {
  const v = nonEmpty(value);
  if (v === undefined) return undefined;
  if (!(PROVIDER_NAMES as readonly string[]).includes(v)) {
    throw new LlmError('Misconfigured', `LLM_PROVIDER ${JSON.stringify(v.slice(0, 40))} is not one of ${PROVIDER_NAMES.join(', ')}`);
  }
  return v as ProviderName;
}

/** The original's rule: the first provider with a key, in the order anthropic, openai, local. */
async function detectProvider(env: Record<string, string | undefined>): Promise<ProviderName> {
  if (nonEmpty(env.ANTHROPIC_API_KEY) || nonEmpty(env.ANTHROPIC_API_KEY_FILE)) return 'anthropic';
  if (nonEmpty(env.OPENAI_API_KEY) || nonEmpty(env.OPENAI_API_KEY_FILE)) return 'openai';
  if (nonEmpty(env.LOCAL_LLM_ENDPOINT)) return 'local';
  throw new LlmError(
    'Misconfigured',
    'no LLM provider configured: set LLM_PROVIDER, or one of ANTHROPIC_API_KEY, OPENAI_API_KEY (or their _FILE forms), LOCAL_LLM_ENDPOINT',
  );
}

function parseNumber(env: Record<string, string | undefined>, name: string, min: number, max: number, integer: boolean): number | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new LlmError('Misconfigured', `${name} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return n;
}

function checkUrl(value: string, name: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new LlmError('Misconfigured', `${name} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LlmError('Misconfigured', `${name} must be an http(s) URL`);
  if (url.username || url.password) throw new LlmError('Misconfigured', `${name} must not carry credentials`);
  return value;
}

/**
 * A key from `<name>` or from the file `<name>_FILE` (trimmed), never both. Errors name the variable or the
 * file, never the key.
 */
async function readKey(env: Record<string, string | undefined>, name: string, logger: Logger | undefined): Promise<string> {
  const direct = nonEmpty(env[name]);
  const file = nonEmpty(env[`${name}_FILE`]);
  if (direct && file) throw new LlmError('Misconfigured', `set ${name} or ${name}_FILE, not both`);
  let key: string;
  if (file) {
    let info;
    try {
      info = await stat(file);
    } catch (err) {
      throw new LlmError('Misconfigured', `${name}_FILE ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!info.isFile()) throw new LlmError('Misconfigured', `${name}_FILE ${file} is not a regular file`);
    if (info.size > SECRET_FILE_MAX_BYTES) throw new LlmError('Misconfigured', `${name}_FILE ${file} is larger than ${SECRET_FILE_MAX_BYTES} bytes`);
    if ((info.mode & 0o077) !== 0) logger?.warn('secret file readable by group or others', { variable: `${name}_FILE`, path: file });
    key = (await readFile(file, 'utf8')).trim();
    if (key === '') throw new LlmError('Misconfigured', `${name}_FILE ${file} is empty`);
  } else if (direct) {
    key = direct;
  } else {
    throw new LlmError('Misconfigured', `${name} (or ${name}_FILE) is not set`);
  }
  if (/[\x00-\x1f\x7f]/.test(key)) throw new LlmError('Misconfigured', `${name} contains control characters`);
  return key;
}
