/** `prompts/list`, `prompts/get` and `completion/complete` (prompt arguments and template variables) for one session. */
import { CompleteRequestParamsSchema, GetPromptRequestParamsSchema, PaginatedRequestParamsSchema } from '@modelcontextprotocol/sdk/types.js';
import { invalidParams, mcpError } from './errors.js';
import type { McpContext } from './registry.js';
import type { SessionScope } from './scope.js';

/** Most completion values returned at once. */
const MAX_COMPLETIONS = 100;

export function registerPromptHandlers(scope: SessionScope): void {
  const { dispatcher, registry } = scope;

  dispatcher.handle('prompts/list', PaginatedRequestParamsSchema, async () => {
    const claims = await scope.check();
    return {
      prompts: registry
        .listPrompts()
        .filter((p) => scope.visible(claims, p.permission))
        .map((p) => ({
          name: p.name,
          ...(p.title ? { title: p.title } : {}),
          description: p.description,
          arguments: (p.arguments ?? []).map((a) => ({ name: a.name, description: a.description, required: a.required ?? false })),
        })),
    };
  });

  dispatcher.handle('prompts/get', GetPromptRequestParamsSchema, async (params, extra) => {
    const prompt = registry.prompt(params.name);
    if (!prompt) throw invalidParams(`Unknown prompt: ${params.name}`);
    const args = params.arguments ?? {};
    for (const a of prompt.arguments ?? []) {
      if (a.required && !args[a.name]) throw invalidParams(`Prompt ${prompt.name} needs argument ${a.name}`);
    }
    try {
      await scope.check();
      return await prompt.get(scope.context(extra), args);
    } catch (err) {
      throw mcpError(err);
    }
  });

  dispatcher.handle('completion/complete', CompleteRequestParamsSchema, async (params, extra) => {
    const { ref, argument } = params;
    const others = params.context?.arguments ?? {};
    let complete: ((ctx: McpContext, value: string) => Promise<string[]>) | undefined;
    if (ref.type === 'ref/prompt') {
      const prompt = registry.prompt(ref.name);
      if (!prompt) throw invalidParams(`Unknown prompt: ${ref.name}`);
      const arg = prompt.arguments?.find((a) => a.name === argument.name);
      if (arg?.complete) complete = (ctx, value) => arg.complete!(ctx, value, others);
    } else {
      const entry = registry.template(ref.uri);
      if (!entry) throw invalidParams(`Unknown resource template: ${ref.uri}`);
      // The argument name is wire input: only the template's own completers, never an inherited property.
      const completers = entry.spec.complete;
      if (completers && Object.hasOwn(completers, argument.name)) complete = completers[argument.name];
    }
    if (!complete) return { completion: { values: [] } };
    try {
      await scope.check();
      const values = await complete(scope.context(extra), argument.value);
      return {
        completion: { values: values.slice(0, MAX_COMPLETIONS), total: values.length, hasMore: values.length > MAX_COMPLETIONS },
      };
    } catch (err) {
      throw mcpError(err);
    }
  });
}
