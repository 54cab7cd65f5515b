import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { exchange, postGraphQL } from '../support/rawHttp.js';
import { freePort, startServerProcess, type ServerProcess } from '../support/serverProcess.js';
import { NO_CLIENT_LIMITS } from '../support/server.js';

const started: ServerProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.kill()));
});

async function json(answer: Promise<{ body: Buffer }>) {
  return JSON.parse((await answer).body.toString());
}

/** A user with a board and a column: what an addCard needs. */
async function column(s: ServerProcess) {
  const registered = await json(
    postGraphQL(
      s.url,
      `mutation { registerUser(input: { username: "drain", displayName: "Drain" }) { ... on RegisterUserSuccess { token } } }`,
    ),
  );
  const token = registered.data.registerUser.token as string;
  const board = await json(
    postGraphQL(
      s.url,
      `mutation { createBoard(input: { name: "b" }) { ... on CreateBoardSuccess { board { id } } } }`,
      {},
      token,
    ),
  );
  const boardId = board.data.createBoard.board.id as string;
  const added = await json(
    postGraphQL(
      s.url,
      `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "c", expectedVersion: 1 }) { ... on AddColumnSuccess { column { id } } } }`,
      { b: boardId },
      token,
    ),
  );
  return { token, boardId, columnId: added.data.addColumn.column.id as string };
}

/** Resolves once `socket` is closed by the other side. */
const closed = (socket: Socket) =>
  new Promise<void>((done) => {
    if (socket.destroyed) done();
    socket.once('close', () => done());
  });

