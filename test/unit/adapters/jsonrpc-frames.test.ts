/** FrameGuard (Content-Length framing checked before buffering) and the JSON-RPC 2.0 message check. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameError,
  FrameGuard,
  invalidJsonRpcMessage,
  MAX_HEADER_BYTES,
  type FrameGuardOptions,
  type FrameProblem,
} from '../../../server/adapters/jsonrpc-frames.js';

const frame = (body: string) => Buffer.from(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);

/** Feed `chunks` through a guard; resolves with what passed and the error the stream failed with, if any. */
function run(chunks: Buffer[], options: FrameGuardOptions): Promise<{ out: string; pieces: number; error?: FrameError }> {
  return new Promise((resolve) => {
    const guard = new FrameGuard(options);
    const out: Buffer[] = [];
    guard.on('data', (c: Buffer) => out.push(c));
    guard.on('error', (error: FrameError) => resolve({ out: Buffer.concat(out).toString('latin1'), pieces: out.length, error }));
    guard.on('end', () => resolve({ out: Buffer.concat(out).toString('latin1'), pieces: out.length }));
    for (const c of chunks) guard.write(c);
    guard.end();
  });
}

describe('FrameGuard', () => {
  it('passes frames through byte for byte, however the stream is cut', async () => {
    const all = Buffer.concat([frame('{"a":1}'), frame('{"b":2}'), frame('')]);
    for (let size = 1; size <= all.length; size += 3) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < all.length; i += size) chunks.push(all.subarray(i, i + size));
      const { out, error } = await run(chunks, { maxBodyBytes: 100 });
      assert.equal(error, undefined);
      assert.equal(out, all.toString('latin1'), `chunk size ${size}`);
    }
  });

  it('passes the accepted frames of one chunk on as one piece, split only where a frame is dropped', async () => {
    const three = Buffer.concat([frame('{"a":1}'), frame('{"b":2}'), frame('{"c":3}')]);
    assert.deepEqual(await run([three], { maxBodyBytes: 100 }), { out: three.toString('latin1'), pieces: 1 });
    const withDrop = Buffer.concat([frame('{"a":1}'), frame('x'.repeat(101)), frame('{"c":3}')]);
    const { out, pieces } = await run([withDrop], { maxBodyBytes: 100, onDropped: () => undefined });
    assert.equal(out, frame('{"a":1}').toString('latin1') + frame('{"c":3}').toString('latin1'));
    assert.equal(pieces, 2);
  });

  it('for any mix of frames and any cutting of the stream, passes exactly the accepted frames, in order', async () => {
    const kinds = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('ok' as const), body: fc.string({ maxLength: 40 }) }),
        fc.record({ kind: fc.constant('big' as const), body: fc.string({ minLength: 41, maxLength: 80 }) }),
        fc.record({ kind: fc.constant('noLength' as const), body: fc.constant('') }),
      ),
      { maxLength: 8 },
    );
    await fc.assert(
      fc.asyncProperty(kinds, fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), async (frames, cuts) => {
        const bytes = (f: { kind: string; body: string }) =>
          f.kind === 'noLength' ? Buffer.from('Content-Type: x\r\n\r\n') : frame(f.body);
        const all = Buffer.concat(frames.map(bytes));
        const chunks: Buffer[] = [];
        for (let at = 0, i = 0; at < all.length; i++) {
          const size = cuts[i % cuts.length];
          chunks.push(all.subarray(at, at + size));
          at += size;
        }
        const dropped: string[] = [];
        const { out, error } = await run(chunks, { maxBodyBytes: 40, onDropped: (p) => dropped.push(p.kind) });
        // fast-check strings are ASCII by default: 'ok' bodies fit the bound, 'big' ones exceed it.
        const accepted = frames.filter((f) => f.kind === 'ok');
        assert.equal(error, undefined);
        assert.equal(out, Buffer.concat(accepted.map(bytes)).toString('latin1'));
        assert.deepEqual(dropped, frames.filter((f) => f.kind !== 'ok').map((f) => (f.kind === 'big' ? 'bodyTooLarge' : 'noContentLength')));
      }),
      { numRuns: 300 },
    );
  });

  it('fails the stream on an oversized body without onDropped', async () => {
    const { out, error } = await run([frame('{"a":1}'), Buffer.from('Content-Length: 101\r\n\r\n')], { maxBodyBytes: 100 });
    assert.equal(out, frame('{"a":1}').toString('latin1'));
    assert.deepEqual(error?.problem, { kind: 'bodyTooLarge', declared: 101, max: 100 });
  });

  it('with onDropped, skips an oversized body and a header without Content-Length, and goes on', async () => {
    const dropped: FrameProblem[] = [];
    const big = 'x'.repeat(101);
    const input = Buffer.concat([frame(big), Buffer.from('Content-Type: x\r\n\r\n'), frame('{"ok":true}')]);
    const { out, error } = await run([input.subarray(0, 30), input.subarray(30)], { maxBodyBytes: 100, onDropped: (p) => dropped.push(p) });
    assert.equal(error, undefined);
    assert.equal(out, frame('{"ok":true}').toString('latin1'));
    assert.deepEqual(dropped, [{ kind: 'bodyTooLarge', declared: 101, max: 100 }, { kind: 'noContentLength' }]);
  });

  it('refuses a header block over 8 KiB, even with its end in the same chunk, and even with onDropped', async () => {
    const long = Buffer.from(`X-Pad: ${'p'.repeat(MAX_HEADER_BYTES)}\r\nContent-Length: 2\r\n\r\n{}`);
    const exact = Buffer.from(`Content-Length: 2\r\nX-Pad: ${'p'.repeat(MAX_HEADER_BYTES - 26)}\r\n\r\n{}`);
    assert.equal(exact.indexOf('\r\n\r\n'), MAX_HEADER_BYTES);
    assert.equal((await run([exact], { maxBodyBytes: 10 })).error, undefined);
    for (const options of [{ maxBodyBytes: 10 }, { maxBodyBytes: 10, onDropped: () => undefined }]) {
      assert.deepEqual((await run([long], options)).error?.problem, { kind: 'headerTooLarge', max: MAX_HEADER_BYTES });
      const split = [long.subarray(0, 5000), long.subarray(5000)];
      assert.deepEqual((await run(split, options)).error?.problem, { kind: 'headerTooLarge', max: MAX_HEADER_BYTES });
    }
  });
});

