/** FrameGuard (Content-Length framing checked before buffering) and the JSON-RPC 2.0 message check. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameGuard,
  invalidJsonRpcMessage,
  MAX_HEADER_BYTES,
  type FrameProblem,
} from '../../../server/adapters/jsonrpc-frames.js';

const frame = (body: string) => Buffer.from(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);

/** Feed `chunks` through a guard; resolves with what passed (and in how many pieces) and what was refused. */
function run(chunks: Buffer[], maxBodyBytes: number): Promise<{ out: string; pieces: number; dropped: FrameProblem[] }> {
  return new Promise((resolve, reject) => {
    const dropped: FrameProblem[] = [];
    const guard = new FrameGuard({ maxBodyBytes, onDropped: (p) => dropped.push(p) });
    const out: Buffer[] = [];
    guard.on('data', (c: Buffer) => out.push(c));
    guard.on('error', reject);
    guard.on('end', () => resolve({ out: Buffer.concat(out).toString('latin1'), pieces: out.length, dropped }));
    for (const c of chunks) guard.write(c);
    guard.end();
  });
}

/** `bytes` cut into pieces of the sizes in `cuts` (repeated). */
function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = cuts[i % cuts.length];
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Elements of a stream for the property test, with what the guard must make of each. */
type Element =
  | { kind: 'ok'; body: string }
  | { kind: 'big'; body: string }
  | { kind: 'noLength' }
  | { kind: 'garbageLine'; body: string }
  | { kind: 'garbageBefore'; body: string }
  | { kind: 'duplicate'; body: string }
  | { kind: 'conflicting'; body: string };

function bytesOf(e: Element): Buffer {
  switch (e.kind) {
    case 'ok':
    case 'big':
      return frame(e.body);
    case 'noLength':
      return Buffer.from('Content-Type: x\r\n\r\n');
    case 'garbageLine':
      return Buffer.from(`Content-Length: ${e.body.length}\r\ngarbage\r\n\r\n${e.body}`);
    case 'garbageBefore':
      return Buffer.concat([Buffer.from('\x00\xffjunk', 'latin1'), frame(e.body)]);
    case 'duplicate':
      return Buffer.from(`Content-Length: ${e.body.length}\r\ncontent-length: ${e.body.length}\r\n\r\n${e.body}`);
    case 'conflicting':
      return Buffer.from(`Content-Length: 1\r\nContent-Length: 4000000000\r\n\r\n${e.body}`);
  }
}

/**
 * What a guard bounded at 40 bytes must pass and report for `elements`: a refused frame whose
 * end is unknown makes the guard drop input up to the next `Content-Length:`. Every element but `noLength`
 * has one, so resynchronising loses only a following `noLength` (no report), and `garbageBefore`'s frame
 * survives when the guard is already resynchronising at its junk.
 */
function expected(elements: Element[]): { out: string; dropped: string[] } {
  const out: Buffer[] = [];
  const dropped: string[] = [];
  let resyncing = false;
  const refuse = (kind: string) => {
    dropped.push(kind);
    resyncing = true;
  };
  for (const e of elements) {
    switch (e.kind) {
      case 'ok':
        out.push(frame(e.body));
        resyncing = false;
        break;
      case 'big':
        dropped.push('bodyTooLarge');
        resyncing = false;
        break;
      case 'noLength':
        if (!resyncing) refuse('noContentLength');
        break;
      case 'garbageLine':
        refuse('malformedHeader');
        break;
      case 'garbageBefore':
        if (resyncing) {
          out.push(frame(e.body));
          resyncing = false;
        } else refuse('malformedHeader');
        break;
      case 'duplicate':
      case 'conflicting':
        refuse('duplicateContentLength');
        break;
    }
  }
  return { out: Buffer.concat(out).toString('latin1'), dropped };
}

