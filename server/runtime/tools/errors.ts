/**
 * The one error type of tools. `code` is stable (the loop turns it into the typed error the LLM sees, or ends
 * the task on `Cancelled`); `data` carries details such as the schema rule broken or the bound hit.
 */
export const TOOL_ERROR_CODES = [
  /** Arguments do not match the tool's input schema; `data.errors` names each rule broken. */
  'InvalidArguments',
  /** A path leaves the workspace: `..`, absolute, through a symlink, or a file with other hard links. */
  'PathEscape',
  /** A bound was hit; `data.limit` names it and `data.max` gives its value. */
  'LimitExceeded',
  /** The call ran past its time bound and was stopped. */
  'Timeout',
  /** The caller's signal was aborted and the call was stopped. */
  'Cancelled',
  /** The caller does not hold the tool's permission, or the tool's policy refuses the target (e.g. a host). */
  'Denied',
  /** No such tool, or no such file. */
  'NotFound',
  /** The tool could not do its work (I/O error, connection failure, bad manifest). */
  'Failed',
] as const;

export type ToolErrorCode = (typeof TOOL_ERROR_CODES)[number];

export class ToolError extends Error {
  override readonly name = 'ToolError';
  readonly code: ToolErrorCode;
  readonly data?: Record<string, unknown>;

  constructor(code: ToolErrorCode, message: string, data?: Record<string, unknown>) {
    super(message);
    this.code = code;
    if (data !== undefined) this.data = data;
  }
}

/** The error a tool throws once `signal` is aborted. */
export function cancelled(): ToolError {
  return new ToolError('Cancelled', 'the tool call was cancelled');
}

/** A `LimitExceeded` naming the bound (a `ToolLimits` field) and its value. */
export function limitExceeded(limit: string, max: number, message: string): ToolError {
  return new ToolError('LimitExceeded', `${message} (limit ${limit} = ${max})`, { limit, max });
}
