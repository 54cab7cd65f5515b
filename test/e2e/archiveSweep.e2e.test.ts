/**
 * Archiving old boards through the real server: its own process with STORE=mongo on the
 * MongoDB simulator (test/sim) and ARCHIVE_AFTER_DAYS=0.00003 (2.6 s, the setting takes
 * fractions of a day), driven by the SDK. Where the board's commits are is read from the
 * simulator's `commits` and `archive_commits` collections directly.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CardHistoryDocument } from '../../src/sdk/generated/graphql.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { CollectionName } from '../../src/eventstore/mongo/documents.js';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import { openMemoryStorage } from '../../src/storage.js';
import { MongoSim } from '../sim/MongoSim.js';
import { startTestServer } from '../support/server.js';
import { startServerProcess, type ServerProcess } from '../support/serverProcess.js';
import { until } from '../support/until.js';

const ARCHIVE_AFTER_DAYS = 0.00003;
const ADMIN_TOKEN = 'archive-e2e-admin-token-0123456789';
const DB = 'corkboard_e2e_archive';

function member<R extends { __typename: string } | null, T extends NonNullable<R>['__typename']>(
  result: R,
  typename: T,
): Extract<R, { __typename: T }> {
  if (result?.__typename !== typename) {
    throw new Error(`expected ${typename}, got ${JSON.stringify(result)}`);
  }
  return result as Extract<R, { __typename: T }>;
}

describe('archived boards leave the hot store after ARCHIVE_AFTER_DAYS (server process on the MongoDB simulator)', () => {
  let sim: MongoSim;
  let server: ServerProcess;
  let client: MongoClient;
  let db: Db;
  const clientOf = (token?: string): CorkboardClient =>
    createCorkboardClient({ url: `${server.url}/graphql`, ...(token ? { token } : {}) });

  beforeAll(async () => {
    sim = await MongoSim.start();
    server = await startServerProcess({
      env: {
        STORE: 'mongo',
        MONGODB_URI: sim.uri,
        MONGODB_DB: DB,
        ARCHIVE_AFTER_DAYS: String(ARCHIVE_AFTER_DAYS),
        ADMIN_TOKEN,
      },
      readyTimeoutMs: 60_000,
    });
    client = await new MongoClient(sim.uri).connect();
    db = client.db(DB);
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await server?.kill();
    await sim?.close();
  });

  /** How many commits holding an event of `streams` each collection has. */
  const countIn = async (collection: string, streams: string[]) =>
    (
      await db
        .collection(collection)
        .find({ 'events.stream': { $in: streams } })
        .toArray()
    ).length;

  it('moves an archived board’s streams out of commits, serves its reads and history from the archive, and restoreBoard brings them back', async () => {
    const registered = member(
      await clientOf().registerUser({ input: { username: 'ada', displayName: 'Ada' } }),
      'RegisterUserSuccess',
    );
    const ada = clientOf(registered.token);
    let board = member(
      await ada.createBoard({ input: { name: 'Old plans' } }),
      'CreateBoardSuccess',
    ).board;
    const added = member(
      await ada.addColumn({
        input: { boardId: board.id, name: 'Todo', wipLimit: null, expectedVersion: board.version },
      }),
      'AddColumnSuccess',
    );
    board = added.board;
    const cards: { id: string; version: number }[] = [];
    for (const title of ['one', 'two', 'three']) {
      cards.push(
        member(await ada.addCard({ input: { columnId: added.column.id, title } }), 'AddCardSuccess')
          .card,
      );
    }
    member(
      await ada.editCard({
        input: { cardId: cards[0]!.id, title: 'one, edited', expectedVersion: cards[0]!.version },
      }),
      'EditCardSuccess',
    );
    const streams = [
      `board-${rawIdOf(board.id, 'Board')}`,
      `column-${rawIdOf(added.column.id, 'Column')}`,
      ...cards.map((c) => `card-${rawIdOf(c.id, 'Card')}`),
    ];
    // A second board stays live: its commits stay where they are.
    const live = member(
      await ada.createBoard({ input: { name: 'Live' } }),
      'CreateBoardSuccess',
    ).board;
    const readBoard = async () => {
      const read = await ada.board({ id: board.id, cardsPerColumn: 10 });
      return read!.columns.map((c) => c.cards.edges.map((e) => e.node.title));
    };
    const history = async () =>
      (await ada.request(CardHistoryDocument, { id: cards[0]!.id, first: 10 })).card;
    const titlesBefore = await readBoard();
    const historyBefore = await history();
    const hotBefore = await countIn(CollectionName.Commits, streams);
    expect(hotBefore).toBe(6); // created, a column, three cards, one edit

    member(
      await ada.archiveBoard({ input: { boardId: board.id, expectedVersion: board.version } }),
      'ArchiveBoardSuccess',
    );
    await until(
      async () => (await countIn(CollectionName.Commits, streams)) === 0,
      60_000,
      `the board's commits to leave commits:\n${server.output()}`,
    );
    expect(await countIn(CollectionName.ArchiveCommits, streams)).toBe(hotBefore + 1);
    expect(
      await countIn(CollectionName.ArchiveCommits, [`board-${rawIdOf(live.id, 'Board')}`]),
    ).toBe(0);
    expect(await countIn(CollectionName.Commits, [`board-${rawIdOf(live.id, 'Board')}`])).toBe(1);
    expect(await readBoard()).toEqual(titlesBefore);
    expect(await history()).toEqual(historyBefore);
    const archived = await ada.board({ id: board.id, cardsPerColumn: 10 });
    expect(archived).toMatchObject({ archived: true });

    // Operators see the sweeper with the other supervised loops.
    const metrics = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(await metrics.text()).toContain('corkboard_loop_up{loop="archive-sweeper"} 1');

    const restored = member(
      await ada.restoreBoard({
        input: { boardId: board.id, expectedVersion: archived!.version },
      }),
      'RestoreBoardSuccess',
    );
    await until(
      async () => (await countIn(CollectionName.ArchiveCommits, streams)) === 0,
      60_000,
      `the board's commits to come back:\n${server.output()}`,
    );
    expect(await countIn(CollectionName.Commits, streams)).toBe(hotBefore + 2);
    expect(restored.board.archived).toBe(false);
    member(
      await ada.addCard({ input: { columnId: added.column.id, title: 'four' } }),
      'AddCardSuccess',
    );
    expect(await readBoard()).toEqual([[...titlesBefore[0]!, 'four']]);
    expect(await history()).toEqual(historyBefore);
    expect(sim.unsupported).toEqual([]);
  }, 150_000);
});

