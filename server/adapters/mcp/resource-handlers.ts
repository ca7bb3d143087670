/** `resources/list`, `resources/templates/list` and `resources/read` for one session. */
import { PaginatedRequestParamsSchema, ReadResourceRequestParamsSchema } from '@modelcontextprotocol/sdk/types.js';
import { mcpError, resourceNotFound } from './errors.js';
import type { SessionScope } from './scope.js';

export function registerResourceHandlers(scope: SessionScope): void {
  const { dispatcher, registry } = scope;

  dispatcher.handle('resources/list', PaginatedRequestParamsSchema, async () => {
    const claims = await scope.check();
    return {
      resources: registry
        .listResources()
        .filter((r) => scope.visible(claims, r.permission))
        .map((r) => ({
          uri: r.uri,
          name: r.name,
          ...(r.title ? { title: r.title } : {}),
          description: r.description,
          mimeType: r.mimeType,
        })),
    };
  });

  dispatcher.handle('resources/templates/list', PaginatedRequestParamsSchema, async () => {
    const claims = await scope.check();
    return {
      resourceTemplates: registry
        .listTemplates()
        .filter((t) => scope.visible(claims, t.spec.permission))
        .map(({ spec }) => ({
          uriTemplate: spec.uriTemplate,
          name: spec.name,
          ...(spec.title ? { title: spec.title } : {}),
          description: spec.description,
          mimeType: spec.mimeType,
        })),
    };
  });

  dispatcher.handle('resources/read', ReadResourceRequestParamsSchema, async (params, extra) => {
    const uri = params.uri;
    try {
      const fixed = registry.resource(uri);
      if (fixed) {
        if (fixed.permission === null) await scope.check();
        return { contents: await fixed.read(scope.context(extra), uri) };
      }
      const match = registry.matchTemplate(uri);
      if (!match) throw resourceNotFound(uri);
      if (match.entry.spec.permission === null) await scope.check();
      return { contents: await match.entry.spec.read(scope.context(extra), uri, match.vars) };
    } catch (err) {
      throw mcpError(err);
    }
  });
}
