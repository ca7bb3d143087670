import assert from 'node:assert/strict';
import { MAX_DELEGATION_DEPTH } from '../../../protocol/capability.js';
import { BASE, fixture, rejectsWith } from './helpers.js';

describe('auth/tokens: delegation', () => {
  it('a child keeps vault and grant, narrows permissions and records its parent', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, permissions: ['capability:*', 'state:read'], ttlSeconds: 600 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['capability:read'], ttlSeconds: 60 });
    assert.equal(child.claims.vault, BASE.vault);
    assert.equal(child.claims.grant, BASE.grant);
    assert.deepEqual(child.claims.dlg, [parent.claims.jti]);
    assert.equal(child.claims.exp, child.claims.iat + 60);
    assert.deepEqual(await tokens.verify(child.token), child.claims);
  });

  it('the default child exp is the parent exp', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 120 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'] });
    assert.equal(child.claims.exp, parent.claims.exp);
  });

  it('a ttl beyond the parent is clipped to the parent exp', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 120 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'], ttlSeconds: 900 });
    assert.equal(child.claims.exp, parent.claims.exp);
  });

  it('rejects a widening delegation', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    await rejectsWith(
      tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read', 'agent:spawn'] }),
      'ERR_DELEGATION_WIDENS',
    );
  });

  it('rejects widening a concrete permission to its area wildcard', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    await rejectsWith(tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:*'] }), 'ERR_DELEGATION_WIDENS');
  });

  it('rejects an explicit exp beyond the parent', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    await rejectsWith(
      tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'], exp: parent.claims.exp + 1 }),
      'ERR_DELEGATION_EXPIRY',
    );
  });

  it('accepts an explicit exp equal to the parent exp', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'], exp: parent.claims.exp });
    assert.equal(child.claims.exp, parent.claims.exp);
  });

  it('rejects delegating from an expired parent', async () => {
    const { tokens, clock } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 60 });
    clock.advance(61_000);
    await rejectsWith(tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'] }), 'ERR_DELEGATION_EXPIRY');
  });

  it(`allows depth ${MAX_DELEGATION_DEPTH} and rejects depth ${MAX_DELEGATION_DEPTH + 1}`, async () => {
    const { tokens } = await fixture();
    let current = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    for (let depth = 1; depth <= MAX_DELEGATION_DEPTH; depth++) {
      current = await tokens.delegate(current.claims, { sub: `d${depth}`, permissions: ['state:read'] });
      assert.equal(current.claims.dlg?.length, depth);
    }
    assert.equal((await tokens.verify(current.token)).dlg?.length, MAX_DELEGATION_DEPTH);
    await rejectsWith(
      tokens.delegate(current.claims, { sub: 'too-deep', permissions: ['state:read'] }),
      'ERR_DELEGATION_DEPTH',
    );
  });

  it('revoking a parent kills its child and grandchild', async () => {
    const { tokens, revocation } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'] });
    const grandchild = await tokens.delegate(child.claims, { sub: 'carol', permissions: ['state:read'] });
    await tokens.verify(child.token);
    await tokens.verify(grandchild.token);
    revocation.revokedJtis.add(parent.claims.jti);
    await rejectsWith(tokens.verify(child.token), 'ERR_TOKEN_REVOKED', child.token);
    await rejectsWith(tokens.verify(grandchild.token), 'ERR_TOKEN_REVOKED', grandchild.token);
  });

  it('revoking a child leaves its parent alive', async () => {
    const { tokens, revocation } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'] });
    revocation.revokedJtis.add(child.claims.jti);
    await rejectsWith(tokens.verify(child.token), 'ERR_TOKEN_REVOKED');
    assert.equal((await tokens.verify(parent.token)).jti, parent.claims.jti);
  });

  it('revoking the grant kills delegated tokens', async () => {
    const { tokens, revocation } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'] });
    revocation.grants.set('g1', 'revoked');
    await rejectsWith(tokens.verify(child.token), 'ERR_GRANT_REVOKED', child.token);
  });

  it('rejects both exp and ttlSeconds', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    await rejectsWith(
      tokens.delegate(parent.claims, { sub: 'bob', permissions: [], exp: parent.claims.exp, ttlSeconds: 60 }),
      'ERR_CLAIMS_INVALID',
    );
  });

  it('delegates with EdDSA', async () => {
    const { tokens } = await fixture();
    const parent = await tokens.mint({ ...BASE, ttlSeconds: 600 });
    const child = await tokens.delegate(parent.claims, { sub: 'bob', permissions: ['state:read'], alg: 'EdDSA' });
    assert.equal(JSON.parse(Buffer.from(child.token.split('.')[0], 'base64url').toString()).alg, 'EdDSA');
    assert.deepEqual(await tokens.verify(child.token), child.claims);
  });
});
