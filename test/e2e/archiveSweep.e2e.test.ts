/**
 * Archiving old boards through the real server: its own process with STORE=mongo on the
 * MongoDB simulator (test/sim) and ARCHIVE_AFTER_DAYS=0.00003 (2.6 s, the setting takes
 * fractions of a day), driven by the SDK. Where the board's commits are is read from the
 * simulator's `commits` and `archive_commits` collections directly.
 */
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CardHistoryDocument } from '../../src/sdk/generated/graphql.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { CollectionName } from '../../src/eventstore/mongo/documents.js';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import { MongoSim } from '../sim/MongoSim.js';
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
  });
});
