/**
 * The error-code table of protocol/errors.ts: Toka's application codes stay out of the JSON-RPC reserved range
 * (where LSP, MCP and A2A put theirs), every code is unique, the standard codes are the ones their protocols
 * define, and docs/protocol.md lists exactly this table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes as JsonRpcErrorCodes } from 'vscode-jsonrpc';
import { ErrorCodes as LspErrorCodes, LSPErrorCodes } from 'vscode-languageserver';
import {
  ApplicationErrorCodes,
  ErrorCodes,
  JSONRPC_RESERVED_CODE_RANGE,
  ProtocolErrorCodes,
  TOKA_ERROR_CODE_RANGE,
} from '../../../protocol/errors.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('protocol/errors.ts', () => {
  it('puts no application code in the JSON-RPC reserved range, and every one in the documented Toka block', () => {
    assert.ok(TOKA_ERROR_CODE_RANGE.max < JSONRPC_RESERVED_CODE_RANGE.min || TOKA_ERROR_CODE_RANGE.min > JSONRPC_RESERVED_CODE_RANGE.max);
    for (const [name, code] of Object.entries(ApplicationErrorCodes)) {
      assert.ok(Number.isInteger(code), name);
      assert.ok(code < JSONRPC_RESERVED_CODE_RANGE.min || code > JSONRPC_RESERVED_CODE_RANGE.max, `${name} (${code}) is in the reserved range`);
      assert.ok(code >= TOKA_ERROR_CODE_RANGE.min && code <= TOKA_ERROR_CODE_RANGE.max, `${name} (${code}) is outside the Toka block`);
    }
  });

  it('gives every name a distinct code, and the merged table loses no entry', () => {
    const codes = Object.values(ErrorCodes);
    assert.equal(new Set(codes).size, codes.length, `duplicate codes in ${JSON.stringify(ErrorCodes)}`);
    assert.equal(codes.length, Object.keys(ApplicationErrorCodes).length + Object.keys(ProtocolErrorCodes).length);
  });

  it('uses the JSON-RPC and LSP codes with exactly the numbers those protocols define', () => {
    assert.deepEqual(
      [ErrorCodes.ParseError, ErrorCodes.InvalidRequest, ErrorCodes.MethodNotFound, ErrorCodes.InvalidParams, ErrorCodes.InternalError],
      [JsonRpcErrorCodes.ParseError, JsonRpcErrorCodes.InvalidRequest, JsonRpcErrorCodes.MethodNotFound, JsonRpcErrorCodes.InvalidParams, JsonRpcErrorCodes.InternalError],
    );
    assert.equal(ErrorCodes.ServerNotInitialized, LspErrorCodes.ServerNotInitialized);
    assert.equal(ErrorCodes.RequestCancelled, LSPErrorCodes.RequestCancelled);
  });

  it('is the table docs/protocol.md lists', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Errors'));
    const rows = [...section.matchAll(/^\| (-?\d+) \| `(\w+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    assert.deepEqual(Object.fromEntries(rows), { ...ErrorCodes });
    assert.equal(rows.length, Object.keys(ErrorCodes).length, 'each name listed once');
  });

  it('is the kernel error table docs/kernel.md lists', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'kernel.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `(\w+)` \| (-\d+) \|/gm)].map((m) => [m[1], Number(m[2])] as const);
    assert.ok(rows.length >= 5);
    for (const [name, code] of rows) assert.equal(code, ErrorCodes[name as keyof typeof ErrorCodes], name);
  });
});
