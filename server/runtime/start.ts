/**
 * The runtime as `toka serve` (and the CLI, when it opens the data dir itself) runs it: the built-in tools,
 * the LLM provider configured by the environment (docs/llm-providers.md), workspaces under the data dir.
 */
import { join } from 'node:path';
import type { Host } from '../host/host.js';
import type { Logger } from '../host/logger.js';
import type { AgentRuntimeRecord } from '../../protocol/runtime.js';
import { createProvider, LlmError, type LlmConfig, type LlmProvider } from './llm/index.js';
import { AgentRuntime } from './runtime.js';
import { builtinTools, ToolRegistry } from './tools/index.js';
import { kernelTools } from './tools/kernel.js';
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

export function startRuntime(host: Host, options: StartRuntimeOptions): Promise<AgentRuntime> {
  const tools = runtimeTools(options.dataDir);
  const llm = options.llm ?? {};
  const providers = new Map<string, LlmProvider>();
  const providerFor = (agent: AgentRuntimeRecord | undefined): LlmProvider => {
    const config = typeof llm === 'function' ? llm(agent) : llm;
    const key = JSON.stringify(config);
    let provider = providers.get(key);
    if (!provider) {
      provider = configuredProvider(config, options.logger);
      providers.set(key, provider);
    }
    return provider;
  };
  return AgentRuntime.start({
    host,
    provider: providerFor,
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
function configuredProvider(config: LlmConfig, logger: Logger): LlmProvider {
  let built: Promise<LlmProvider> | null = null;
  return {
    name: config.provider ?? 'configured',
    async complete(req, opts) {
      built ??= createProvider(config, { logger });
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
