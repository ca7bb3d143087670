/**
 * Capabilities: the permission vocabulary and the claims a capability token carries.
 * See docs/security-model.md for the prose version of this file.
 */

/** JWT header `typ` of every Toka capability token. */
export const TOKEN_TYPE = 'toka.cap+jwt';
/** Longest lifetime a token may have: `exp - iat` ≤ this many seconds. */
export const MAX_TOKEN_LIFETIME_S = 30 * 60;
/** Clock skew tolerated on `exp` and `iat`, in seconds. */
export const CLOCK_SKEW_S = 5;
/** Longest delegation chain below a grant-minted token. */
export const MAX_DELEGATION_DEPTH = 5;
/** Bounds on claim shapes. */
export const CLAIM_LIMITS = {
  subjectChars: 256,
  vaultChars: 256,
  permissions: 100,
  permissionChars: 64,
  tokenBytes: 8192,
  audienceChars: 2048,
} as const;

/**
 * The permission vocabulary. A permission is `area:verb`. Wildcards in a *held* permission:
 * `*` covers everything, `area:*` covers every verb of that area. A *required* permission is always concrete.
 */
export const PERMISSIONS = {
  'agent:spawn': 'Spawn a sub-agent under an agent of the vault (SpawnSubAgent).',
  'agent:terminate': 'Terminate an agent of the vault: none of its runs starts again.',
  'task:schedule': 'Queue a task on an agent of the vault (ScheduleAgentTask).',
  'task:cancel': 'Remove a queued task from an agent of the vault (CancelTask), or cancel a run that has not ended (CancelRun).',
  'task:run': 'Ask an agent of the vault to run a task, and (as the agent) record the steps of its runs.',
  'task:approve': 'Approve or deny a privileged tool call a run of the vault is waiting on.',
  'observation:emit': 'Record an observation for an agent of the vault (EmitObservation).',
  'state:read': 'Read the world state of the vault: agents, tasks, observation counts.',
  'events:read': 'Query and subscribe to the event log of the vault.',
  'capability:grant': 'Create grants (mint tokens) for other subjects, never wider than the caller holds.',
  'capability:delegate': 'Mint a narrower child token from the token presented.',
  'capability:revoke': 'Revoke grants and tokens of the vault.',
  'capability:read': 'List the grants of the vault.',
  'log:verify': 'Run a full chain and replay verification of the log (reveals only the verdict, counts and digests).',
  'tool:fs-read': 'Call the file tools that read the agent workspace (fs_read, fs_list, fs_search).',
  'tool:fs-write': 'Call the file tool that writes in the agent workspace (fs_write).',
  'tool:shell': 'Run a shell command in a child process confined to the agent workspace (shell).',
  'tool:http': 'Fetch an allow-listed URL over HTTP(S) (http_fetch).',
  'tool:mcp': 'Call tools of the external MCP servers configured for the agent (<source>__<tool>).',
  'tool:a2a': 'Hand a task to a remote A2A agent of a configured peer (a2a_delegate).',
} as const;

export type Permission = keyof typeof PERMISSIONS;

const PERMISSION_SHAPE = /^(\*|[a-z][a-z0-9-]*:(\*|[a-z][a-z0-9-]*))$/;

/** True when `p` is `*`, `area:*` for a known area, or a permission of the vocabulary. */
export function isKnownPermission(p: string): boolean {
  if (!PERMISSION_SHAPE.test(p)) return false;
  if (p === '*') return true;
  if (p.endsWith(':*')) {
    const area = p.slice(0, -2);
    return Object.keys(PERMISSIONS).some((k) => k.startsWith(`${area}:`));
  }
  return Object.prototype.hasOwnProperty.call(PERMISSIONS, p);
}

/** Does holding `held` allow the concrete permission `required`? */
export function permits(held: readonly string[], required: string): boolean {
  const area = required.slice(0, required.indexOf(':'));
  for (const h of held) {
    if (h === required || h === '*' || h === `${area}:*`) return true;
  }
  return false;
}

/** Is every permission in `child` covered by `parent` (wildcards honoured on both sides)? */
export function isSubset(child: readonly string[], parent: readonly string[]): boolean {
  return child.every((c) => {
    if (c === '*') return parent.includes('*');
    if (c.endsWith(':*')) return parent.includes('*') || parent.includes(c);
    return permits(parent, c);
  });
}

/**
 * The delegation rules, each with the one error code the kernel, auth and docs/security-model.md use for it.
 * `delegationFault` checks them in this order.
 */
export const DELEGATION_RULES = {
  ERR_DELEGATION_WIDENS: "delegated permissions must be a subset of the parent's",
  ERR_DELEGATION_EXPIRY: 'a delegated token must expire after now and no later than its parent',
  ERR_DELEGATION_DEPTH: `delegation chain deeper than ${MAX_DELEGATION_DEPTH}`,
} as const;

export type DelegationFault = keyof typeof DELEGATION_RULES;

/**
 * The first delegation rule a child of `parent` breaks, or null: permissions ⊆ the parent's, expiry after
 * `nowS` (seconds) and ≤ the parent's, chain below the grant ≤ `MAX_DELEGATION_DEPTH`.
 */
export function delegationFault(
  parent: Pick<CapabilityClaims, 'permissions' | 'exp' | 'dlg'>,
  child: {
    /** Permissions the child would hold. */
    permissions: readonly string[];
    /** Its expiry, seconds since the epoch. */
    exp: number;
  },
  nowS: number,
): DelegationFault | null {
  if (!isSubset(child.permissions, parent.permissions)) return 'ERR_DELEGATION_WIDENS';
  if (child.exp > parent.exp || child.exp <= nowS) return 'ERR_DELEGATION_EXPIRY';
  if ((parent.dlg?.length ?? 0) + 1 > MAX_DELEGATION_DEPTH) return 'ERR_DELEGATION_DEPTH';
  return null;
}

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * True when `s` is well-formed UTF-16 (no lone surrogate), so that it has an exact UTF-8 encoding. Every id
 * and text taken from the wire must be: an ill-formed one would be stored differently from what was hashed.
 */
export function isWellFormedText(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** The claims of a verified capability token. */
export interface CapabilityClaims {
  /** The principal the token speaks for. Must equal the origin of every message sent with it. */
  sub: string;
  /** The vault (isolation domain) the token acts in. */
  vault: string;
  /** Held permissions, `area:verb` with wildcards. */
  permissions: string[];
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch; `exp - iat` ≤ 30 min. */
  exp: number;
  /** Unique token id; revocable. */
  jti: string;
  /** Id of the grant this token (or its delegation root) was minted from. */
  grant: string;
  /** Delegation chain: ancestor `jti`s, nearest parent first. Absent or empty for a grant-minted token. */
  dlg?: string[];
  /**
   * Audience (RFC 8707): the one resource URL the token is for, e.g. `http://127.0.0.1:7420/mcp` for a token
   * issued to an OAuth client. Absent = any face of the host. A face accepts an audience-bound token only
   * when it is that resource; delegated children keep their parent's audience.
   */
  aud?: string;
}
