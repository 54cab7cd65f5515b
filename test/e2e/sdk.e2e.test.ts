import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openMemoryStorage } from '../../src/storage.js';
import { withConflictRetry } from '../../src/sdk/conflicts.js';
import { CorkboardRequestError } from '../../src/sdk/CorkboardRequestError.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import { BoardDocument } from '../../src/sdk/generated/graphql.js';
import { expectSuccess } from '../support/expectSuccess.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';

describe('the typed SDK against a real server', () => {
  let s: TestServer;
  let proxy: TcpProxy;
  let alice: CorkboardClient;
  beforeAll(async () => {
    s = await startTestServer();
    proxy = await startTcpProxy(Number(new URL(s.url).port));
    const anonymous = createCorkboardClient({ url: `${s.url}/graphql` });
    const registered = expectSuccess(
      await anonymous.registerUser({ input: { username: 'alice', displayName: 'Alice' } }),
      'RegisterUserSuccess',
    );
    alice = createCorkboardClient({
      url: `${s.url}/graphql`,
      token: registered.token,
      webSocketImpl: WebSocket,
      // Subscriptions go through the proxy, so a test can cut them.
      webSocketUrl: `ws://127.0.0.1:${proxy.port}/graphql`,
      reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    });
  });
  afterAll(async () => {
    await proxy.close();
    await s.close();
  });

  async function boardWithCard() {
    const board = expectSuccess(
      await alice.createBoard({ input: { name: 'SDK' } }),
      'CreateBoardSuccess',
    ).board;
    const column = expectSuccess(
      await alice.addColumn({
        input: { boardId: board.id, name: 'Todo', expectedVersion: board.version },
      }),
      'AddColumnSuccess',
    ).column;
    const card = expectSuccess(
      await alice.addCard({ input: { columnId: column.id, title: 'shared' } }),
      'AddCardSuccess',
    ).card;
    return { board, column, card };
  }

  it('lands all 20 label edits of 20 concurrent editors through withConflictRetry, one version each', async () => {
    const { card } = await boardWithCard();
    const labels = Array.from({ length: 20 }, (_, i) => `editor-${i}`);
    const results = await Promise.all(
      labels.map((label) =>
        withConflictRetry(
          async () => {
            const loaded = await alice.card({ id: card.id });
            return expectSuccess(loaded!, 'Card');
          },
          (current) =>
            alice.editCard({
              input: {
                cardId: card.id,
                expectedVersion: current.version,
                labels: [...current.labels, label],
              },
            }),
          { attempts: 50 },
        ),
      ),
    );
    expect(results.map((r) => r.__typename)).toEqual(labels.map(() => 'EditCardSuccess'));
    const after = expectSuccess((await alice.card({ id: card.id }))!, 'Card');
    expect([...after.labels].sort()).toEqual([...labels].sort());
    expect(after.version).toBe(card.version + 20);
  });

  it('delivers every change once and in order across connections cut while 30 commits happen', async () => {
    const { board, card } = await boardWithCard();
    const abort = new AbortController();
    const changes = alice.boardChanges(board.id, { signal: abort.signal });
    // The subscription is live once it delivers a change made after subscribing.
    const warmUp = changes.next();
    let version = card.version;
    const edit = async (title: string) => {
      const result = expectSuccess(
        await alice.editCard({ input: { cardId: card.id, expectedVersion: version, title } }),
        'EditCardSuccess',
      );
      version = result.card.version;
    };
    let first: IteratorResult<BoardChange, void> | undefined;
    for (let i = 0; !first && i < 50; i++) {
      await edit(`warm-up ${i}`);
      first = await Promise.race([warmUp, new Promise<undefined>((r) => setTimeout(r, 50))]);
    }
    if (!first || first.done) throw new Error('subscription never became live');
    // Edits made before the first delivery may still be on their way: skip up to here.
    const warmUpVersion = version;
    const connectionsBefore = proxy.accepted;

    const received: BoardChange[] = [];
    const consumed = (async () => {
      for await (const change of changes) {
        const cardVersion = change.invalidated.find((i) => i.id === card.id)?.version ?? 0;
        if (cardVersion <= warmUpVersion) continue;
        received.push(change);
        if (received.length === 30) break;
      }
    })();
    for (let i = 1; i <= 30; i++) {
      await edit(`edit ${i}`);
      // Cut mid-stream, several times, without waiting for the deliveries.
      if (i % 7 === 0) proxy.dropAll();
    }
    const timeout = setTimeout(() => abort.abort(), 10_000);
    await consumed;
    clearTimeout(timeout);
    abort.abort();

    expect(received).toHaveLength(30);
    expect(received.map((c) => c.invalidated.find((i) => i.id === card.id)?.version)).toEqual(
      Array.from({ length: 30 }, (_, i) => warmUpVersion + i + 1),
    );
    const cursors = received.map((c) => Number(c.cursor));
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(30);
    expect(received.every((c) => c.operation === 'editCard' && !c.resyncRequired)).toBe(true);
    // It really reconnected: once per cut.
    expect(proxy.accepted - connectionsBefore).toBeGreaterThanOrEqual(4);
  });

  it('resumes on a restarted server after it closed every socket (1001), missing nothing committed meanwhile', async () => {
    const storage = openMemoryStorage({});
    const config = loadConfig({ STORE: 'memory', LOG_LEVEL: 'silent' });
    const logger = pino({ level: 'silent' });
    let app = await createApp(config, { storage, logger });
    const { url } = await app.start(0);
    const port = Number(new URL(url).port);
    try {
      const anonymous = createCorkboardClient({ url: `${url}/graphql` });
      const { token } = expectSuccess(
        await anonymous.registerUser({ input: { username: 'bob', displayName: 'Bob' } }),
        'RegisterUserSuccess',
      );
      const bob = createCorkboardClient({
        url: `${url}/graphql`,
        token,
        webSocketImpl: WebSocket,
        reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      });
      const board = expectSuccess(
        await bob.createBoard({ input: { name: 'Restart' } }),
        'CreateBoardSuccess',
      ).board;
      let version = board.version;
      const rename = async (name: string) => {
        const result = await bob.renameBoard({
          input: { boardId: board.id, name, expectedVersion: version },
        });
        version = expectSuccess(result, 'RenameBoardSuccess').board.version;
      };

      const abort = new AbortController();
      const received: BoardChange[] = [];
      const consumed = (async () => {
        for await (const change of bob.boardChanges(board.id, { signal: abort.signal })) {
          received.push(change);
          if (change.invalidated[0]?.version === board.version + 20) break;
        }
      })();
      // Live once a change made after subscribing arrives.
      for (let i = 0; received.length === 0 && i < 100; i++) {
        await rename(`warm-up ${i}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const firstVersion = received[0]!.invalidated[0]!.version;
      while (version < board.version + 10) await rename(`before ${version}`);

      await app.stop();
      app = await createApp(config, { storage, logger });
      await app.start(port);
      while (version < board.version + 20) await rename(`after ${version}`);

      const timeout = setTimeout(() => abort.abort(), 10_000);
      await consumed;
      clearTimeout(timeout);
      expect(received.map((c) => c.invalidated[0]!.version)).toEqual(
        Array.from({ length: board.version + 21 - firstVersion }, (_, i) => firstVersion + i),
      );
    } finally {
      await app.stop();
      await storage.close();
    }
  });

  it('yields a resyncRequired message for a cursor past the retention, then continues after it', async () => {
    const small = await startTestServer({ storage: openMemoryStorage({ changeLogRetention: 5 }) });
    try {
      const anonymous = createCorkboardClient({ url: `${small.url}/graphql` });
      const { token } = expectSuccess(
        await anonymous.registerUser({ input: { username: 'carol', displayName: 'Carol' } }),
        'RegisterUserSuccess',
      );
      const carol = createCorkboardClient({
        url: `${small.url}/graphql`,
        token,
        webSocketImpl: WebSocket,
      });
      let board = expectSuccess(
        await carol.createBoard({ input: { name: 'Old' } }),
        'CreateBoardSuccess',
      ).board;
      const rename = async (name: string) => {
        const result = await carol.renameBoard({
          input: { boardId: board.id, name, expectedVersion: board.version },
        });
        board = expectSuccess(result, 'RenameBoardSuccess').board;
      };
      for (let i = 0; i < 8; i++) await rename(`r${i}`);

      const abort = new AbortController();
      const changes = carol.boardChanges(board.id, { after: '1', signal: abort.signal });
      const resync = await changes.next();
      expect(resync.value).toMatchObject({ resyncRequired: true, invalidated: [] });
      await rename('live');
      const live = await changes.next();
      expect(live.value).toMatchObject({ operation: 'renameBoard', resyncRequired: false });
      expect(Number(live.value!.cursor)).toBe(Number(resync.value!.cursor) + 1);
      abort.abort();
      expect(await changes.next()).toEqual({ done: true, value: undefined });
    } finally {
      await small.close();
    }
  });

  it('subscribes again, from its cursor, while the server refuses its replay (TOO_MANY_REPLAYS)', async () => {
    const busy = await startTestServer({ live: { maxConcurrentReplays: 1 } });
    const held = new AbortController();
    try {
      const { token } = await busy.register('dave');
      const dave = createCorkboardClient({
        url: `${busy.url}/graphql`,
        token,
        webSocketImpl: WebSocket,
      });
      const board = expectSuccess(
        await dave.createBoard({ input: { name: 'Busy' } }),
        'CreateBoardSuccess',
      ).board;
      const rawId = Buffer.from(board.id, 'base64').toString('utf8').split(':')[1]!;
      // Another replay holds the server's one slot until it is iterated or ended.
      const other = busy.app.live.subscribe({
        boardId: rawId,
        after: 0,
        authorize: async () => true,
        signal: held.signal,
      });
      const renamed = expectSuccess(
        await dave.renameBoard({
          input: { boardId: board.id, name: 'r1', expectedVersion: board.version },
        }),
        'RenameBoardSuccess',
      ).board;
      const hub = busy.app.live;
      const subscribe = hub.subscribe.bind(hub);
      let refused = 0;
      hub.subscribe = (options) => {
        try {
          return subscribe(options);
        } catch (error) {
          refused++;
          throw error;
        }
      };
      const abort = new AbortController();
      const changes = dave.boardChanges(board.id, { after: '0', signal: abort.signal });
      const first = changes.next();
      // Refused while the slot is held (the client is told to retry shortly)...
      for (const deadline = Date.now() + 10_000; refused < 2; await sleep(10)) {
        if (Date.now() > deadline) throw new Error(`subscribed ${refused} times, never again`);
      }
      held.abort();
      await other.return?.();
      // ...then replayed in full once it is free.
      const replayed: BoardChange[] = [];
      replayed.push((await first).value!);
      while (replayed.at(-1)!.operation !== 'renameBoard') {
        replayed.push((await changes.next()).value!);
      }
      expect(replayed.map((c) => c.operation)).toEqual(['createBoard', 'renameBoard']);
      expect(replayed.at(-1)!.invalidated[0]).toMatchObject({ version: renamed.version });
      abort.abort();
    } finally {
      held.abort();
      await busy.close();
    }
  });

  it("ends boardChanges with a CorkboardRequestError when the server refuses it: another user's board", async () => {
    const { board } = await boardWithCard();
    const anonymous = createCorkboardClient({ url: `${s.url}/graphql` });
    const { token } = expectSuccess(
      await anonymous.registerUser({ input: { username: 'mallory', displayName: 'Mallory' } }),
      'RegisterUserSuccess',
    );
    const mallory = createCorkboardClient({
      url: `${s.url}/graphql`,
      token,
      webSocketImpl: WebSocket,
    });
    const error: unknown = await mallory
      .boardChanges(board.id)
      .next()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorkboardRequestError);
    expect((error as CorkboardRequestError).codes).toEqual(['NOT_FOUND']);
  });

  it('rejects with a CorkboardRequestError carrying the GraphQL errors of a malformed call', async () => {
    const error: unknown = await alice
      .request(BoardDocument, { id: 'x', cardsPerColumn: 'many' as unknown as number })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorkboardRequestError);
    expect(error).toMatchObject({ operationName: 'Board', errors: [expect.anything()] });
  });

  it('aborts a request when its signal aborts', async () => {
    const abort = new AbortController();
    abort.abort();
    await expect(alice.me(undefined, { signal: abort.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });
});
