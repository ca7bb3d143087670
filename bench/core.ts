/**
 * Core benchmark (issue: kernel, tokens, event log):
 * 1. authorised ops/s through the full path (verify token → kernel → durable append), 256 concurrent
 *    submitters, against raw better-sqlite3 group-commit inserts of the same event bytes;
 * 2. cached token verification against raw node:crypto HMAC-SHA256 of the same token, and uncached jose;
 * 3. replay (read + kernel apply) against raw SQLite read + JSON.parse.
 */
import Database from 'better-sqlite3';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../protocol/canonical.js';
import { KeyRing } from '../server/auth/keyring.js';
import { TokenService } from '../server/auth/tokens.js';
import { Host, type Session } from '../server/host/host.js';
import { openEventLog } from '../server/store/index.js';
import { createLogger } from '../server/host/logger.js';
import { compare, comparisonRow, printRows, type Row } from './lib.js';

const SUBMITTERS = 256;
const OPS_PER_ROUND = 256 * 40;
const ROUNDS = 5;
const REPLAY_OPS = 60_000;

/**
 * `ops` operations from 64 concurrent submitters, in a fixed mix: per 20 operations 1 spawn, 8 task
 * schedules, 3 cancellations of a queued task, 8 observations, spread over the agents spawned so far.
 */
export async function mixedWorkload(host: Host, session: Session, ops: number): Promise<void> {
  const agents: string[] = [];
  const queued: { agent: string; task: string }[] = [];
  let next = 0;
  const one = async (i: number) => {
    const slot = i % 20;
    const agent = agents.length ? agents[i % agents.length] : 'root';
    if (slot === 0 || agents.length === 0) {
      const r = await host.submit(session, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `agent-${i}` } });
      agents.push(r.records[r.records.length - 1].event.agent!);
    } else if (slot <= 8) {
      const r = await host.submit(session, { type: 'ScheduleAgentTask', agent, task: { description: `task ${i}`, priority: 'medium' } });
      queued.push({ agent, task: (r.records[r.records.length - 1].event as unknown as { task: { id: string } }).task.id });
    } else if (slot <= 11 && queued.length > 0) {
      const { agent: owner, task } = queued.shift()!;
      await host.submit(session, { type: 'CancelTask', agent: owner, task });
    } else {
      await host.submit(session, { type: 'EmitObservation', agent, data: { step: i, note: 'x'.repeat(64) } });
    }
  };
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < ops) await one(next++);
    }),
  );
}

