import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsList, fsRead, fsSearch, fsWrite } from '../../../server/runtime/tools/files.js';
import { ctx, rejectsWith, sandbox } from './tools-helpers.js';

describe('runtime/tools: files', () => {
  let box: ReturnType<typeof sandbox>;
  beforeEach(() => {
    box = sandbox();
    writeFileSync(join(box.outside, 'secret.txt'), 'TOP SECRET\n');
  });
  afterEach(() => box.cleanup());

  it('writes, reads, lists and searches inside the workspace', async () => {
    const c = ctx(box.ws);
    const w = await fsWrite.call({ path: 'src/a.txt', content: 'hello\nneedle here\n' }, c);
    assert.equal(w.isError, false);
    assert.equal(readFileSync(join(box.ws, 'src/a.txt'), 'utf8'), 'hello\nneedle here\n');
    await fsWrite.call({ path: 'src/a.txt', content: 'more needle\n', mode: 'append' }, c);
    assert.equal((await fsRead.call({ path: 'src/a.txt' }, c)).content, 'hello\nneedle here\nmore needle\n');
    assert.equal((await fsRead.call({ path: './src/a.txt', offset: 6, length: 6 }, c)).content, 'needle');
    const list = await fsList.call({ recursive: true }, c);
    assert.deepEqual(list.content.split('\n').sort(), ['src/', 'src/a.txt']);
    const found = await fsSearch.call({ query: 'NEEDLE', ignoreCase: true }, c);
    assert.deepEqual(found.content.split('\n'), ['src/a.txt:2: needle here', 'src/a.txt:3: more needle']);
    await rejectsWith(fsWrite.call({ path: 'src/a.txt', content: 'x', mode: 'create' }, c), 'Failed');
    await rejectsWith(fsRead.call({ path: 'missing.txt' }, c), 'NotFound');
  });

  for (const path of ['../outside/secret.txt', 'a/../../outside/secret.txt', '..', 'sub/..']) {
    it(`refuses the ".." path ${path}`, async () => {
      const e = await rejectsWith(fsRead.call({ path }, ctx(box.ws)), 'PathEscape');
      assert.match(e.message, /"\.\." segments/);
    });
  }

  it('refuses absolute paths, even to a file inside the workspace', async () => {
    writeFileSync(join(box.ws, 'in.txt'), 'x');
    await rejectsWith(fsRead.call({ path: join(box.outside, 'secret.txt') }, ctx(box.ws)), 'PathEscape');
    await rejectsWith(fsRead.call({ path: join(box.ws, 'in.txt') }, ctx(box.ws)), 'PathEscape');
    await rejectsWith(fsWrite.call({ path: join(box.outside, 'new.txt'), content: 'x' }, ctx(box.ws)), 'PathEscape');
    assert.equal(existsSync(join(box.outside, 'new.txt')), false);
  });

  it('refuses a symlinked directory that leads outside, for read, write, list and search', async () => {
    symlinkSync(box.outside, join(box.ws, 'out'));
    const c = ctx(box.ws);
    await rejectsWith(fsRead.call({ path: 'out/secret.txt' }, c), 'PathEscape');
    await rejectsWith(fsWrite.call({ path: 'out/planted.txt', content: 'x' }, c), 'PathEscape');
    await rejectsWith(fsWrite.call({ path: 'out/deeper/planted.txt', content: 'x' }, c), 'PathEscape');
    await rejectsWith(fsList.call({ path: 'out' }, c), 'PathEscape');
    await rejectsWith(fsSearch.call({ query: 'SECRET', path: 'out' }, c), 'PathEscape');
    assert.equal(existsSync(join(box.outside, 'planted.txt')), false);
    assert.equal(existsSync(join(box.outside, 'deeper')), false);
    // Walking the root shows the link but never goes through it.
    assert.equal((await fsList.call({ recursive: true }, c)).content, 'out@');
    assert.equal((await fsSearch.call({ query: 'SECRET' }, c)).content, 'no matches');
  });

  it('refuses a symlinked file that points outside, and a dangling symlink to a new outside file', async () => {
    symlinkSync(join(box.outside, 'secret.txt'), join(box.ws, 'link.txt'));
    symlinkSync(join(box.outside, 'created.txt'), join(box.ws, 'dangling.txt'));
    const c = ctx(box.ws);
    await rejectsWith(fsRead.call({ path: 'link.txt' }, c), 'PathEscape');
    await rejectsWith(fsWrite.call({ path: 'link.txt', content: 'overwritten' }, c), 'PathEscape');
    await rejectsWith(fsWrite.call({ path: 'dangling.txt', content: 'x' }, c), 'PathEscape');
    assert.equal(readFileSync(join(box.outside, 'secret.txt'), 'utf8'), 'TOP SECRET\n');
    assert.equal(existsSync(join(box.outside, 'created.txt')), false);
  });

  it('follows a symlink that stays inside the workspace', async () => {
    writeFileSync(join(box.ws, 'real.txt'), 'inside');
    symlinkSync('real.txt', join(box.ws, 'alias.txt'));
    assert.equal((await fsRead.call({ path: 'alias.txt' }, ctx(box.ws))).content, 'inside');
  });

  it('refuses a file with another hard link, for read and write, and never truncates it', async () => {
    linkSync(join(box.outside, 'secret.txt'), join(box.ws, 'hard.txt'));
    const c = ctx(box.ws);
    const e = await rejectsWith(fsRead.call({ path: 'hard.txt' }, c), 'PathEscape');
    assert.match(e.message, /2 hard links/);
    await rejectsWith(fsWrite.call({ path: 'hard.txt', content: 'pwned' }, c), 'PathEscape');
    await rejectsWith(fsWrite.call({ path: 'hard.txt', content: 'pwned', mode: 'append' }, c), 'PathEscape');
    assert.equal(readFileSync(join(box.outside, 'secret.txt'), 'utf8'), 'TOP SECRET\n');
    const found = await fsSearch.call({ query: 'SECRET' }, c);
    assert.equal(found.content.includes('TOP'), false);
    assert.equal((found.data as { skippedFiles: number }).skippedFiles, 1);
  });

  it('caps reads: a large file must be read in parts', async () => {
    writeFileSync(join(box.ws, 'big.txt'), 'x'.repeat(100));
    const c = ctx(box.ws, { fileReadBytes: 64 });
    const e = await rejectsWith(fsRead.call({ path: 'big.txt' }, c), 'LimitExceeded');
    assert.deepEqual(e.data, { limit: 'fileReadBytes', max: 64 });
    await rejectsWith(fsRead.call({ path: 'big.txt', length: 65 }, c), 'LimitExceeded');
    const part = await fsRead.call({ path: 'big.txt', offset: 60, length: 64 }, c);
    assert.equal(part.content, 'x'.repeat(40));
  });

  it('caps writes, appends included, and leaves nothing behind on refusal', async () => {
    const c = ctx(box.ws, { fileWriteBytes: 10 });
    const e = await rejectsWith(fsWrite.call({ path: 'w.txt', content: 'é'.repeat(6) }, c), 'LimitExceeded');
    assert.equal(e.data?.limit, 'fileWriteBytes');
    assert.equal(existsSync(join(box.ws, 'w.txt')), false);
    await fsWrite.call({ path: 'w.txt', content: '12345678' }, c);
    await rejectsWith(fsWrite.call({ path: 'w.txt', content: '123', mode: 'append' }, c), 'LimitExceeded');
    assert.equal(readFileSync(join(box.ws, 'w.txt'), 'utf8'), '12345678');
  });

  it('caps list and search results with a marker naming the limit', async () => {
    mkdirSync(join(box.ws, 'd'));
    for (let i = 0; i < 20; i++) writeFileSync(join(box.ws, 'd', `f${i}.txt`), 'match\nmatch\n');
    const c = ctx(box.ws, { listEntries: 5, searchMatches: 7 });
    const list = await fsList.call({ path: 'd' }, c);
    assert.equal(list.content.split('\n').length, 6);
    assert.match(list.content, /\[list truncated at 5 entries \(limit listEntries\)\]$/);
    const found = await fsSearch.call({ query: 'match', path: 'd' }, c);
    assert.equal(found.content.split('\n').filter((l) => l.includes(':')).length, 7);
    assert.match(found.content, /limit searchMatches/);
    const scan = await fsSearch.call({ query: 'match', path: 'd' }, ctx(box.ws, { searchBytes: 30 }));
    assert.match(scan.content, /limit searchBytes = 30/);
  });

  it('skips binary files in search', async () => {
    writeFileSync(join(box.ws, 'bin.dat'), Buffer.from([0x6d, 0x61, 0x74, 0x63, 0x68, 0, 1]));
    writeFileSync(join(box.ws, 'text.txt'), 'match');
    const found = await fsSearch.call({ query: 'match' }, ctx(box.ws));
    assert.equal(found.content.split('\n')[0], 'text.txt:1: match');
    assert.equal((found.data as { skippedFiles: number }).skippedFiles, 1);
  });
});