describe('stopping a server process', () => {
  it('answers every request already received on SIGTERM, closes websockets with 1001, completes SSE streams and exits 0', async () => {
    // 100 writes on one column at once: no per-client limit may refuse any of them.
    const s = await startServerProcess({ env: { ...NO_CLIENT_LIMITS } });
    started.push(s);
    const { token, boardId } = await column(s);
    const { port } = new URL(s.url);

    // 100 mutations (registrations: no two contend for a stream) whose headers and half
    // their body have arrived: received, not yet answerable. The rest of each body is
    // sent only after SIGTERM.
    const answers: Promise<string>[] = [];
    const halves: { socket: Socket; rest: string }[] = [];
    for (let i = 0; i < 100; i += 1) {
      const body = JSON.stringify({
        query: `mutation ($u: String!) { registerUser(input: { username: $u, displayName: $u }) { __typename } }`,
        variables: { u: `user${i}` },
      });
      const head = `POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('error', () => undefined);
      answers.push(closed(socket).then(() => received));
      const cut = Math.floor(body.length / 2);
      socket.write(head + body.slice(0, cut));
      halves.push({ socket, rest: body.slice(cut) });
    }

    // A websocket subscription and an SSE subscription, both live.
    const wsClosed = new Promise<number>((done) => {
      const client = createClient({
        url: `${s.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
        on: { closed: (event) => done((event as { code: number }).code) },
      });
      client.subscribe(
        {
          query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor } }`,
          variables: { b: boardId },
        },
        { next: () => undefined, error: () => undefined, complete: () => undefined },
      );
    });
    const sse = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({
        query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor } }`,
        variables: { b: boardId },
      }),
    });
    expect(sse.status).toBe(200);
    const sseText = sse.text();
    await sleep(500); // the websocket subscription is registered

    s.child.kill('SIGTERM');
    await sleep(300);
    for (const { socket, rest } of halves) socket.write(rest);

    const results = await Promise.all(answers);
    const succeeded = results.filter(
      (r) => r.startsWith('HTTP/1.1 200') && r.includes('"RegisterUserSuccess"'),
    );
    expect(results.filter((r) => !succeeded.includes(r)).slice(0, 3)).toEqual([]);
    expect(succeeded).toHaveLength(100);
    expect(await wsClosed).toBe(1001);
    expect(await sseText).toContain('event: complete');
    expect(await s.exited).toBe(0);
  }, 60_000);

  it('on SIGTERM answers all of 100 concurrent addCard sent 20 ms before, not ready at once, and delivers every acknowledged card to subscribers before 1001', async () => {
    const s = await startServerProcess({ env: { SHUTDOWN_DELAY_MS: '1000' } });
    started.push(s);
    const { token, boardId, columnId } = await column(s);
    // A subscriber, raw graphql-ws: every BoardChange until the close, and its code.
    const changes: { invalidated: { typename: string; id: string }[] }[] = [];
    const socket = new WebSocket(`${s.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const socketClosed = new Promise<number>((done) => socket.once('close', done));
    let subscribed = false;
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string; payload?: any };
      if (message.type === 'connection_ack') {
        socket.send(
          JSON.stringify({
            id: 'changes',
            type: 'subscribe',
            payload: {
              query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor invalidated { typename id } } }`,
              variables: { b: boardId },
            },
          }),
        );
      }
      if (message.type === 'next') changes.push(message.payload.data.boardChanges);
    });
    socket.once('open', () =>
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
      ),
    );
    // Subscribed once a first change arrives through it.
    while (!subscribed) {
      await postGraphQL(
        s.url,
        `mutation ($c: ID!) { addCard(input: { columnId: $c, title: "before" }) { __typename } }`,
        { c: columnId },
        token,
      );
      await sleep(50);
      subscribed = changes.length > 0;
    }

    const answers = Array.from({ length: 100 }, (_, i) =>
      postGraphQL(
        s.url,
        `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { __typename ... on AddCardSuccess { card { id } } } }`,
        { c: columnId, t: `card ${i}` },
        token,
      ).then(
        (answer) => ({ status: answer.status, body: answer.body.toString() }),
        (error: Error & { code?: string }) => ({ status: 0, body: error.code ?? error.message }),
      ),
    );
    await sleep(20);
    s.child.kill('SIGTERM');
    await sleep(100);
    // Not ready any more, yet still answering, each answer closing its connection.
    const readyz = await exchange(`${s.url}/readyz`);
    expect(readyz.status).toBe(503);
    expect(readyz.headers.connection).toBe('close');

    const results = await Promise.all(answers);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    const added = results
      .map((r) => JSON.parse(r.body) as { data: { addCard: { card?: { id: string } } } })
      .flatMap((r) => (r.data.addCard.card ? [r.data.addCard.card.id] : []));
    expect(added.length).toBeGreaterThan(0);
    // Every card acknowledged was committed and reached the subscriber before the close.
    expect(await socketClosed).toBe(1001);
    const delivered = new Set(
      changes.flatMap((c) => c.invalidated.filter((i) => i.typename === 'Card').map((i) => i.id)),
    );
    expect(added.filter((id) => !delivered.has(id))).toEqual([]);
    expect(await s.exited).toBe(0);
  }, 60_000);

  it('stops the server when npm start gets SIGTERM', async () => {
    const s = await startServerProcess({ command: ['npm', 'start', '--silent'] });
    started.push(s);
    expect((await postGraphQL(s.url, '{ boards { id } }')).status).toBe(200);
    s.child.kill('SIGTERM');
    await s.exited;
    // The server itself (npm's child) is gone too: nothing listens on its port any more.
    const { port } = new URL(s.url);
    const deadline = Date.now() + 10_000;
    let listening = true;
    while (listening && Date.now() < deadline) {
      listening = await new Promise<boolean>((done) => {
        const socket = connect(Number(port), '127.0.0.1');
        socket.once('connect', () => (socket.destroy(), done(true)));
        socket.once('error', () => done(false));
      });
      if (listening) await sleep(200);
    }
    expect(listening).toBe(false);
  }, 60_000);

  it('fails fast with one line when its port is taken, before trying an embedded MongoDB', async () => {
    const port = await freePort();
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(port, '127.0.0.1', () => done()));
    try {
      const { spawnSync } = await import('node:child_process');
      const startedAt = Date.now();
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        env: {
          ...process.env,
          STORE: 'auto',
          MONGODB_URI: '',
          HOST: '127.0.0.1',
          PORT: String(port),
        },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(1);
      expect(Date.now() - startedAt).toBeLessThan(20_000);
      const lines = `${run.stdout}${run.stderr}`.trim().split('\n');
      expect(lines).toEqual([
        `corkboard: port ${port} on 127.0.0.1 is already in use; stop what holds it or set PORT`,
      ]);
    } finally {
      holder.close();
    }
  });

  it("fails fast with one line when the metrics listener's port is taken, naming METRICS_PORT", async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(metricsPort, '127.0.0.1', () => done()));
    try {
      const { spawnSync } = await import('node:child_process');
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        env: {
          ...process.env,
          STORE: 'memory',
          HOST: '127.0.0.1',
          PORT: String(port),
          METRICS_HOST: '127.0.0.1',
          METRICS_PORT: String(metricsPort),
        },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(1);
      const lines = `${run.stdout}${run.stderr}`.trim().split('\n');
      expect(lines).toEqual([
        `corkboard: port ${metricsPort} on 127.0.0.1 is already in use; stop what holds it or set METRICS_PORT`,
      ]);
    } finally {
      holder.close();
    }
  });
});
