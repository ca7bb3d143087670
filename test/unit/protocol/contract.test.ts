/**
 * `protocol/` as the contract: every request definition has a unique `toka/*` method and a params schema
 * whose output is exactly the params type of its `type` (checked by the compiler below), and every field of
 * every interface in protocol/ carries a doc comment.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { RequestType } from 'vscode-jsonrpc';
import type { z } from 'zod';
import * as rpc from '../../../protocol/rpc/index.js';
import { requestDefinitions } from '../../helpers/protocol.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

// ---- compile-time: each schema decodes exactly its method's params type ---------------------------------
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type ParamsOf<D> = D extends { type: RequestType<infer P, unknown, unknown> } ? P : never;
type Decodes<D extends { paramsSchema: z.ZodType }> = Same<z.output<D['paramsSchema']>, ParamsOf<D>>;
const exact: {
  [K in keyof typeof rpc as (typeof rpc)[K] extends { paramsSchema: z.ZodType } ? K : never]: (typeof rpc)[K] extends {
    paramsSchema: z.ZodType;
  }
    ? Decodes<(typeof rpc)[K]>
    : never;
} = {
  AdminOpenRequest: true,
  AgentRunRequest: true,
  AgentSpawnRequest: true,
  AgentTerminateRequest: true,
  ApprovalListRequest: true,
  ApprovalResolveRequest: true,
  CapabilityDelegateRequest: true,
  CapabilityListRequest: true,
  CapabilityMintRequest: true,
  CapabilityRevokeRequest: true,
  EventsQueryRequest: true,
  EventsSubscribeRequest: true,
  EventsUnsubscribeRequest: true,
  HostInfoRequest: true,
  KernelSubmitRequest: true,
  LogVerifyRequest: true,
  StateGetRequest: true,
  TaskCancelRequest: true,
  TaskGetRequest: true,
  TaskListRequest: true,
  WorkstreamPlanRequest: true,
  WorkstreamRunRequest: true,
};

function protocolFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) protocolFiles(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('protocol/ as the contract', () => {
  it('exports one request definition per toka/* method, each with a params schema', () => {
    const definitions = requestDefinitions();
    assert.deepEqual(Object.keys(exact).length, definitions.length, 'the compile-time check lists every definition');
    const methods = definitions.map((d) => d.method);
    assert.equal(new Set(methods).size, methods.length, 'methods are unique');
    for (const d of definitions) {
      assert.match(d.method, /^toka\/[a-z]+\/[a-z]+$/);
      assert.equal(d.type.method, d.method);
      assert.ok(['clientToServer', 'serverToClient'].includes(d.messageDirection));
    }
  });

  it('has a doc comment on every field of every interface', () => {
    const missing: string[] = [];
    for (const file of protocolFiles(join(ROOT, 'protocol'))) {
      const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
      const visit = (node: ts.Node, owner: string) => {
        if (ts.isInterfaceDeclaration(node)) owner = node.name.text;
        if (ts.isPropertySignature(node) || ts.isIndexSignatureDeclaration(node)) {
          const documented = ts.getJSDocCommentsAndTags(node).length > 0;
          if (!documented) {
            const { line } = source.getLineAndCharacterOfPosition(node.getStart());
            missing.push(`${relative(ROOT, file)}:${line + 1} ${owner}.${node.name?.getText(source) ?? '[index]'}`);
          }
        }
        ts.forEachChild(node, (child) => visit(child, owner));
      };
      visit(source, '');
    }
    assert.deepEqual(missing, [], `fields without a doc comment:\n${missing.join('\n')}`);
  });
});
