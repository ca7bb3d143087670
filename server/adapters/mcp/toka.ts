/** The registry Toka serves over MCP by default: its tools, resources and prompts, plus any plugins. */
import { registerTokaPrompts } from './prompts.js';
import { McpRegistry, type McpPlugin } from './registry.js';
import { registerTokaResources } from './resources.js';
import { registerTokaTools } from './tools.js';

export function createTokaRegistry(plugins: McpPlugin[] = []): McpRegistry {
  const registry = new McpRegistry();
  registerTokaTools(registry);
  registerTokaResources(registry);
  registerTokaPrompts(registry);
  for (const plugin of plugins) registry.use(plugin);
  return registry;
}
