/**
 * Agent specs: loading (YAML or JSON) with line/column diagnostics, the JSON Schema, the normal form and
 * its digest, the security bound, workstream planning, and the editor helpers. See docs/agents.md.
 */
export { AGENT_SPEC_SCHEMA, AGENT_NAME_PATTERN, KNOWN_DOMAINS, LLM_PROVIDERS, MAX_AGENT_MCP_SERVERS, MCP_SERVER_NAME_PATTERN } from './schema.js';
export { runtimeSettings } from './normalise.js';
export { SPEC_LIMITS, analyzeSpecText, formatOf, specDigest, type SpecAnalysis, type SpecFormat } from './analyze.js';
export { CAPABILITY_NAMES, checkGrant, permissionsNotCovered, permissionsOf, type GrantCheck } from './capabilities.js';
export { cursorContext, describeSchemaPath, type CursorContext, type SchemaFacts } from './editor.js';
export { SPEC_FILE, WORKSTREAM_LIMITS, loadSpecFile, loadWorkstream, type LoadedWorkstream } from './load.js';
export { planWorkstream, type WorkstreamPlan } from './workstream.js';
export { parseCpu, parseDurationMs, parseSize } from './units.js';
export type * from './types.js';
