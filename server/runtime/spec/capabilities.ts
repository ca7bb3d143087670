/**
 * `security.capabilities_required`: the most an agent may ever be granted. Entries are Toka permissions
 * (`area:verb`, see protocol/capability.ts) or the capability names Toka specs were written with, which
 * stand for the permissions of the tools that do that work.
 */
import { isKnownPermission, isSubset } from '../../../protocol/capability.js';

/**
 * The Toka capability names and the tool permissions they stand for. git and cargo run through the shell
 * tool, so `git-access` and `cargo-execution` allow the shell tool; CI services are reached over HTTP.
 */
export const CAPABILITY_NAMES: ReadonlyMap<string, readonly string[]> = new Map([
  ['filesystem-read', ['tool:fs-read']],
  ['filesystem-write', ['tool:fs-write']],
  ['network-access', ['tool:http']],
  ['git-access', ['tool:shell']],
  ['cargo-execution', ['tool:shell']],
  ['ci-integration', ['tool:http']],
]);

/** The permissions one entry stands for, or `undefined` for a name that is neither a capability name nor a known permission. */
export function permissionsOf(entry: string): readonly string[] | undefined {
  const named = CAPABILITY_NAMES.get(entry);
  if (named) return named;
  return isKnownPermission(entry) ? [entry] : undefined;
}

/** The entries of `requested` that `held` does not cover (wildcards honoured); empty when all are covered. */
export function permissionsNotCovered(requested: readonly string[], held: readonly string[]): string[] {
  return requested.filter((p) => !isSubset([p], held));
}

export interface GrantCheck {
  ok: boolean;
  /** Requested permissions outside the spec's `capabilities_required`. */
  beyondSpec: string[];
  /** Requested permissions the spawner does not hold. */
  beyondSpawner: string[];
}

/**
 * May an agent whose spec bounds it to `specPermissions` be granted `requested` by a spawner holding
 * `spawnerHeld`? Only when every requested permission is within both: a spawned agent never holds more than
 * its spec allows, nor more than its spawner.
 */
export function checkGrant(requested: readonly string[], specPermissions: readonly string[], spawnerHeld: readonly string[]): GrantCheck {
  const beyondSpec = permissionsNotCovered(requested, specPermissions);
  const beyondSpawner = permissionsNotCovered(requested, spawnerHeld);
  return { ok: beyondSpec.length === 0 && beyondSpawner.length === 0, beyondSpec, beyondSpawner };
}
