/**
 * The behaviour every event-log engine must show. Each engine's test file calls `describeEventLog`.
 */
import assert from 'node:assert/strict';
import { canonicalJson } from '../../../protocol/canonical.js';
import type { LogRecord } from '../../../protocol/events.js';
import { emptyState } from '../../../server/kernel/kernel.js';
import type { ChainedEventLog } from '../../../server/store/chained-log.js';
import type { SubscriptionEnd } from '../../../server/store/event-log.js';
import { GENESIS_HASH, recordHash, stateDigest } from '../../../server/store/hash.js';
import { waitFor } from '../../helpers/wait.js';
import { ev, gate, nextTurn, range, seqs } from './helpers.js';

export interface Engine {
  log: ChainedEventLog;
  cleanup(): Promise<void>;
}

export function describeEventLog(name: string, open: () => Promise<Engine>): void {
  describe(`event log behaviour: ${name}`, () => {
    let engine: Engine;
    let log: ChainedEventLog;
    beforeEach(async () => {
      engine = await open();
      log = engine.log;
    });
    afterEach(async () => {
      await engine.cleanup();
    });

    describe('append, head, read', () => {
      it('starts empty at the genesis hash', async () => {
        assert.deepEqual(log.head(), { seq: 0, hash: GENESIS_HASH });
        assert.deepEqual(await log.read(), []);
        assert.deepEqual(await log.verify(), { ok: true, checked: 0, headSeq: 0 });
      });

      it('chains records: seq from 1, prevHash links, hash = recordHash', async () => {
        const first = await log.append([ev(1), ev(2)]);
        const second = await log.append([ev(3)]);
        const all = [...first, ...second];
        assert.deepEqual(seqs(all), [1, 2, 3]);
        let prev = GENESIS_HASH;
        for (const record of all) {
          assert.equal(record.prevHash, prev);
          assert.equal(record.hash, recordHash(prev, record.seq, record.event));
          prev = record.hash;
        }
        assert.deepEqual(log.head(), { seq: 3, hash: prev });
        assert.deepEqual(await log.read(), all);
        assert.deepEqual(all[2].event, ev(3));
      });

      it('stores the canonical event: undefined members are dropped', async () => {
        const [record] = await log.append([{ ...ev(1), reason: undefined }]);
        assert.equal('reason' in record.event, false);
        assert.deepEqual((await log.read())[0], record);
      });

      it('an empty batch resolves with no records and writes nothing', async () => {
        assert.deepEqual(await log.append([]), []);
        assert.equal(log.head().seq, 0);
      });

      it('reads after a seq, up to a limit, clamped at 10,000', async () => {
        await log.append(range(1, 10_050).map((n) => ev(n)));
        assert.deepEqual(seqs(await log.read({ afterSeq: 10, limit: 5 })), [11, 12, 13, 14, 15]);
        assert.equal((await log.read()).length, 10_000);
        assert.equal((await log.read({ limit: 50_000 })).length, 10_000);
        assert.deepEqual(seqs(await log.read({ afterSeq: 10_000 })), range(10_001, 10_050));
        assert.deepEqual(await log.read({ afterSeq: 20_000 }), []);
        await assert.rejects(log.read({ limit: 0 }), RangeError);
        await assert.rejects(log.read({ afterSeq: -1 }), RangeError);
        await assert.rejects(log.read({ afterSeq: 1.5 }), RangeError);
      });

      it('filters by vault, agent and types (all given fields must match)', async () => {
        await log.append([
          ev(1, { vault: 'v1', agent: 'a', type: 'TaskScheduled' }),
          ev(2, { vault: 'v2', agent: 'a', type: 'TaskScheduled' }),
          ev(3, { vault: 'v1', agent: 'b', type: 'ObservationEmitted' }),
          ev(4, { vault: 'v1', agent: 'a', type: 'ObservationEmitted' }),
          ev(5, { vault: 'v2', agent: 'b', type: 'AgentSpawned' }),
        ]);
        assert.deepEqual(seqs(await log.read({ filter: { vault: 'v1' } })), [1, 3, 4]);
        assert.deepEqual(seqs(await log.read({ filter: { agent: 'b' } })), [3, 5]);
        assert.deepEqual(seqs(await log.read({ filter: { types: ['ObservationEmitted'] } })), [3, 4]);
        assert.deepEqual(seqs(await log.read({ filter: { types: ['AgentSpawned', 'TaskScheduled'] } })), [1, 2, 5]);
        assert.deepEqual(seqs(await log.read({ filter: { vault: 'v1', agent: 'a' } })), [1, 4]);
        assert.deepEqual(seqs(await log.read({ filter: { vault: 'v1', agent: 'a', types: ['TaskScheduled'] } })), [1]);
        assert.deepEqual(seqs(await log.read({ filter: { types: [] } })), []);
        assert.deepEqual(seqs(await log.read({ afterSeq: 1, limit: 1, filter: { vault: 'v1' } })), [3]);
        assert.deepEqual(seqs(await log.read({ limit: 2, filter: { types: ['AgentSpawned', 'TaskScheduled'] } })), [1, 2]);
      });
    });

    describe('group commit and atomicity', () => {
      it('commits 200 appends issued in one tick as one transaction', async () => {
        await log.append([ev(0)]);
        const before = log.stats();
        const results = await Promise.all(range(1, 200).map((n) => log.append([ev(n), ev(n + 1000)])));
        const after = log.stats();
        assert.equal(after.transactions - before.transactions, 1);
        assert.equal(after.batches - before.batches, 200);
        assert.equal(after.records - before.records, 400);
        // Each batch is contiguous and batches are in call order.
        results.forEach((records, i) => assert.deepEqual(seqs(records), [2 + 2 * i, 3 + 2 * i]));
        assert.equal((await log.verify()).ok, true);
      });

      it('appends in different ticks are different transactions', async () => {
        await log.append([ev(1)]);
        await log.append([ev(2)]);
        await log.append([ev(3)]);
        assert.equal(log.stats().transactions, 3);
      });

      it('an invalid batch is rejected whole; other batches of the same tick commit', async () => {
        const good = log.append([ev(1)]);
        const bad = log.append([ev(2), { ...ev(3), vault: 42 } as never]);
        const notObject = log.append([null as never]);
        const nonFinite: Record<string, unknown> = { ...ev(4) };
        nonFinite.data = { n: Number.NaN };
        const unencodable = log.append([nonFinite as never]);
        const good2 = log.append([ev(5), ev(6)]);
        await assert.rejects(bad, TypeError);
        await assert.rejects(notObject, TypeError);
        await assert.rejects(unencodable, TypeError);
        assert.deepEqual(seqs(await good), [1]);
        assert.deepEqual(seqs(await good2), [2, 3]);
        assert.deepEqual(
          (await log.read()).map((r) => r.event.opId),
          ['op-1', 'op-5', 'op-6'],
        );
      });

      it('close() commits pending appends, then refuses new ones', async () => {
        const pending = log.append([ev(1)]);
        await log.close();
        assert.deepEqual(seqs(await pending), [1]);
        await assert.rejects(log.append([ev(2)]), { code: 'LogClosed' });
        await assert.rejects(log.read(), { code: 'LogClosed' });
        await log.close();
      });
    });

    describe('verify and snapshots', () => {
      it('verifies a long chain', async () => {
        for (let i = 0; i < 12; i++) await log.append(range(1, 1000).map((n) => ev(i * 1000 + n)));
        const report = await log.verify();
        assert.deepEqual(report, { ok: true, checked: 12_000, headSeq: 12_000 });
      });

      it('snapshots round trip and the newest three are kept', async () => {
        assert.equal(await log.latestSnapshot(), null);
        await log.append(range(1, 10).map((n) => ev(n)));
        for (const seq of [2, 4, 6, 8]) {
          const state = emptyState();
          state.observations = { a: seq };
          assert.equal(await log.writeSnapshot({ seq, canonicalState: canonicalJson(state) }), stateDigest(state));
        }
        const latest = await log.latestSnapshot();
        assert.equal(latest?.seq, 8);
        assert.deepEqual(latest?.state.observations, { a: 8 });
        assert.equal(latest?.digest, stateDigest(latest!.state));
      });

      it('refuses a snapshot past the head or whose state is not an encoded object', async () => {
        await log.append([ev(1)]);
        const canonicalState = canonicalJson(emptyState());
        await assert.rejects(log.writeSnapshot({ seq: 2, canonicalState }), RangeError);
        await assert.rejects(log.writeSnapshot({ seq: -1, canonicalState }), RangeError);
        await assert.rejects(log.writeSnapshot({ seq: 1, canonicalState: emptyState() as never }), TypeError);
        assert.equal(await log.latestSnapshot(), null);
      });
    });

    describe('subscriptions', () => {
      function collector(opts: { delayEvery?: number } = {}) {
        const got: LogRecord[] = [];
        const ends: SubscriptionEnd[] = [];
        let inFlight = 0;
        let maxInFlight = 0;
        return {
          got,
          ends,
          maxInFlight: () => maxInFlight,
          listener: {
            onRecord: async (record: LogRecord) => {
              inFlight += 1;
              maxInFlight = Math.max(maxInFlight, inFlight);
              if (opts.delayEvery !== undefined && record.seq % opts.delayEvery === 0) await nextTurn();
              got.push(record);
              inFlight -= 1;
            },
            onEnd: (end: SubscriptionEnd) => void ends.push(end),
          },
        };
      }

      it('catches up, then goes live with no gap and no duplicate while appends race', async () => {
        await log.append(range(1, 2500).map((n) => ev(n)));
        const c = collector({ delayEvery: 97 });
        log.subscribe({ afterSeq: 0 }, c.listener);
        // Many concurrent appenders, over many ticks, while the subscriber pages through storage.
        const appenders = range(1, 20).map(async (w) => {
          for (let i = 0; i < 25; i++) {
            await log.append([ev(10_000 + w * 100 + i)]);
            if (i % 5 === 0) await nextTurn();
          }
        });
        await Promise.all(appenders);
        await waitFor(() => c.got.length >= 3000, 10_000, 'all records');
        await nextTurn();
        assert.deepEqual(seqs(c.got), range(1, 3000));
        assert.deepEqual(c.got, await readAll());
        assert.equal(c.maxInFlight(), 1);
        assert.deepEqual(c.ends, []);
      });

      it('delivers only seq > afterSeq and matching the filter', async () => {
        await log.append(range(1, 10).map((n) => ev(n, { agent: n % 2 === 0 ? 'even' : 'odd' })));
        const c = collector();
        log.subscribe({ afterSeq: 4, filter: { agent: 'even' } }, c.listener);
        await log.append(range(11, 14).map((n) => ev(n, { agent: n % 2 === 0 ? 'even' : 'odd' })));
        await waitFor(() => c.got.length >= 5, 10_000, 'filtered records');
        await nextTurn();
        assert.deepEqual(seqs(c.got), [6, 8, 10, 12, 14]);
      });

      it('an afterSeq beyond the head delivers nothing up to it', async () => {
        await log.append([ev(1)]);
        const c = collector();
        log.subscribe({ afterSeq: 3 }, c.listener);
        await log.append([ev(2), ev(3), ev(4), ev(5)]);
        await waitFor(() => c.got.length >= 2, 10_000, 'records after 3');
        assert.deepEqual(seqs(c.got), [4, 5]);
      });

      it('ends a slow subscriber with overflow; a fast one and the appends keep going; resume fills exactly the gap', async () => {
        const slowGate = gate();
        const slowGot: number[] = [];
        const slowEnds: SubscriptionEnd[] = [];
        log.subscribe(
          { afterSeq: 0, bufferLimit: 50 },
          {
            onRecord: async (record) => {
              slowGot.push(record.seq);
              await slowGate.promise;
            },
            onEnd: (end) => void slowEnds.push(end),
          },
        );
        const fast = collector();
        log.subscribe({ afterSeq: 0 }, fast.listener);
        await log.append([ev(1)]);
        await waitFor(() => slowGot.length === 1, 10_000, 'slow subscriber to take record 1');
        for (let n = 2; n <= 200; n++) await log.append([ev(n)]);
        assert.deepEqual(slowEnds, [{ reason: 'overflow', lastDeliveredSeq: 1, limit: 50 }]);
        assert.deepEqual(slowGot, [1]);
        await waitFor(() => fast.got.length === 200, 10_000, 'fast subscriber');
        assert.deepEqual(seqs(fast.got), range(1, 200));
        slowGate.open();
        await nextTurn();
        assert.deepEqual(slowGot, [1], 'no delivery after overflow');

        const resumed = collector();
        log.subscribe({ afterSeq: slowEnds[0].reason === 'overflow' ? slowEnds[0].lastDeliveredSeq : -1 }, resumed.listener);
        await log.append([ev(201)]);
        await waitFor(() => resumed.got.length === 200, 10_000, 'resumed subscriber');
        await nextTurn();
        assert.deepEqual(seqs(resumed.got), range(2, 201));
      });

      it('a subscriber slow during catch-up is not ended: it keeps reading storage', async () => {
        await log.append(range(1, 1500).map((n) => ev(n)));
        const c = collector({ delayEvery: 1 });
        log.subscribe({ afterSeq: 0, bufferLimit: 10 }, c.listener);
        for (let n = 1501; n <= 1600; n++) await log.append([ev(n)]);
        await waitFor(() => c.got.length >= 1600, 10_000, 'catch-up past overflowing buffer');
        await nextTurn();
        assert.deepEqual(seqs(c.got), range(1, 1600));
        assert.deepEqual(c.ends, []);
      });

      it('unsubscribe stops delivery at once, also during catch-up', async () => {
        await log.append(range(1, 50).map((n) => ev(n)));
        const got: number[] = [];
        const ends: SubscriptionEnd[] = [];
        const sub = log.subscribe(
          { afterSeq: 0 },
          {
            onRecord: (record) => {
              got.push(record.seq);
              if (record.seq === 5) sub.unsubscribe();
            },
            onEnd: (end) => void ends.push(end),
          },
        );
        await log.append([ev(51)]);
        await nextTurn();
        assert.deepEqual(got, [1, 2, 3, 4, 5]);

        const live: number[] = [];
        const liveSub = log.subscribe({ afterSeq: 51 }, { onRecord: (record) => void live.push(record.seq) });
        await log.append([ev(52)]);
        await waitFor(() => live.length === 1, 10_000, 'live record');
        liveSub.unsubscribe();
        await log.append([ev(53)]);
        await nextTurn();
        assert.deepEqual(live, [52]);
        assert.deepEqual(ends, []);
      });

      it('a throwing listener is ended alone; appends and other subscribers are unaffected', async () => {
        const ends: SubscriptionEnd[] = [];
        log.subscribe(
          { afterSeq: 0 },
          {
            onRecord: (record) => {
              if (record.seq === 3) throw new Error('listener bug');
            },
            onEnd: (end) => void ends.push(end),
          },
        );
        const rejecting: SubscriptionEnd[] = [];
        log.subscribe(
          { afterSeq: 0 },
          { onRecord: async () => Promise.reject(new Error('async bug')), onEnd: (end) => void rejecting.push(end) },
        );
        const other = collector();
        log.subscribe({ afterSeq: 0 }, other.listener);
        for (let n = 1; n <= 10; n++) assert.equal((await log.append([ev(n)]))[0].seq, n);
        await waitFor(() => other.got.length === 10, 10_000, 'healthy subscriber');
        assert.deepEqual(ends, [{ reason: 'error', lastDeliveredSeq: 2, message: 'listener bug' }]);
        assert.deepEqual(rejecting, [{ reason: 'error', lastDeliveredSeq: 0, message: 'async bug' }]);
      });

      it('close() ends every subscription with reason closed', async () => {
        await log.append([ev(1)]);
        const a = collector();
        const b = collector();
        log.subscribe({ afterSeq: 0 }, a.listener);
        log.subscribe({ afterSeq: 1, filter: { vault: 'v9' } }, b.listener);
        await waitFor(() => a.got.length === 1, 10_000, 'delivery');
        await log.close();
        assert.deepEqual(a.ends, [{ reason: 'closed' }]);
        assert.deepEqual(b.ends, [{ reason: 'closed' }]);
        assert.throws(() => log.subscribe({ afterSeq: 0 }, a.listener), { code: 'LogClosed' });
      });

      it('rejects bad subscribe options', () => {
        const listener = { onRecord: () => undefined };
        assert.throws(() => log.subscribe({ afterSeq: -1 }, listener), RangeError);
        assert.throws(() => log.subscribe({ afterSeq: 0, bufferLimit: 0 }, listener), RangeError);
      });
    });

    async function readAll(): Promise<LogRecord[]> {
      const out: LogRecord[] = [];
      for (;;) {
        const page = await log.read({ afterSeq: out.length === 0 ? 0 : out[out.length - 1].seq });
        if (page.length === 0) return out;
        out.push(...page);
      }
    }
  });
}
