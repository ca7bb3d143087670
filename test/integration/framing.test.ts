/**
 * Content-Length framing on the two faces that share the FrameGuard, each a real `toka serve` child process:
 * the stdio face (`toka serve --stdio`) and the admin socket (`<data>/admin.sock` of `toka serve`). A
 * malformed header block (a garbage line, garbage before the header, duplicate or conflicting Content-Length)
 * is answered with a ParseError, the stream resynchronises at the next header, every later frame is answered,
 * and no header makes the host buffer past the 2 MiB bound.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '../../protocol/errors.js';
import { MAX_MESSAGE_BYTES } from '../../protocol/rpc/index.js';
import { TOKA_BIN } from '../helpers/cli.js';
import { encodeFrame, parseFrames, spawnJsonRpcProcess, type JsonRpcProcess } from '../helpers/jsonrpc-process.js';
import { waitFor } from '../helpers/wait.js';
import { spawnServe, type ServeProcess } from '../helpers/ws-client.js';

type Message = Record<string, unknown>;

/** One face under test: raw bytes in, every answer so far out. */
interface Face {
  write(bytes: Buffer | string): Promise<void>;
  answers(): Message[];
  /** Resident memory of the serving process, bytes (Linux /proc). */
  rss(): number;
  /** A request that the face answers with a result once its session is open. */
  request(id: string): Buffer;
}

const parseErrors = (face: Face) => face.answers().filter((m) => m.id === null && (m.error as { code?: number })?.code === ErrorCodes.ParseError);

async function answered(face: Face, ids: string[], timeoutMs = 10_000): Promise<void> {
  await waitFor(() => ids.every((id) => face.answers().some((m) => m.id === id && 'result' in m)), timeoutMs, `answers to ${ids.join(', ')}`);
}

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** The cases, run against each face. */
function framingCases(open: () => Promise<Face>) {
  it('answers a header block with a garbage line as ParseError, and every later frame', async () => {
    const face = await open();
    const lost = face.request('lost');
    const body = lost.subarray(lost.indexOf('\r\n\r\n') + 4);
    await face.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\ngarbage\r\n\r\n`), body]));
    await face.write(Buffer.concat([face.request('a1'), face.request('a2'), face.request('a3')]));
    await answered(face, ['a1', 'a2', 'a3']);
    assert.equal(parseErrors(face).length, 1);
    assert.ok(!face.answers().some((m) => m.id === 'lost'), 'the frame under the bad header is not run');
  });

  it('resynchronises after garbage bytes before a header', async () => {
    const face = await open();
    await face.write(Buffer.concat([Buffer.from('\x00\xffnot a header'), face.request('b1'), face.request('b2'), face.request('b3')]));
    await answered(face, ['b2', 'b3']);
    assert.ok(parseErrors(face).length >= 1);
    // Garbage split from the next header by CRLF: a garbage line of the next header block.
    await face.write(Buffer.concat([Buffer.from('junk\r\n'), face.request('c1'), face.request('c2')]));
    await answered(face, ['c2']);
  });

  it('refuses duplicate or conflicting Content-Length headers without buffering what they declare', async () => {
    const face = await open();
    const before = face.rss();
    const filler = Buffer.alloc(MAX_MESSAGE_BYTES - 1024, 0x20);
    const frames = 32;
    for (let i = 0; i < frames; i++) {
      await face.write(Buffer.concat([Buffer.from('Content-Length: 1\r\nContent-Length: 4000000000\r\n\r\n'), filler]));
    }
    await face.write(Buffer.concat([Buffer.from('Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}'), face.request('d1'), face.request('d2')]));
    await answered(face, ['d1', 'd2'], 20_000);
    assert.equal(parseErrors(face).length, frames + 1);
    const grown = face.rss() - before;
    // Holding what the headers declare would keep every byte sent (and more); garbage the reader has not yet
    // collected may still count, so the bound is three quarters of what was sent, not half.
    assert.ok(grown < (frames * filler.length * 3) / 4, `resident memory grew by ${grown} bytes over ${frames * filler.length} bytes sent`);
  });
}

describe('framing on the stdio face and the admin socket', function () {
  this.timeout(60_000);
  before(() => assert.ok(existsSync(TOKA_BIN), 'dist/toka.js missing: run node esbuild.mjs'));

  describe('toka serve --stdio', () => {
    let dir: string;
    let proc: JsonRpcProcess | null = null;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'toka-framing-'));
    });
    afterEach(async () => {
      await proc?.close();
      proc = null;
      rmSync(dir, { recursive: true, force: true });
    });

    framingCases(async () => {
      proc = spawnJsonRpcProcess(process.execPath, [TOKA_BIN, 'serve', '--stdio', '--data', dir]);
      await proc.connection.sendRequest('initialize', { processId: null, rootUri: null, capabilities: {} });
      const p = proc;
      return {
        write: (bytes) => p.writeRaw(bytes),
        answers: () => p.frames().map((f) => f.message as Message),
        rss: () => rssOf(p.child.pid!),
        request: (id) => encodeFrame({ jsonrpc: '2.0', id, method: 'toka/host/info', params: {} }),
      };
    });
  });

  describe('the admin socket of toka serve', () => {
    let served: ServeProcess;
    let socket: Socket | null = null;
    before(async () => {
      served = await spawnServe();
    });
    after(async () => {
      await served?.stop();
    });
    afterEach(() => {
      socket?.destroy();
      socket = null;
    });

    framingCases(async () => {
      const s = connect(join(served.dataDir, 'admin.sock'));
      socket = s;
      s.on('error', () => undefined);
      await new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject));
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      const face: Face = {
        write: (bytes) => new Promise((resolve, reject) => s.write(bytes, (err) => (err ? reject(err) : resolve()))),
        answers: () => parseFrames(Buffer.concat(chunks)).frames.map((f) => f.message as Message),
        rss: () => rssOf(served.child.pid!),
        request: (id) => encodeFrame({ jsonrpc: '2.0', id, method: 'toka/host/info', params: {} }),
      };
      await face.write(encodeFrame({ jsonrpc: '2.0', id: 'open', method: 'toka/admin/open', params: { vault: 'default' } }));
      await answered(face, ['open']);
      return face;
    });
  });
});
