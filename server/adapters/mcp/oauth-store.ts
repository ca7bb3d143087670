/**
 * What the OAuth authorization server must remember across restarts: registered clients (RFC 7591) and
 * refresh-token families. One JSON file, `<data>/oauth.json`, owner-only (0600), replaced atomically (write a
 * temporary file, fsync, rename, fsync the directory) before any answer that depends on it is sent.
 *
 * A refresh token is never stored: only its SHA-256. A family is the chain of refresh tokens of one
 * authorization; it names the grant the consent created, so it lives and dies with that grant.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../auth/keyring.js';

export const OAUTH_STORE_FILE = 'oauth.json';
/** Spent refresh-token hashes kept per family to recognise a reused (stolen) one. */
export const SPENT_HASHES_KEPT = 64;

export interface ClientRecord {
  client_id: string;
  client_name?: string;
  /** Registered redirect URIs; an authorization request must name one of them exactly. */
  redirect_uris: string[];
  /** Seconds since the epoch. */
  client_id_issued_at: number;
  /** Host name of the first redirect URI: registrations are counted per host. */
  host: string;
}

export interface RefreshFamily {
  id: string;
  client_id: string;
  /** The grant the consent created; revoking it ends the family. */
  grant: string;
  vault: string;
  /** The resource (RFC 8707 audience) the access tokens are bound to. */
  resource: string;
  /** The permissions granted (the grant's), reported as `scope`. */
  scope: string[];
  /** SHA-256 (base64url) of the one refresh token that may be used next. */
  current: string;
  /** Hashes of rotated-away refresh tokens, newest last (at most SPENT_HASHES_KEPT). */
  spent: string[];
  /** ms since the epoch after which no refresh is accepted. */
  expiresAt: number;
}

interface StoreFile {
  version: 1;
  clients: Record<string, ClientRecord>;
  families: Record<string, RefreshFamily>;
}

/** SHA-256 of a secret, base64url: how codes and refresh tokens are looked up without being kept. */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

export class OAuthStore {
  readonly clients = new Map<string, ClientRecord>();
  readonly families = new Map<string, RefreshFamily>();
  /** Refresh-token hash (current or spent) → family id. */
  private readonly byHash = new Map<string, string>();

  private constructor(private readonly path: string) {}

  /** Open `<dataDir>/oauth.json` (absent = empty); a file readable by others is refused. */
  static open(dataDir: string): OAuthStore {
    const store = new OAuthStore(join(dataDir, OAUTH_STORE_FILE));
    let text: string;
    try {
      const mode = statSync(store.path).mode & 0o077;
      if (mode !== 0) throw new Error(`${store.path} is readable or writable by others (mode must be 0600)`);
      text = readFileSync(store.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw err;
    }
    const parsed = JSON.parse(text) as StoreFile;
    if (parsed.version !== 1) throw new Error(`${store.path}: unknown version`);
    for (const [id, c] of Object.entries(parsed.clients)) store.clients.set(id, c);
    for (const [id, f] of Object.entries(parsed.families)) store.addFamily({ ...f, id });
    return store;
  }

  /** The family a refresh token belongs to, and whether it is the current one or a spent one. */
  familyOf(hash: string): { family: RefreshFamily; current: boolean } | undefined {
    const id = this.byHash.get(hash);
    const family = id === undefined ? undefined : this.families.get(id);
    return family ? { family, current: family.current === hash } : undefined;
  }

  addFamily(family: RefreshFamily): void {
    this.families.set(family.id, family);
    this.byHash.set(family.current, family.id);
    for (const h of family.spent) this.byHash.set(h, family.id);
  }

  /** Make `next` the family's current refresh token; the old one becomes spent. */
  rotate(family: RefreshFamily, next: string): void {
    family.spent.push(family.current);
    while (family.spent.length > SPENT_HASHES_KEPT) this.byHash.delete(family.spent.shift()!);
    family.current = next;
    this.byHash.set(next, family.id);
  }

  removeFamily(family: RefreshFamily): void {
    this.families.delete(family.id);
    this.byHash.delete(family.current);
    for (const h of family.spent) this.byHash.delete(h);
  }

  /** Families of a client (none once it has no live authorization). */
  familiesOf(clientId: string): RefreshFamily[] {
    return [...this.families.values()].filter((f) => f.client_id === clientId);
  }

  /** Write the whole store durably (atomic replace); call before answering what depends on it. */
  save(): void {
    const body: StoreFile = { version: 1, clients: Object.fromEntries(this.clients), families: Object.fromEntries(this.families) };
    writeFileAtomic(this.path, JSON.stringify(body));
  }
}
