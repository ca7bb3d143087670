/**
 * The runtime as `toka serve` (and the CLI, when it opens the data dir itself) runs it: the built-in tools,
 * the external MCP servers of `<data>/mcp-servers.json`, the LLM provider configured by the environment
 * (docs/llm-providers.md) or by an agent's spec (`llm`), workspaces under the data dir.
 */
import { join } from 'node:path';
import type { Host } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import type { AgentRuntimeRecord } from '../../protocol/runtime.js';
import { createProvider, LlmError, samplingUnavailable, type LlmConfig, type SamplingClient, type LlmProvider, type ProviderName } from './llm/index.js';
import { AgentRuntime, type RunLlmContext } from './runtime.js';
import type { AgentLlm } from './spec/index.js';
import { builtinTools, ToolRegistry } from './tools/index.js';
import { kernelTools } from './tools/kernel.js';
import { AgentMcpServers, readMcpServers } from './tools/mcp-servers.js';
import { createA2aDelegateTool } from './tools/a2a-delegate.js';

export interface StartRuntimeOptions {
  /** The data dir: agents work in `<data>/workspaces/<agent id>`. */
  dataDir: string;
  logger: Logger;
  /**
   * Explicit LLM settings; what is left out comes from the environment. A function gives each agent its own
   * (e.g. a scripted transcript per agent of a workstream); agents with equal settings share one provider.
   */
  llm?: LlmConfig | ((agent: AgentRuntimeRecord | undefined) => LlmConfig);
  /** Runs executing at once. */
  concurrency?: number;
  /** Where LLM_PROVIDER and the MCP servers' `fromEnv` secrets are read; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * The tools every agent of `toka serve` may be offered (filtered by its token): the built-ins, the kernel
 * tools and `a2a_delegate` (its peers are read from `dataDir` at each call). `toka replay` builds the same
 * registry, so a replayed run decides on the same manifests.
 */
export function runtimeTools(dataDir?: string): ToolRegistry {
  const tools = new ToolRegistry();
  for (const tool of [...builtinTools(), ...kernelTools, createA2aDelegateTool({ dataDir })]) tools.register(tool);
  return tools;
}

/**
 * Throws `McpServersConfigError` for a bad `<data>/mcp-servers.json` (the host does not start half-configured).
 */
export function startRuntime(host: Host, options: StartRuntimeOptions): Promise<AgentRuntime> {
  const tools = runtimeTools(options.dataDir);
  const env = options.env ?? process.env;
  const mcpServers = new AgentMcpServers(readMcpServers(options.dataDir), options.logger.child({ face: 'mcp-servers' }), env);
  const llm = options.llm ?? {};
  /** The host's settings for the agent, with its spec's `llm` over them. */
  const configFor = (agent: AgentRuntimeRecord | undefined, spec: AgentLlm | undefined): LlmConfig => ({
    ...(typeof llm === 'function' ? llm(agent) : llm),
    ...spec,
  });
  const asksRequester = (config: LlmConfig): boolean => (config.provider ?? env.LLM_PROVIDER?.trim()) === 'mcp-sampling';
  const providers = new Map<string, LlmProvider>();
  const providerFor = (agent: AgentRuntimeRecord | undefined, run: RunLlmContext): LlmProvider => {
    const config = configFor(agent, run.llm);
    if (asksRequester(config)) return requesterProvider({ ...config, provider: 'mcp-sampling' }, run, env, options.logger);
    const key = JSON.stringify(config);
    let provider = providers.get(key);
    if (!provider) {
      provider = configuredProvider(config, env, options.logger);
      providers.set(key, provider);
    }
    return provider;
  };
  return AgentRuntime.start({
    host,
    provider: providerFor,
    asksRequester: (spec) => asksRequester(configFor(undefined, spec)),
    mcpServers,
    tools,
    workspaceRoot: join(options.dataDir, 'workspaces'),
    concurrency: options.concurrency,
    logger: options.logger.child({ face: 'runtime' }),
  });
}

/**
 * The provider the environment configures, built on first use: a host with no LLM configured still serves
 * everything else, and a run then fails with the provider's `Misconfigured`/`Unavailable` reason.
 */
function configuredProvider(config: LlmConfig, env: Record<string, string | undefined>, logger: Logger): LlmProvider {
  let built: Promise<LlmProvider> | null = null;
  return {
    name: config.provider ?? 'configured',
    async complete(req, opts) {
      built ??= createProvider(config, { env, logger });
      let provider: LlmProvider;
      try {
        provider = await built;
      } catch (err) {
        built = null;
        throw err instanceof LlmError ? err : new LlmError('Misconfigured', 'no LLM provider could be built');
      }
      return provider.complete(req, opts);
    },
  };
}

/**
 * `mcp-sampling` for one run: each LLM call asks the model of the MCP client session that requested the run.
 * A run the runtime knows no requester for (requested from another face, or before a restart) fails its
 * first LLM call with `SamplingUnavailable`.
 */
function requesterProvider(config: LlmConfig & { provider: ProviderName }, run: RunLlmContext, env: Record<string, string | undefined>, logger: Logger): LlmProvider {
  let built: { client: SamplingClient; provider: Promise<LlmProvider> } | undefined;
  return {
    name: 'mcp-sampling',
    async complete(req, opts) {
      const client = run.requester();
      if (!client) throw samplingUnavailable('the run was not requested from an MCP client session this host still holds (it came from another face, or the host restarted since)');
      if (built?.client !== client) built = { client, provider: createProvider(config, { env, sampling: client, logger }) };
      return (await built.provider).complete(req, opts);
    },
  };
}
