import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { CapabilityClaims } from '../../../protocol/capability.js';
import { canonicalJson } from '../../../protocol/canonical.js';
import type { KernelErrorCode, Operation, OperationEnvelope, WorldState } from '../../../protocol/kernel.js';
import { KernelError } from '../../../server/kernel/errors.js';

export const T0 = 1_700_000_000_000;

export function claims(overrides: Partial<CapabilityClaims> = {}): CapabilityClaims {
  return {
    sub: 'alice',
    vault: 'A',
    permissions: ['*'],
    iat: T0 / 1000,
    exp: T0 / 1000 + 1800,
    jti: 'jti-alice',
    grant: 'g0',
    ...overrides,
  };
}

let counter = 0;

/** An envelope as the host builds it: fresh op id and fresh entity ids. */
export function envelope(op: Operation | Record<string, unknown>, c: CapabilityClaims = claims(), extra: Partial<OperationEnvelope> = {}): OperationEnvelope {
  counter++;
  return {
    id: `op-${counter}`,
    at: T0 + counter,
    origin: c.sub,
    claims: c,
    ids: [`id-${counter}-a`, `id-${counter}-b`],
    op: op as Operation,
    ...extra,
  };
}

export function digest(state: Readonly<WorldState>): string {
  return createHash('sha256').update(canonicalJson(state)).digest('hex');
}

/** Asserts `fn` throws a KernelError with `code` and (a superset of) `data`. */
export function throwsKernel(fn: () => unknown, code: KernelErrorCode, data: Record<string, unknown> = {}): KernelError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof KernelError, `expected KernelError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const [k, v] of Object.entries(data)) assert.deepEqual(caught.data[k], v, `data.${k}`);
  return caught;
}
