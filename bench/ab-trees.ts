/**
 * Profiling aid (not part of `npm run bench`): compare two checkouts of this repository on one in-process
 * path, by CPU time per operation, with rounds of A and B alternating in one process. On a shared machine
 * the wall-clock ratios of `npm run bench` swing by ±30 % with the load; CPU time of alternating rounds in
 * one process is far steadier, so this is how to tell whether a change made a path slower.
 *
 *   node --import tsx bench/ab-trees.ts <tree A> <tree B> state|submit|verify [rounds]
 *
 * A tree is a directory holding `server/` (e.g. `git archive <rev> | tar -x -C /tmp/a`, with a
 * `node_modules` link to this checkout's). Paths: `state` = `host.getState` (8 callers, 4 agents),
 * `submit` = full-path `host.submit` on the memory log (256 submitters), `verify` = cached token verification
 * with a fresh token string per call. The rate limit is on but never refuses, so its key is built per call.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

type Path = 'state' | 'submit' | 'verify';
const [treeA, treeB, path = 'state', roundsArg = '12'] = process.argv.slice(2);
if (!treeA || !treeB || !['state', 'submit', 'verify'].includes(path)) {
  throw new Error('usage: bench/ab-trees.ts <tree A> <tree B> state|submit|verify [rounds]');
}
const ROUNDS = Number(roundsArg);
const OPS: Record<Path, number> = { state: 50_000, submit: 10_000, verify: 200_000 };

async function setup(tree: string, which: Path): Promise<() => Promise<void>> {
  const root = resolve(tree);
  const n = OPS[which];
  if (which === 'verify') {
    const { KeyRing } = await import(`${root}/server/auth/keyring.ts`);
    const { TokenService } = await import(`${root}/server/auth/tokens.ts`);
    const keyRing = await KeyRing.open({ env: { TOKA_HS256_SECRET: randomBytes(32).toString('base64url') } });
    const service = new TokenService({ keyRing, revocation: { isTokenRevoked: () => false, grantState: () => 'live' as const } });
    const { token } = await service.mint({ sub: 'bench', vault: 'bench', permissions: ['observation:emit'], grant: 'g', ttlSeconds: 1800 });
    const fresh = (t: string) => Buffer.from(t, 'latin1').toString('latin1');
    return async () => {
      for (let i = 0; i < n; i++) await service.verify(fresh(token));
    };
  }
  const { Host } = await import(`${root}/server/host/host.ts`);
  const { createLogger } = await import(`${root}/server/host/logger.ts`);
  const host = await Host.open({ dataDir: null, logger: createLogger({ level: 'error' }), rateLimit: { ratePerSec: 1e9, burst: 1e9 } });
  const minted = await host.mint(host.localSession('bench'), {
    subject: 'bench',
    permissions: ['observation:emit', 'agent:spawn', 'state:read'],
    ttlSeconds: 1800,
  });
  const session = await host.authenticate(minted.token);
  for (let i = 0; i < 4; i++) await host.submit(session, { type: 'SpawnSubAgent', parent: 'root', spec: { name: `a${i}` } });
  const data = { note: 'x'.repeat(200) };
  const call =
    which === 'state'
      ? () => host.getState(session, {})
      : () => host.submit(session, { type: 'EmitObservation', agent: 'root', data });
  return async () => {
    let left = n;
    const worker = async () => {
      while (left-- > 0) await call();
    };
    await Promise.all(Array.from({ length: which === 'state' ? 8 : 256 }, worker));
  };
}

const runs = [await setup(treeA, path as Path), await setup(treeB, path as Path)];
const rates: number[][] = [[], []];
for (let r = 0; r < ROUNDS + 2; r++) {
  for (const i of r % 2 ? [1, 0] : [0, 1]) {
    const before = process.cpuUsage();
    await runs[i]();
    const used = process.cpuUsage(before);
    // The first two rounds of each side warm the JIT up and are not counted.
    if (r >= 2) rates[i].push(OPS[path as Path] / ((used.user + used.system) / 1e6));
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const [a, b] = rates.map(median);
process.stdout.write(`${path}: A ${Math.round(a)} ops/CPU-s, B ${Math.round(b)} ops/CPU-s, B/A ${(b / a).toFixed(3)}\n`);
process.exit(0);