export async function benchCore(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'toka-bench-'));
  try {
    const rows: Row[] = [];
    const host = await Host.open({ dataDir: join(dir, 'host'), logger: createLogger({ level: 'error' }), rateLimit: false });
    const admin = host.localSession('bench');
    const minted = await host.mint(admin, {
      subject: 'bench',
      permissions: ['observation:emit', 'agent:spawn'],
      ttlSeconds: 1800,
    });
    const session = await host.authenticate(minted.token);
    await host.submit(session, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'bench-agent' } });
    const data = { note: 'x'.repeat(200) };

    // --- 1. full path vs raw group commit ---------------------------------------------------------------
    const fullPath = async () => {
      let left = OPS_PER_ROUND;
      const worker = async () => {
        while (left-- > 0) await host.submit(session, { type: 'EmitObservation', agent: 'root', data });
      };
      await Promise.all(Array.from({ length: SUBMITTERS }, worker));
      return OPS_PER_ROUND;
    };
    await fullPath();
    const sample = (await host.readAllEvents({ afterSeq: host.headSeq() - 1, limit: 1 }))[0];
    const body = canonicalJson(sample.event);
    const raw = new Database(join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.exec(
      'CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, vault TEXT NOT NULL, agent TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body TEXT NOT NULL)',
    );
    const insert = raw.prepare('INSERT INTO events (seq, type, vault, agent, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?)');
    let rawSeq = 0;
    const group = raw.transaction((n: number) => {
      for (let i = 0; i < n; i++) {
        rawSeq++;
        insert.run(rawSeq, sample.event.type, sample.event.vault, sample.event.agent ?? null, sample.prevHash, sample.hash, body);
      }
    });
    const rawGroupCommit = async () => {
      // Same grouping as the host sees: SUBMITTERS appends per tick, one transaction (one fsync) per group.
      for (let done = 0; done < OPS_PER_ROUND; done += SUBMITTERS) {
        group(SUBMITTERS);
        await new Promise((r) => setImmediate(r));
      }
      return OPS_PER_ROUND;
    };
    const append = await compare(ROUNDS, fullPath, rawGroupCommit);
    rows.push(
      comparisonRow(
        `submit, full path (${SUBMITTERS} submitters)`,
        'raw better-sqlite3 group commit, same bytes',
        append,
        0.6,
      ),
    );
    // The same raw appends into the indexes the log's commits write (server/store/sqlite-log.ts schema 2: by vault,
    // by type, and the run-submission index, which holds only RunSubmitted rows; the per-agent index is filled
    // behind the head, off the commit), to show what part of the gap is the schema and what part is our code
    // (token check, kernel, hashing, encoding, promises).
    raw.exec(
      "CREATE INDEX events_by_vault ON events (vault, seq); CREATE INDEX events_by_type ON events (type, seq); CREATE INDEX run_submissions ON events (json_extract(body, '$.run.id')) WHERE type = 'RunSubmitted';",
    );
    const schema = await compare(ROUNDS, fullPath, rawGroupCommit);
    rows.push(
      comparisonRow(
        `submit, full path (${SUBMITTERS} submitters)`,
        'raw group commit into the same schema (with indexes)',
        schema,
      ),
    );
    raw.close();

    // --- 2. token verification -----------------------------------------------------------------------
    // The token service on its own (the host keeps its own private), with a revocation view that finds nothing revoked.
    const keyRing = await KeyRing.open({ env: { TOKA_HS256_SECRET: randomBytes(32).toString('base64url') } });
    const revocation = { isTokenRevoked: () => false, grantState: () => 'live' as const };
    const service = new TokenService({ keyRing, revocation });
    const { token } = await service.mint({ sub: 'bench', vault: 'bench', permissions: ['observation:emit'], grant: 'g', ttlSeconds: 1800 });
    const N = 200_000;
    const key = keyRing.signingKey('HS256');
    const secret = key.verifyKey as Uint8Array;
    const signature = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url');
    // Wire tokens arrive as fresh strings: each call gets a new string object (so the cache pays the string
    // hashing every real request pays), and the HMAC baseline pays the same conversion.
    const fresh = (t: string) => Buffer.from(t, 'latin1').toString('latin1');
    const rawHmac = () => {
      let ok = 0;
      for (let i = 0; i < N; i++) {
        const wire = fresh(token);
        const cut = wire.lastIndexOf('.');
        const mac = createHmac('sha256', secret).update(wire.slice(0, cut)).digest();
        if (timingSafeEqual(mac, signature)) ok++;
      }
      return ok;
    };
    const cached = async () => {
      for (let i = 0; i < N; i++) await service.verify(fresh(token));
      return N;
    };
    const verifyRatio = await compare(ROUNDS, cached, rawHmac);
    rows.push(comparisonRow('token verify, cached', 'raw node:crypto HMAC-SHA256', verifyRatio, 0.5));
    const uncachedService = new TokenService({
      keyRing,
      revocation,
      cacheSize: 0,
    });
    const M = 20_000;
    const uncached = async () => {
      for (let i = 0; i < M; i++) await uncachedService.verify(token);
      return M;
    };
    const vsJose = await compare(ROUNDS, cached, uncached);
    rows.push(comparisonRow('token verify, cached', 'uncached (jose jwtVerify + checks)', vsJose));

    // --- 3. replay -------------------------------------------------------------------------------------
    // A mixed log, not one hot counter: agents spawned, tasks queued and cancelled, observations recorded.
    const replayHost = await Host.open({ dataDir: join(dir, 'replay'), logger: createLogger({ level: 'error' }), rateLimit: false });
    const owner = await replayHost.authenticate(
      (
        await replayHost.mint(replayHost.localSession('bench'), {
          subject: 'bench',
          permissions: ['agent:spawn', 'task:schedule', 'task:cancel', 'observation:emit'],
          ttlSeconds: 1800,
        })
      ).token,
    );
    await mixedWorkload(replayHost, owner, REPLAY_OPS);
    await replayHost.close();
    const replayLog = openEventLog({ kind: 'sqlite', path: join(dir, 'replay', 'events.db'), readOnly: true });
    const total = replayLog.head().seq;
    const replay = async () => {
      await Host.replay(replayLog, [], 'zero');
      return total;
    };
    const reader = new Database(join(dir, 'replay', 'events.db'), { readonly: true });
    const readAll = reader.prepare('SELECT seq, prev_hash, hash, body FROM events WHERE seq > ? ORDER BY seq LIMIT 10000');
    const rawRead = () => {
      let after = 0;
      let n = 0;
      for (;;) {
        const rows = readAll.all(after) as { seq: number; body: string }[];
        for (const row of rows) {
          JSON.parse(row.body);
          n++;
        }
        if (rows.length < 10000) return n;
        after = rows[rows.length - 1].seq;
      }
    };
    const replayRatio = await compare(ROUNDS, replay, rawRead);
    rows.push(
      comparisonRow(
        `replay from zero (${total.toLocaleString('en-US')} mixed events, read + kernel apply)`,
        'raw SQLite read + JSON.parse',
        replayRatio,
        0.7,
      ),
    );
    reader.close();
    await replayLog.close();
    await host.close();
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRows('Core', await benchCore());
}