describe('invalidJsonRpcMessage', () => {
  it('accepts requests, notifications and responses', () => {
    for (const m of [
      { jsonrpc: '2.0', id: 1, method: 'm' },
      { jsonrpc: '2.0', id: 'a', method: 'm', params: [] },
      { jsonrpc: '2.0', method: 'n', params: {} },
      { jsonrpc: '2.0', id: 1, result: null },
      { jsonrpc: '2.0', id: 'a', error: { code: -32000, message: 'x', data: 1 } },
    ]) {
      assert.equal(invalidJsonRpcMessage(m), null, JSON.stringify(m));
    }
  });

  it('refuses what JSON-RPC 2.0 does not allow, with the id when it is usable', () => {
    const cases: [unknown, string | number | null][] = [
      [[{ jsonrpc: '2.0', id: 1, method: 'm' }], null],
      ['text', null],
      [{ id: 1, method: 'm' }, 1],
      [{ jsonrpc: '2.0', id: 2, method: 3 }, 2],
      [{ jsonrpc: '2.0', id: null, method: 'm' }, null],
      [{ jsonrpc: '2.0', id: 3, method: 'm', params: 'p' }, 3],
      [{ jsonrpc: '2.0', id: 4, method: 'm', params: null }, 4],
      [{ jsonrpc: '2.0', id: null, result: 1 }, null],
      [{ jsonrpc: '2.0', result: 1 }, null],
      [{ jsonrpc: '2.0', id: 5, result: 1, error: { code: 1, message: 'x' } }, 5],
      [{ jsonrpc: '2.0', id: 6, error: 'bad' }, 6],
      [{ jsonrpc: '2.0', id: 7, error: { code: 1.5, message: 'x' } }, 7],
      [{ jsonrpc: '2.0', id: 8 }, 8],
    ];
    for (const [m, id] of cases) {
      const problem = invalidJsonRpcMessage(m);
      assert.ok(problem !== null, JSON.stringify(m));
      assert.equal(problem.id, id, JSON.stringify(m));
    }
  });
});
