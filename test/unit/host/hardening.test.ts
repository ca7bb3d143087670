import assert from 'node:assert/strict';
import { Host, type Session } from '../../../server/host/host.js';
import { createLogger } from '../../../server/host/logger.js';
import { HeldLog } from '../../helpers/held-log.js';
import { rejectsWith } from '../../helpers/host-errors.js';
import { waitFor } from '../../helpers/wait.js';

const quiet = createLogger({ level: 'silent' });

/** Let every pending promise callback and timer-free continuation run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function tracked<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return { settled: () => done, promise: p };
}

describe('host hardening', () => {
  async function tokenFor(host: Host, vault: string, permissions: string[], subject = 'alice'): Promise<Session> {
    const { token } = await host.mint(host.localSession(vault), { subject, permissions, ttlSeconds: 600 });
    return host.authenticate(token);
  }

  describe('reads see only durable state', () => {
    it('answers a state read only once the events it shows are durable, with their seq', async () => {
      const log = new HeldLog();
      const host = await Host.open({ dataDir: null, eventLog: log, logger: quiet });
      const alice = await tokenFor(host, 'v', ['agent:spawn', 'state:read', 'capability:read']);
      const before = await host.getState(alice);
      log.hold();
      const spawn = tracked(host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'held' } }));
      const read = tracked(host.getState(alice));
      const grants = tracked(host.listGrants(alice));
      for (let i = 0; i < 5; i++) await settle();
      assert.equal(spawn.settled(), false, 'the submit waits for its commit');
      assert.equal(read.settled(), false, 'a read that would show the held events waits for their commit');
      assert.equal(grants.settled(), false);
      log.releaseHeld();
      const spawned = await spawn.promise;
      const state = await read.promise;
      assert.equal(state.seq, spawned.records[spawned.records.length - 1].seq);
      assert.ok(state.seq > before.seq);
      assert.ok(state.agents.some((a) => a.name === 'held'));
      assert.equal(host.headSeq(), state.seq);
      await grants.promise;
      await host.close();
    });

    it('answers at once when nothing is pending', async () => {
      const log = new HeldLog();
      const host = await Host.open({ dataDir: null, eventLog: log, logger: quiet });
      const alice = await tokenFor(host, 'v', ['state:read']);
      log.hold();
      const read = tracked(host.getState(alice));
      await settle();
      assert.equal(read.settled(), true, 'no append is pending, so the read needs no barrier');
      log.releaseHeld();
      await host.close();
    });

    it('refuses reads (and everything else) after a failed append instead of showing the lost events', async () => {
      const log = new HeldLog();
      const host = await Host.open({ dataDir: null, eventLog: log, logger: quiet });
      const alice = await tokenFor(host, 'v', ['agent:spawn', 'state:read', 'capability:read', 'events:read']);
      log.hold();
      const spawn = host.submit(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'lost' } });
      const read = host.getState(alice);
      for (let i = 0; i < 5; i++) await settle();
      log.failHeld();
      await rejectsWith(spawn, 'Unavailable');
      await rejectsWith(read, 'Unavailable');
      await rejectsWith(host.getState(alice), 'Unavailable');
      await rejectsWith(host.listGrants(alice), 'Unavailable');
      await rejectsWith(host.worldState(), 'Unavailable');
      await rejectsWith(host.authenticate(alice.token!), 'Unavailable');
      assert.deepEqual(
        { ok: host.health().ok, ready: host.health().ready },
        { ok: false, ready: false },
      );
      await host.close();
    });
  });

  describe('staged operations (Host.stage)', () => {
    it('executes at once and tells the log positions; reads, queries and subscribers see the events only once durable', async () => {
      const log = new HeldLog();
      const host = await Host.open({ dataDir: null, eventLog: log, logger: quiet });
      const alice = await tokenFor(host, 'v', ['agent:spawn', 'state:read', 'events:read', 'observation:emit']);
      await host.submit(alice, { type: 'EmitObservation', agent: 'root', data: { n: 0 } });
      const head = host.headSeq();
      const seen: number[] = [];
      const watching = host.watch(head, (r) => seen.push(r.seq));
      log.hold();
      const first = await host.stage(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'staged' } });
      const second = await host.stage(alice, { type: 'EmitObservation', agent: 'root', data: { n: 1 } });
      assert.deepEqual(
        [...first.staged, ...second.staged].map((s) => [s.seq, s.event.type]),
        [
          [head + 1, 'AgentSpawned'],
          [head + 2, 'ObservationEmitted'],
        ],
      );
      const durable = tracked(second.durable);
      const read = tracked(host.getState(alice));
      for (let i = 0; i < 5; i++) await settle();
      assert.equal(durable.settled(), false, 'durable waits for the commit');
      assert.equal(read.settled(), false, 'a read showing staged events waits for them to be durable');
      assert.equal(host.headSeq(), head);
      assert.deepEqual(seen, []);
      log.releaseHeld();
      const records = [...(await first.durable).records, ...(await second.durable).records];
      assert.deepEqual(
        records.map((r) => [r.seq, r.event.type]),
        [...first.staged, ...second.staged].map((s) => [s.seq, s.event.type]),
      );
      assert.deepEqual(records.map((r) => r.event), [...first.staged, ...second.staged].map((s) => s.event));
      assert.equal((await read.promise).seq, head + 2);
      await waitFor(() => seen.length === 2);
      assert.deepEqual(seen, [head + 1, head + 2]);
      watching.unsubscribe();
      await host.close();
    });

    it('refuses a step the kernel refuses, with its typed error and nothing queued', async () => {
      const host = await Host.open({ dataDir: null, logger: quiet });
      const alice = await tokenFor(host, 'v', ['agent:spawn', 'state:read']);
      const head = host.headSeq();
      await rejectsWith(host.stage(alice, { type: 'SpawnSubAgent', parent: 'nobody', spec: { name: 'x' } }), 'UnknownEntity');
      await rejectsWith(host.stage(alice, { type: 'EmitObservation', agent: 'root', data: {} }), 'CapabilityDenied');
      const ok = await host.stage(alice, { type: 'SpawnSubAgent', parent: 'root', spec: { name: 'y' } });
      assert.equal(ok.staged[0].seq, head + 1, 'the refused steps took no log position');
      await ok.durable;
      await host.close();
    });

    it('a failed append rejects every staged step with Unavailable, whether awaited or not, and the host stays up refusing', async () => {
      const log = new HeldLog();
      const host = await Host.open({ dataDir: null, eventLog: log, logger: quiet });
      const alice = await tokenFor(host, 'v', ['observation:emit']);
      let unhandled: unknown = null;
      const onUnhandled = (reason: unknown) => (unhandled = reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        log.hold();
        const unawaited = await host.stage(alice, { type: 'EmitObservation', agent: 'root', data: { n: 1 } });
        const awaited = await host.stage(alice, { type: 'EmitObservation', agent: 'root', data: { n: 2 } });
        assert.equal(unawaited.staged.at(-1)?.event.type, 'ObservationEmitted');
        for (let i = 0; i < 5; i++) await settle();
        log.failHeld();
        await rejectsWith(awaited.durable, 'Unavailable');
        await rejectsWith(host.stage(alice, { type: 'EmitObservation', agent: 'root', data: { n: 3 } }), 'Unavailable');
        for (let i = 0; i < 5; i++) await settle();
        assert.equal(unhandled, null, 'an unawaited staged step that fails does not end the process');
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      await host.close();
    });
  });

  it('refuses a mint with a too-long ttlSeconds before writing anything', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet });
    const admin = host.localSession('v');
    const head = host.headSeq();
    const err = await rejectsWith(host.mint(admin, { subject: 'bob', permissions: ['state:read'], ttlSeconds: 3600 }), 'InvalidParams');
    assert.equal(err.details.field, 'ttlSeconds');
    await rejectsWith(host.mint(admin, { subject: 'bob', permissions: ['state:read'], alg: 'RS256' as never }), 'InvalidParams');
    assert.equal(host.headSeq(), head, 'no grant was logged for a refused mint');
    assert.deepEqual(await host.listGrants(admin), []);
    await host.close();
  });

  it('keys the rate limit by vault and subject: a same-named subject of another vault keeps its own budget', async () => {
    const host = await Host.open({ dataDir: null, logger: quiet, rateLimit: { ratePerSec: 0.001, burst: 3 }, now: () => 1_700_000_000_000 });
    const x = await tokenFor(host, 'x', ['state:read']);
    const y = await tokenFor(host, 'y', ['state:read']);
    for (let i = 0; i < 3; i++) await host.getState(x);
    await rejectsWith(host.getState(x), 'RateLimited');
    await host.getState(y);
    await host.close();
  });

  describe('sessions: one policy for a missing token', () => {
    it('gives the local admin to an owner channel, refuses a network channel, and lets a token decide on both', async () => {
      const host = await Host.open({ dataDir: null, logger: quiet });
      const owner = await host.openSession('owner', { vault: 'w' });
      assert.equal(owner.local, true);
      assert.equal(owner.claims.vault, 'w');
      assert.equal((await host.openSession('owner', {})).claims.vault, 'default');
      const err = await rejectsWith(host.openSession('network', { vault: 'w' }), 'Unauthenticated');
      assert.equal(err.details.reason, 'ERR_TOKEN_MISSING');
      const { token } = await host.mint(owner, { subject: 'carol', permissions: ['state:read'] });
      for (const channel of ['owner', 'network'] as const) {
        const s = await host.openSession(channel, { token, vault: 'other' });
        assert.equal(s.local, false);
        assert.equal(s.principal, 'carol');
        assert.equal(s.claims.vault, 'w');
      }
      await rejectsWith(host.openSession('owner', { token: 'not-a-token' }), 'Unauthenticated');
      await host.close();
    });

    it('refuses an ill-formed vault name for a local session', async () => {
      const host = await Host.open({ dataDir: null, logger: quiet });
      await rejectsWith(host.openSession('owner', { vault: 'a\uD800b' }), 'InvalidParams');
      await host.close();
    });
  });
});
