/** The request definitions `protocol/rpc` exports, found by shape, so a test covers a method added later. */
import { RequestType } from 'vscode-jsonrpc';
import * as rpc from '../../protocol/rpc/index.js';
import type { RequestDefinition } from '../../protocol/rpc/index.js';

/** Every request definition exported by `protocol/rpc`, in export order. */
export function requestDefinitions(): RequestDefinition<unknown, unknown>[] {
  return (Object.values(rpc) as unknown[]).filter(
    (v): v is RequestDefinition<unknown, unknown> =>
      typeof v === 'object' && v !== null && 'type' in v && v.type instanceof RequestType && 'paramsSchema' in v,
  );
}
