import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError, parseDuration, parsePid, tokenFrom } from '../../../server/cli/args.js';
import { COMMANDS, commandHelp } from '../../../server/cli/commands.js';
import { parseOrigin, readServeConfig } from '../../../server/cli/serve.js';

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

  it('takes the token from TOKA_TOKEN_FILE last, and refuses stdin where it is the wire', () => {
    const file = join(dir, 't');
    writeFileSync(file, ' from-env-file\n');
    assert.equal(tokenFrom({}, { TOKA_TOKEN_FILE: file }), 'from-env-file');
    assert.equal(tokenFrom({}, { TOKA_TOKEN: 'env', TOKA_TOKEN_FILE: file }), 'env');
    assert.equal(tokenFrom({ 'token-file': file }, { TOKA_TOKEN: 'env' }, { stdin: false }), 'from-env-file');
    assert.throws(() => tokenFrom({ 'token-file': '-' }, {}, { stdin: false }), (e: Error) => e instanceof UsageError && /stdin is the wire/.test(e.message));
    assert.throws(() => tokenFrom({}, { TOKA_TOKEN_FILE: join(dir, 'missing') }), (e: Error) => e instanceof UsageError && /TOKA_TOKEN_FILE .*ENOENT/.test(e.message));
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

  it('parses a process id and refuses anything else', () => {
    assert.equal(parsePid('4242', '--clientProcessId'), 4242);
    for (const bad of ['0', '-1', '12a', '', '99999999999', '1e3']) assert.throws(() => parsePid(bad, '--clientProcessId'), UsageError, bad);
  });

  it('toka help <command> lists every flag of every command, with its meaning', () => {
    for (const [name, command] of Object.entries(COMMANDS)) {
      const help = commandHelp(name);
      for (const [flag, spec] of Object.entries(command.options)) {
        assert.ok(help.includes(`--${flag}`), `${name}: --${flag}`);
        assert.ok(help.includes(spec.help), `${name}: help of --${flag}`);
        if (spec.default !== undefined) assert.ok(help.includes(`(default: ${spec.default})`), `${name}: default of --${flag}`);
      }
    }
    assert.throws(() => commandHelp('toString'), UsageError);
  });

  it('reads allowedOrigins from --config, else <data>/config.json, and refuses what is not a config', () => {
    assert.deepEqual(readServeConfig(dir, undefined), {});
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ allowedOrigins: ['https://App.example/', 'http://localhost:3000'] }));
    assert.deepEqual(readServeConfig(dir, undefined), { allowedOrigins: ['https://app.example', 'http://localhost:3000'] });
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ allowedOrigins: [] }));
    assert.deepEqual(readServeConfig(dir, other), { allowedOrigins: [] });
    assert.throws(() => readServeConfig(dir, join(dir, 'missing.json')), UsageError);
    for (const bad of ['[]', '{"allowedOrigin": []}', '{"allowedOrigins": "https://a.example"}', '{"allowedOrigins": ["https://a.example/path"]}', '{', '{"__proto__": {}}']) {
      writeFileSync(other, bad);
      assert.throws(() => readServeConfig(dir, other), UsageError, bad);
    }
    for (const bad of ['app.example', 'ftp://a.example', 'https://a.example/x', 'https://a.example?q', '*']) assert.throws(() => parseOrigin(bad, 'o'), UsageError, bad);
  });
});
