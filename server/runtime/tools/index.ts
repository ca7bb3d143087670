/**
 * Tools an agent can call: the registry, the built-ins and external MCP tool sources. docs/tools.md is the
 * user-facing description (permissions, side-effect classes, limits, configuration).
 */
import { fileTools } from './files.js';
import { createHttpTool, type HttpConfig } from './http.js';
import { createShellTool, type ShellConfig } from './shell.js';
import type { Tool } from './types.js';

export { ToolError, TOOL_ERROR_CODES, type ToolErrorCode } from './errors.js';
export { fileTools, fsList, fsRead, fsSearch, fsWrite } from './files.js';
export { createHttpTool, DENIED_RANGES, type HttpConfig } from './http.js';
export { McpToolSource, NAMESPACE_SEPARATOR, type McpSourceConfig, type McpTransportConfig, type RegisterReport } from './mcp-source.js';
export { ToolRegistry, TOOL_NAME, MAX_SCHEMA_BYTES, type SchemaViolation, type ToolRegistryOptions } from './registry.js';
export { createShellTool, type ShellConfig } from './shell.js';
export * from './types.js';

export interface BuiltinToolsConfig {
  shell?: ShellConfig;
  /** `http_fetch` is offered only when configured: without an allow-list there is nothing it may fetch. */
  http?: HttpConfig;
}

/** The built-in tools: the four file tools, `shell`, and `http_fetch` when configured. */
export function builtinTools(config: BuiltinToolsConfig = {}): Tool[] {
  const tools = [...fileTools, createShellTool(config.shell)];
  if (config.http) tools.push(createHttpTool(config.http));
  return tools;
}