describe('a failing archive sweep (in-process server, memory store)', () => {
  it('is retried and shown in /metrics, and never makes /readyz fail: serving does not need it', async () => {
    const storage = openMemoryStorage({});
    const store = storage.store;
    let attempts = 0;
    storage.store = new Proxy(store, {
      get(target, key) {
        if (key === 'archiveStreams') {
          return async () => {
            attempts += 1;
            throw new Error('archive unavailable');
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const s = await startTestServer({ storage, env: { ARCHIVE_AFTER_DAYS: '0' } });
    try {
      const ada = await s.register('ada');
      const created = await s.gql<{ createBoard: { board: { id: string; version: number } } }>(
        `mutation { createBoard(input: { name: "Old" }) { ... on CreateBoardSuccess { board { id version } } } }`,
        {},
        ada.token,
      );
      const board = created.data!.createBoard.board;
      const archived = await s.gql<{ archiveBoard: { __typename: string } }>(
        `mutation ($input: ArchiveBoardInput!) { archiveBoard(input: $input) { __typename } }`,
        { input: { boardId: board.id, expectedVersion: board.version } },
        ada.token,
      );
      expect(archived.data!.archiveBoard.__typename).toBe('ArchiveBoardSuccess');
      const metrics = async () =>
        (
          await fetch(`${s.url}/metrics`, {
            headers: { authorization: `Bearer ${s.app.admin.token}` },
          })
        ).text();
      await until(
        async () =>
          attempts >= 3 &&
          /corkboard_loop_restarts\{loop="archive-sweeper"\} [1-9]/.test(await metrics()),
        60_000,
        'the sweep to fail and restart',
      );
      // The loop spends nearly all its time in backoff now; readiness must not follow it.
      for (let i = 0; i < 10; i += 1) {
        expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
        await sleep(50);
      }
    } finally {
      await s.close();
      await storage.close();
    }
  });
});
