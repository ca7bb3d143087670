import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, parseDuration, tokenFrom } from '../../../server/cli/args.js';

describe('cli/args', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'toka-args-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the token from --token, then --token-file, then TOKA_TOKEN, trimmed', () => {
    const file = join(dir, 't');
    writeFileSync(file, 'from-file\n');
    assert.equal(tokenFrom({ token: 'flag', 'token-file': file }, { TOKA_TOKEN: 'env' }), 'flag');
    assert.equal(tokenFrom({ 'token-file': file }, { TOKA_TOKEN: 'env' }), 'from-file');
    assert.equal(tokenFrom({}, { TOKA_TOKEN: ' env \n' }), 'env');
  });

  it('refuses a missing or empty token with a usage error naming the source', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    assert.throws(() => tokenFrom({}, {}), (e: Error) => e instanceof UsageError && /no token/.test(e.message));
    assert.throws(() => tokenFrom({ 'token-file': empty }, {}), (e: Error) => e instanceof UsageError && e.message.includes(empty));
    assert.throws(() => tokenFrom({}, { TOKA_TOKEN: '  ' }), (e: Error) => e instanceof UsageError && e.message.includes('TOKA_TOKEN'));
  });

  it('parses durations and refuses other shapes', () => {
    assert.equal(parseDuration('90', 'ttl'), 90);
    assert.equal(parseDuration('15m', 'ttl'), 900);
    assert.equal(parseDuration('1h', 'ttl'), 3600);
    assert.throws(() => parseDuration('1d', 'ttl'), UsageError);
    assert.throws(() => parseDuration('-5m', 'ttl'), UsageError);
  });
});
