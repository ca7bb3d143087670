/** The LLM providers of the agent runtime (docs/llm-providers.md). */
export * from './provider.js';
export { createProvider, PROVIDER_NAMES, type LlmConfig, type LlmDeps, type ProviderName } from './config.js';
export { samplingUnavailable, type CreateMessage, type SamplingClient } from './mcp-sampling.js';
export { loadTranscript, parseTranscript, scriptedProvider, type ScriptedTranscript } from './scripted.js';
