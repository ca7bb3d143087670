/** The compiled JSON Schema validator of agent specs (ajv, draft 2020-12, every error reported, each with the value it is about in `data`). */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { AGENT_SPEC_SCHEMA } from './schema.js';

let compiled: ValidateFunction | undefined;

/** Validate `data`; returns ajv's errors (empty when valid). Compiled once, on first use. */
export function schemaErrors(data: unknown): ErrorObject[] {
  compiled ??= new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true }).compile(AGENT_SPEC_SCHEMA);
  return compiled(data) ? [] : [...(compiled.errors ?? [])];
}
