import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import type { LogRecord } from '../../../protocol/events.js';
import type { Operation } from '../../../protocol/kernel.js';
import { HostError } from '../../../server/host/errors.js';
import { Host, SNAPSHOT_CHARS_PER_EVENT, type Session } from '../../../server/host/host.js';
import { createLogger } from '../../../server/host/logger.js';
import { stateDigest } from '../../../server/store/hash.js';
import { waitFor } from '../../helpers/wait.js';
import { rejectsWith } from '../../helpers/host-errors.js';

const quiet = createLogger({ level: 'silent' });

describe('host', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-host-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function tokenFor(host: Host, vault: string, permissions: string[], subject = 'alice'): Promise<Session> {
    const { token } = await host.mint(host.localSession(vault), { subject, permissions, ttlSeconds: 600 });
    return host.authenticate(token);
  }

  it('answers a submit only after its events are durable, with their sequence numbers', async () => {
    const host = await Host.open({ dataDir: join(dir, 'd'), logger: quiet });
    const alice = await tokenFor(host, 'v', ['agent:spawn', 'state:read']);
    const result = await host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'w' } });
    assert.deepEqual(
      result.records.map((r) => r.event.type),
      ['AgentSpawned', 'AgentSpawned'],
    );
    await host.close();
    const reopened = await Host.open({ dataDir: join(dir, 'd'), logger: quiet, readOnly: true });
    const stored = await reopened.readAllEvents({ afterSeq: 0, limit: 10_000 });
    assert.deepEqual(
      stored.slice(-2).map((r) => r.hash),
      result.records.map((r) => r.hash),
    );
    await reopened.close();
  });

  it('refuses a revoked token on the next request of an open session', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const alice = await tokenFor(host, 'v', ['agent:spawn']);
    await host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'a' } });
    await host.revoke(host.localSession('v'), { token: alice.token });
    await rejectsWith(host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'b' } }), 'Unauthenticated', 'ERR_TOKEN_REVOKED');
    await host.close();
  });

  it('revoking a grant kills tokens delegated below it', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const admin = host.localSession('v');
    const minted = await host.mint(admin, { subject: 'alice', permissions: ['agent:spawn', 'capability:delegate'], ttlSeconds: 600 });
    const alice = await host.authenticate(minted.token);
    const child = await host.delegate(alice, { subject: 'bob', permissions: ['agent:spawn'], ttlSeconds: 60 });
    const bob = await host.authenticate(child.token);
    assert.deepEqual(bob.claims.dlg, [alice.claims.jti]);
    await host.submit(bob, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'b' } });
    await host.revoke(admin, { grant: minted.grant });
    await rejectsWith(host.submit(bob, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'c' } }), 'Unauthenticated', 'ERR_GRANT_REVOKED');
    await host.close();
  });

  it('will not mint wider than the caller holds', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const granter = await tokenFor(host, 'v', ['capability:grant', 'state:read']);
    await host.mint(granter, { subject: 'bob', permissions: ['state:read'] });
    await rejectsWith(host.mint(granter, { subject: 'bob', permissions: ['agent:spawn'] }), 'CapabilityDenied');
    await host.close();
  });

  it('authorize re-verifies without charging the rate limit; the operation is charged once', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet, now: () => 1_800_000_000_000, rateLimit: { ratePerSec: 1, burst: 2 } });
    const alice = await tokenFor(host, 'v', ['state:read']);
    for (let i = 0; i < 5; i++) await host.authorize(alice, 'state:read');
    await host.getState(alice);
    await host.getState(alice);
    await rejectsWith(host.getState(alice), 'RateLimited');
    await host.revoke(host.localSession('v'), { token: alice.token });
    await rejectsWith(host.authorize(alice, 'state:read'), 'Unauthenticated', 'ERR_TOKEN_REVOKED');
    await host.close();
  });

  it('rate-limits per subject with a retry-after', async () => {
    let now = 1_800_000_000_000;
    const host = await Host.open({ dataDir: null, logger: quiet, now: () => now, rateLimit: { ratePerSec: 10, burst: 2 } });
    const alice = await tokenFor(host, 'v', ['state:read']);
    await host.getState(alice);
    await host.getState(alice);
    const err = await rejectsWith(host.getState(alice), 'RateLimited');
    assert.ok((err.details.retryAfterMs as number) > 0 && (err.details.retryAfterMs as number) <= 100);
    now += 100;
    await host.getState(alice);
    await host.close();
  });

  it('keeps vaults apart in state, queries and subscriptions', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const a = await tokenFor(host, 'va', ['agent:spawn', 'state:read', 'events:read'], 'a');
    const b = await tokenFor(host, 'vb', ['agent:spawn', 'state:read', 'events:read', 'task:schedule'], 'b');
    const seenByB: LogRecord[] = [];
    await host.subscribe(b, { afterSeq: 0 }, { onRecord: (r) => void seenByB.push(r), onEnd: () => undefined });
    const spawned = await host.submit(a, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'secret' } });
    const mine = await host.submit(b, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'mine' } });
    const agentOfA = spawned.records[1].event.agent!;
    assert.deepEqual((await host.getState(b)).agents.map((x) => x.name).sort(), ['mine', 'root']);
    const queried = await host.queryEvents(b, {});
    assert.ok(queried.length > 0, 'b sees its own events');
    assert.ok(queried.every((r) => r.event.vault === 'vb'), JSON.stringify(queried));
    const mineSeqs = mine.records.map((r) => r.seq);
    assert.deepEqual(queried.map((r) => r.seq).slice(-mineSeqs.length), mineSeqs);
    assert.ok(!queried.some((r) => spawned.records.some((s) => s.seq === r.seq)), "a's records are not in b's query");
    await rejectsWith(host.submit(b, { type: 'ScheduleAgentTask', agent: agentOfA, task: { description: 'steal' } }), 'CapabilityDenied');
    // The subscription is fed in log order: once b's last record arrived, any leak of a's earlier ones would have too.
    await waitFor(() => seenByB.some((r) => r.seq === mineSeqs[mineSeqs.length - 1]), 5000, "b's last record on its subscription");
    assert.ok(seenByB.every((r) => r.event.vault === 'vb'), JSON.stringify(seenByB));
    assert.deepEqual(seenByB.map((r) => r.seq), queried.map((r) => r.seq));
    await host.close();
  });

  it('delivers subscribed events in sequence order, and ends the subscription when the token is revoked', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const alice = await tokenFor(host, 'v', ['agent:spawn', 'events:read', 'observation:emit']);
    const seqs: number[] = [];
    let ended = '';
    await host.subscribe(alice, { afterSeq: 0 }, { onRecord: (r) => void seqs.push(r.seq), onEnd: (e) => (ended = e.reason) });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => host.submit(alice, { type: 'EmitObservation', agent: 'root', data: { i } })),
    );
    const head = host.headSeq();
    await waitFor(() => seqs.includes(head), 5000, 'the head record on the subscription');
    // One vault, so the subscription sees the whole log: every seq once, in order, no gap.
    assert.deepEqual(seqs, Array.from({ length: head }, (_, i) => i + 1));
    await host.revoke(host.localSession('v'), { token: alice.token });
    await waitFor(() => ended !== '', 5000, 'the subscription to end');
    assert.equal(ended, 'unauthenticated');
    await host.close();
  });

  it('pages state oldest first with filters, counts, and task lists that are copies', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const alice = await tokenFor(host, 'v', ['agent:spawn', 'state:read', 'task:schedule', 'observation:emit']);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `a${i}` } });
      ids.push(r.records[r.records.length - 1].event.agent!);
    }
    const child = await host.submit(alice, { type: 'SpawnSubAgent', parent: ids[2], spec: { name: 'child' } });
    const childId = child.records[child.records.length - 1].event.agent!;
    await host.submit(alice, { type: 'ScheduleAgentTask', agent: ids[1], task: { description: 'first' } });
    await host.submit(alice, { type: 'ScheduleAgentTask', agent: ids[1], task: { description: 'second' } });
    await host.submit(alice, { type: 'EmitObservation', agent: ids[3], data: { n: 1 } });

    // Oldest first: by creation time, then by id (agents created in the same millisecond), across pages.
    const seen: Array<{ name: string; id: string; createdAt: number }> = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await host.getState(alice, { limit: 3, cursor });
      seen.push(...page.agents);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== undefined);
    assert.deepEqual(seen.map((a) => a.name).sort(), ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'child', 'root']);
    const ordered = [...seen].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    assert.deepEqual(seen, ordered);
    assert.equal(pages, 3);

    const one = await host.getState(alice, { agent: ids[1], includeTasks: true });
    assert.deepEqual(
      one.agents.map((a) => [a.name, a.queuedTasks, a.observations, a.tasks?.map((t) => t.description)]),
      [['a1', 2, 0, ['first', 'second']]],
    );
    one.agents[0].tasks!.pop();
    assert.equal((await host.getState(alice, { agent: ids[1], includeTasks: true })).agents[0].tasks!.length, 2);
    assert.equal((await host.getState(alice, { agent: ids[3] })).agents[0].observations, 1);
    assert.equal((await host.getState(alice, { agent: ids[3] })).agents[0].tasks, undefined);
    assert.deepEqual((await host.getState(alice, { parent: ids[2] })).agents.map((a) => a.id), [childId]);
    assert.deepEqual((await host.getState(alice, { status: 'stopped' })).agents, []);
    await host.close();
  });

  it('rejects bad query parameters with InvalidParams and keeps serving', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const alice = await tokenFor(host, 'v', ['state:read', 'events:read']);
    await rejectsWith(host.getState(alice, { limit: 0 }), 'InvalidParams');
    await rejectsWith(host.getState(alice, { cursor: 'nope' }), 'InvalidParams');
    await rejectsWith(host.queryEvents(alice, { afterSeq: -1 }), 'InvalidParams');
    await rejectsWith(host.queryEvents(alice, { types: Array.from({ length: 33 }, (_, i) => `T${i}`) }), 'InvalidParams');
    await rejectsWith(host.queryEvents(alice, { agent: 'a'.repeat(257) }), 'InvalidParams');
    await rejectsWith(
      host.subscribe(alice, { types: [''] }, { onRecord: () => undefined, onEnd: () => undefined }),
      'InvalidParams',
    );
    await rejectsWith(host.authorize(alice, 'agent:spawn'), 'CapabilityDenied');
    assert.equal((await host.authorize(alice, 'events:read')).sub, 'alice');
    await rejectsWith(host.submit(alice, 'junk' as unknown as Operation), 'InvalidOperation');
    assert.equal((await host.getState(alice)).agents.length, 0);
    await host.close();
  });

  it('a second writer on the same data dir gets Conflict', async () => {
    const host = await Host.open({ dataDir: join(dir, 'd'), logger: quiet });
    await rejectsWith(Host.open({ dataDir: join(dir, 'd'), logger: quiet }), 'Conflict');
    await host.close();
    await (await Host.open({ dataDir: join(dir, 'd'), logger: quiet })).close();
  });

  it('spaces snapshots of a large state by its size (one event per SNAPSHOT_CHARS_PER_EVENT characters)', async () => {
    const data = join(dir, 'cadence');
    const host = await Host.open({ dataDir: data, logger: quiet, snapshotEvery: 1, rateLimit: false });
    const alice = await tokenFor(host, 'v', ['agent:spawn']);
    for (let i = 0; i < 120; i++) {
      await host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `${i}-${'n'.repeat(250)}` } });
    }
    await host.close();
    const db = new Database(join(data, 'events.db'), { readonly: true });
    const kept = db.prepare('SELECT seq, length(state) AS chars FROM snapshots ORDER BY seq').all() as { seq: number; chars: number }[];
    db.close();
    assert.equal(kept.length, 3);
    for (let i = 1; i < kept.length; i++) {
      const gap = kept[i].seq - kept[i - 1].seq;
      assert.ok(gap >= Math.ceil(kept[i - 1].chars / SNAPSHOT_CHARS_PER_EVENT), `gap ${gap} after a ${kept[i - 1].chars}-char snapshot`);
      assert.ok(gap > 1, 'a large state is not snapshotted on every event');
    }
  });

  it('opens by replaying from zero when the newest snapshot was tampered with', async () => {
    const data = join(dir, 'snap');
    const host = await Host.open({ dataDir: data, logger: quiet, snapshotEvery: 2 });
    const alice = await tokenFor(host, 'v', ['agent:spawn']);
    for (let i = 0; i < 4; i++) await host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `a${i}` } });
    // Every snapshot that fell due is written: the newest is less than snapshotEvery (2) records behind the head.
    const snapshots = new Database(join(data, 'events.db'), { readonly: true });
    const newest = await waitFor(() => {
      const row = snapshots.prepare('SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1').get() as { seq: number; state: string } | undefined;
      return row !== undefined && row.seq > host.headSeq() - 2 ? row : null;
    }, 5000, 'the due snapshots to be written');
    snapshots.close();
    assert.ok(newest.state.includes('"a0"'), 'the newest snapshot holds the agent to tamper with');
    const live = stateDigest((await host.worldState()).state);
    await host.close();
    const db = new Database(join(data, 'events.db'));
    const changed = db.prepare(`UPDATE snapshots SET state = replace(state, '"a0"', '"zz"') WHERE seq = (SELECT max(seq) FROM snapshots)`).run();
    db.close();
    assert.equal(changed.changes, 1);
    const warnings: string[] = [];
    const reopened = await Host.open({
      dataDir: data,
      logger: createLogger({ level: 'warn', write: (line) => void warnings.push(line) }),
    });
    assert.equal(stateDigest((await reopened.worldState()).state), live);
    assert.ok(warnings.some((w) => w.includes('snapshot rejected')), warnings.join(''));
    await reopened.close();
  });

  describe('replay (property)', () => {
    const vaults = ['v1', 'v2'];
    const opArb = (agents: string[], tasks: { agent: string; id: string }[]) =>
      fc.oneof(
        fc.record({ type: fc.constant('SpawnSubAgent'), parent: fc.constantFrom('root', ...agents), spec: fc.record({ name: fc.string({ maxLength: 8 }) }) }),
        fc.record({
          type: fc.constant('ScheduleAgentTask'),
          agent: fc.constantFrom('root', ...agents),
          task: fc.record({ description: fc.string({ maxLength: 12 }), priority: fc.constantFrom('low', 'high', 'nope') }),
        }),
        fc.record({ type: fc.constant('EmitObservation'), agent: fc.constantFrom('root', 'missing', ...agents), data: fc.jsonValue({ maxDepth: 2 }) }),
        // A task scheduled earlier (cancelled already or not; 'none' before any), sometimes named on the wrong agent.
        fc.record(
          {
            type: fc.constant('CancelTask'),
            target: tasks.length === 0 ? fc.constant({ agent: 'root', id: 'none' }) : fc.constantFrom(...tasks),
            wrongAgent: fc.nat(4).map((n) => n === 0),
            reason: fc.string({ maxLength: 8 }),
          },
          { requiredKeys: ['type', 'target', 'wrongAgent'] },
        ).map(({ target, wrongAgent, ...rest }) => ({ ...rest, agent: wrongAgent ? 'root' : target.agent, task: target.id })),
        fc.record({ type: fc.constant('Bogus') }),
      );

    it('replaying the SQLite log from zero and from a snapshot gives the live state digest', async () => {
      let run = 0;
      const produced = new Set<string>();
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.constantFrom(0, 1), fc.nat(10), fc.integer({ min: 0, max: 1_000_000 })), { minLength: 1, maxLength: 40, size: 'medium' }),
          fc.integer({ min: 1, max: 12 }),
          async (steps, snapshotEvery) => {
            const data = join(dir, `p${run++}`);
            const host = await Host.open({ dataDir: data, logger: quiet, snapshotEvery, rateLimit: false });
            const sessions = await Promise.all(
              vaults.map((v) => tokenFor(host, v, ['agent:spawn', 'task:schedule', 'task:cancel', 'observation:emit'], `s-${v}`)),
            );
            const known: string[][] = [[], []];
            const tasks: { agent: string; id: string }[][] = [[], []];
            for (const [vi, pick, seed] of steps) {
              const op = fc.sample(opArb(known[vi], tasks[vi]), { seed, numRuns: 1 })[0] as Operation;
              void pick;
              try {
                const r = await host.submit(sessions[vi], op);
                for (const rec of r.records) {
                  produced.add(rec.event.type);
                  if (rec.event.type === 'AgentSpawned') known[vi].push(rec.event.agent!);
                  if (rec.event.type === 'TaskScheduled') tasks[vi].push({ agent: rec.event.agent!, id: (rec.event as { task: { id: string } }).task.id });
                }
              } catch (err) {
                assert.ok(err instanceof HostError);
              }
            }
            const live = stateDigest((await host.worldState()).state);
            const verified = await host.verify();
            assert.ok(verified.ok, JSON.stringify(verified));
            assert.equal(verified.replayDigest, live);
            await host.close();
            const reopened = await Host.open({ dataDir: data, logger: quiet, readOnly: true });
            assert.equal(stateDigest((await reopened.worldState()).state), live, 'restart from snapshot + tail');
            await reopened.close();
          },
        ),
        { numRuns: 25 },
      );
      for (const t of ['AgentSpawned', 'TaskScheduled', 'TaskCancelled', 'ObservationEmitted']) assert.ok(produced.has(t), `never produced ${t}`);
    });
  });
});
