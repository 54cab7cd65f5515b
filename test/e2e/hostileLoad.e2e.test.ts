import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { exchange, postGraphQL } from '../support/rawHttp.js';
import { startServerProcess, type ServerProcess } from '../support/serverProcess.js';

const GiB = 1024 ** 3;
const started: ServerProcess[] = [];

async function server(env: Record<string, string> = {}): Promise<ServerProcess> {
  const s = await startServerProcess({ env });
  started.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.kill()));
});

/** Probes `s` with a normal query every 100 ms until `until` settles; returns the slowest. */
async function probeWhile(s: ServerProcess, until: Promise<unknown>) {
  let done = false;
  void until.finally(() => (done = true));
  let slowest = 0;
  let peakRss = s.rss();
  let probes = 0;
  while (!done) {
    const startedAt = performance.now();
    const answer = await postGraphQL(s.url, '{ me { id } boards { id } }');
    expect(answer.status).toBe(200);
    slowest = Math.max(slowest, performance.now() - startedAt);
    peakRss = Math.max(peakRss, s.rss());
    probes += 1;
    await sleep(100);
  }
  await until;
  return { slowest, peakRss: Math.max(peakRss, s.rss()), probes };
}

describe('a server process under hostile load', () => {
  it('still answers a query within 2 s and stays under 1 GiB RSS during 1,000 concurrent GraphiQL loads', async () => {
    const s = await server();
    const html = { accept: 'text/html', 'accept-encoding': 'br, gzip' };
    const page = await exchange(`${s.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.bytes).toBeLessThan(32 * 1024);
    expect(page.headers['cache-control']).toBe('no-cache');
    const assets = [...page.body.toString().matchAll(/(?:src|href)="(\/graphiql\/[^"]+)"/g)].map(
      (m) => m[1]!,
    );
    expect(assets.length).toBeGreaterThanOrEqual(2);
    // GraphiQL's bundle, the big one (the page also links a boot script and graphql-ws).
    const script = assets.find((a) => /\/graphiql\.[0-9a-f]+\.js$/.test(a))!;
    const first = await exchange(`${s.url}${script}`, { headers: html });
    expect(first.headers['content-encoding']).toBe('br');
    expect(first.headers['cache-control']).toContain('immutable');
    const etag = String(first.headers.etag);
    // A cached browser revalidates nothing (immutable), but one that asks gets a 304.
    const revalidated = await exchange(`${s.url}${script}`, {
      headers: { ...html, 'if-none-match': etag },
    });
    expect(revalidated.status).toBe(304);
    expect(revalidated.bytes).toBe(0);

    // Opened 100 at a time (one event loop turn each) so this process's own probe is
    // not queued behind a thousand sockets it is still creating; all are then in flight.
    const flood = (async () => {
      const loads: Promise<Awaited<ReturnType<typeof exchange>>>[] = [];
      for (let i = 0; i < 1_000; i += 1) {
        loads.push(
          i % 50 === 0
            ? exchange(`${s.url}${script}`, { headers: html })
            : exchange(`${s.url}/graphql`, { headers: { accept: 'text/html' } }),
        );
        if (i % 100 === 99) await sleep(0);
      }
      return Promise.all(loads);
    })();
    const { slowest, peakRss } = await probeWhile(s, flood);
    const answers = await flood;
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(slowest).toBeLessThan(2_000);
    expect(peakRss).toBeLessThan(GiB);
  }, 60_000);

  it('refuses a 20 MB body of nested arrays at once and a deeply nested small one before parsing it', async () => {
    const s = await server();
    const nested = (depth: number) =>
      `{"query":"{ __typename }","variables":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    // The server answers 413 as soon as the body passes the limit and closes the connection.
    // A client still uploading may read that answer or may see its write reset first (Node's
    // client does not always read a response before its upload ends): what it can rely on is
    // one of the two, quickly, and never a body parsed.
    const huge = postGraphQLRaw(s, nested(10 * 1024 * 1024)).then(
      (answer) => ({ answer, error: undefined }),
      (error: NodeJS.ErrnoException) => ({ answer: undefined, error }),
    );
    const { slowest, peakRss } = await probeWhile(s, huge);
    const outcome = await huge;
    if (outcome.answer) {
      expect(outcome.answer.status).toBe(413);
      expect(JSON.parse(outcome.answer.body.toString()).errors[0].extensions.code).toBe(
        'PAYLOAD_TOO_LARGE',
      );
    } else {
      expect(['ECONNRESET', 'EPIPE']).toContain(outcome.error?.code);
    }
    const deep = await postGraphQLRaw(s, nested(100_000));
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.body.toString()).errors[0].message).toContain('MAX_JSON_DEPTH');
    expect(slowest).toBeLessThan(2_000);
    expect(peakRss).toBeLessThan(GiB);
  });

  it('never echoes a request body or an unbounded input value in an error', async () => {
    const s = await server();
    const garbage = await postGraphQLRaw(s, `{"query": ${'x'.repeat(500_000)}`);
    expect(garbage.status).toBe(400);
    expect(garbage.bytes).toBeLessThan(1_000);
    expect(garbage.body.toString()).not.toContain('xxxxxxxxxx');
    // Nothing of the parser's error either, for an empty body as for any other.
    for (const body of ['', '{']) {
      const refused = await postGraphQLRaw(s, body);
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.body.toString())).toEqual({
        errors: [{ message: 'POST body sent invalid JSON.', extensions: { code: 'BAD_REQUEST' } }],
      });
    }

    const longId = await postGraphQL(s.url, `{ node(id: "${'y'.repeat(100_000)}") { id } }`);
    const error = JSON.parse(longId.body.toString()).errors[0];
    expect(longId.bytes).toBeLessThan(2_000);
    expect(error.message).toBe('Invalid global ID.');
    expect(error.extensions.code).toBe('BAD_USER_INPUT');

    const longVariable = await postGraphQL(s.url, 'query ($id: ID!) { node(id: $id) { id } }', {
      id: { nested: 'z'.repeat(100_000) },
    });
    expect(longVariable.bytes).toBeLessThan(2_000);
  });

  it('closes sockets that send their headers or body too slowly', async () => {
    const s = await server({ HEADERS_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '2000' });
    const { port } = new URL(s.url);
    const open = (): Socket => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      return socket;
    };
    const slowHeaders = Array.from({ length: 20 }, open);
    const slowBodies = Array.from({ length: 20 }, () => {
      const socket = open();
      socket.write(
        'POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{',
      );
      return socket;
    });
    const closed = (socket: Socket) =>
      new Promise<void>((done) => {
        if (socket.destroyed || socket.readableEnded) done();
        socket.once('close', () => done());
      });
    const drip = setInterval(() => {
      for (const socket of slowHeaders) if (socket.writable) socket.write('x');
      for (const socket of slowBodies) if (socket.writable) socket.write(' ');
    }, 200);
    try {
      const startedAt = Date.now();
      await Promise.all([...slowHeaders, ...slowBodies].map(closed));
      // Far below node's defaults (60 s for headers, 300 s for a request).
      expect(Date.now() - startedAt).toBeLessThan(20_000);
    } finally {
      clearInterval(drip);
      for (const socket of [...slowHeaders, ...slowBodies]) socket.destroy();
    }
    expect((await postGraphQL(s.url, '{ boards { id } }')).status).toBe(200);
  });
});

/** POSTs a raw body to /graphql as JSON. */
function postGraphQLRaw(s: ServerProcess, body: string) {
  return exchange(`${s.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
}
