/** `writeStream`: a streamed response never buffers more than its bound for a reader that does not read. */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_PENDING_STREAM_BYTES, writeStream } from '../../../server/adapters/http-request.js';

describe('writeStream', () => {
  it('cuts off a reader that lets more than the bound pile up, instead of buffering without end', async () => {
    let served: ServerResponse | undefined;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      served = res;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // A client that reads the headers, then nothing more.
    const response = await new Promise<IncomingMessage>((resolve, reject) => request({ port, host: '127.0.0.1', path: '/' }, resolve).on('error', reject).end());
    response.pause();
    response.on('error', () => undefined);
    try {
      const chunk = `data: ${'x'.repeat(64 * 1024)}\n\n`;
      let written = 0;
      // Far more than the bound: a buffering writer would hold all of it.
      while (!served!.destroyed && written < 4 * MAX_PENDING_STREAM_BYTES) {
        writeStream(served!, chunk);
        written += chunk.length;
      }
      assert.equal(served!.destroyed, true, 'the slow reader is cut off');
      assert.ok(written <= MAX_PENDING_STREAM_BYTES + 8 * 1024 * 1024, `${written} bytes were accepted before the cut`);
      writeStream(served!, chunk); // a write after the cut is dropped, not thrown
    } finally {
      response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