describe('FrameGuard', () => {
  it('passes frames through byte for byte, however the stream is cut', async () => {
    const all = Buffer.concat([frame('{"a":1}'), frame('{"b":2}'), frame('')]);
    for (let size = 1; size <= all.length; size += 3) {
      const { out, dropped } = await run(cut(all, [size]), 100);
      assert.deepEqual(dropped, []);
      assert.equal(out, all.toString('latin1'), `chunk size ${size}`);
    }
  });

  it('passes the accepted frames of one chunk on as one piece, split only where a frame is dropped', async () => {
    const three = Buffer.concat([frame('{"a":1}'), frame('{"b":2}'), frame('{"c":3}')]);
    assert.deepEqual(await run([three], 100), { out: three.toString('latin1'), pieces: 1, dropped: [] });
    const withDrop = Buffer.concat([frame('{"a":1}'), frame('x'.repeat(101)), frame('{"c":3}')]);
    const { out, pieces } = await run([withDrop], 100);
    assert.equal(out, frame('{"a":1}').toString('latin1') + frame('{"c":3}').toString('latin1'));
    assert.equal(pieces, 2);
  });

  it('for any mix of good and bad frames and any cutting of the stream, passes exactly what it must, in order', async () => {
    const body = (min: number, max: number) => fc.string({ minLength: min, maxLength: max });
    const element: fc.Arbitrary<Element> = fc.oneof(
      fc.record({ kind: fc.constant('ok' as const), body: body(0, 40) }),
      fc.record({ kind: fc.constant('big' as const), body: body(41, 80) }),
      fc.record({ kind: fc.constant('noLength' as const) }),
      fc.record({ kind: fc.constant('garbageLine' as const), body: body(0, 40) }),
      fc.record({ kind: fc.constant('garbageBefore' as const), body: body(0, 40) }),
      fc.record({ kind: fc.constant('duplicate' as const), body: body(0, 40) }),
      fc.record({ kind: fc.constant('conflicting' as const), body: body(0, 40) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(element, { maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), async (elements, cuts) => {
        // fast-check strings are printable ASCII by default: 'ok' bodies fit the bound, 'big' ones exceed it.
        const { out, dropped } = await run(cut(Buffer.concat(elements.map(bytesOf)), cuts), 40);
        const want = expected(elements);
        assert.equal(out, want.out);
        assert.deepEqual(dropped.map((p) => p.kind), want.dropped);
      }),
      { numRuns: 500 },
    );
  });

  it('skips an oversized body and a header without Content-Length, reports each, and goes on', async () => {
    const big = 'x'.repeat(101);
    const input = Buffer.concat([frame(big), Buffer.from('Content-Type: x\r\n\r\n'), frame('{"ok":true}')]);
    const { out, dropped } = await run([input.subarray(0, 30), input.subarray(30)], 100);
    assert.equal(out, frame('{"ok":true}').toString('latin1'));
    assert.deepEqual(dropped, [{ kind: 'bodyTooLarge', declared: 101, max: 100 }, { kind: 'noContentLength' }]);
  });

  it('refuses two Content-Length lines, equal or not, and never skips what the second declares', async () => {
    const input = Buffer.concat([
      Buffer.from('Content-Length: 1\r\nContent-Length: 4000000000\r\n\r\n{'),
      Buffer.from('Content-Length: 2\r\nCONTENT-LENGTH:2\r\n\r\n{}'),
      frame('{"after":1}'),
    ]);
    for (const cuts of [[input.length], [1], [7, 3]]) {
      const { out, dropped } = await run(cut(input, cuts), 100);
      assert.equal(out, frame('{"after":1}').toString('latin1'), `cuts ${cuts}`);
      assert.deepEqual(dropped, [{ kind: 'duplicateContentLength' }, { kind: 'duplicateContentLength' }]);
    }
  });

  it('refuses header lines that are not "Name: value" and Content-Length values that are not decimal digits', async () => {
    for (const header of ['Content-Length: 2\r\n: x', 'Content-Length: 2\r\nbad line', 'Bad Name: 1\r\nContent-Length: 2', '\x00Content-Length: 2']) {
      const { out, dropped } = await run([Buffer.from(`${header}\r\n\r\n{}`, 'latin1'), frame('{"n":1}')], 100);
      assert.deepEqual(dropped, [{ kind: 'malformedHeader' }], JSON.stringify(header));
      assert.equal(out, frame('{"n":1}').toString('latin1'));
    }
    for (const value of ['-2', '0x2', '2 2', '2.0', '', '1234567890123456']) {
      const { out, dropped } = await run([Buffer.from(`Content-Length: ${value}\r\n\r\n{}`), frame('{"n":1}')], 100);
      assert.deepEqual(dropped, [{ kind: 'noContentLength' }], JSON.stringify(value));
      assert.equal(out, frame('{"n":1}').toString('latin1'));
    }
    const spaced = Buffer.from('content-length:\t2 \r\nContent-Type: application/json\r\n\r\n{}');
    assert.deepEqual(await run([spaced], 100), { out: spaced.toString('latin1'), pieces: 1, dropped: [] });
  });

  it('keeps a body that ends a chunk before a frame found by resynchronising later in the same chunk', async () => {
    // The first header completes at the start of the second chunk; its body, a refused header and the next
    // frame's header (held by the resync) follow in that chunk: the body must go on before that header.
    const input = Buffer.concat([frame(' '), Buffer.from('Content-Type: x\r\n\r\n'), frame('{}')]);
    for (let split = 1; split < frame(' ').length; split++) {
      const { out, dropped } = await run([input.subarray(0, split), input.subarray(split)], 100);
      assert.equal(out, frame(' ').toString('latin1') + frame('{}').toString('latin1'), `split at ${split}`);
      assert.deepEqual(dropped, [{ kind: 'noContentLength' }]);
    }
  });

  it('resynchronises at a Content-Length split across chunks, in any letter case', async () => {
    const input = Buffer.from('\x00garbage\r\n\r\nbody bytes cOnTeNt-LeNgTh: 2\r\n\r\n{}');
    for (let size = 1; size <= input.length; size++) {
      const { out, dropped } = await run(cut(input, [size]), 100);
      assert.equal(out, 'Content-Length: 2\r\n\r\n{}', `chunk size ${size}`);
      assert.deepEqual(dropped, [{ kind: 'malformedHeader' }]);
    }
  });

  it('refuses a header block over 8 KiB, even with its end in the same chunk, and resynchronises after it', async () => {
    const long = Buffer.from(`X-Pad: ${'p'.repeat(MAX_HEADER_BYTES)}\r\nX-Length: 2\r\n\r\n{}`);
    const exact = Buffer.from(`Content-Length: 2\r\nX-Pad: ${'p'.repeat(MAX_HEADER_BYTES - 26)}\r\n\r\n{}`);
    assert.equal(exact.indexOf('\r\n\r\n'), MAX_HEADER_BYTES);
    assert.deepEqual((await run([exact], 10)).dropped, []);
    const after = frame('{"after":1}');
    for (const chunks of [[long, after], [long.subarray(0, 5000), long.subarray(5000), after]]) {
      const { out, dropped } = await run(chunks, 100);
      assert.deepEqual(dropped, [{ kind: 'headerTooLarge', max: MAX_HEADER_BYTES }]);
      assert.equal(out, after.toString('latin1'));
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
