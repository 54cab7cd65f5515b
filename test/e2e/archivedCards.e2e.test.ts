import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ARCHIVED_CARDS_PAGE } from '../../src/boards/card/readModel.js';
import { loadConfig } from '../../src/config.js';
import { openMongoStorage } from '../../src/mongoStorage.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { ArchivedCardsDocument } from '../../src/sdk/generated/graphql.js';
import { openMemoryStorage, type Storage } from '../../src/storage.js';
import { fileScopedMongoUri, uniqueDatabaseName, useContractTimeout } from '../support/mongo.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';
import { until } from '../support/until.js';

const mongoUri = fileScopedMongoUri();
useContractTimeout();
const { changeLogRetention } = loadConfig({ STORE: 'memory' });

const adapters: { name: string; open: () => Promise<Storage> }[] = [
  { name: 'memory', open: async () => openMemoryStorage({}) },
  {
    name: 'mongo',
    open: async () =>
      openMongoStorage({
        uri: await mongoUri(),
        dbName: uniqueDatabaseName(),
        config: { changeLogRetention },
      }),
  },
];

/** Resolves once the clock has moved past `since`, so two commits get distinct times. */
async function afterClockTick(since: number) {
  while (Date.now() <= since) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe.each(adapters)('Column.archivedCards ($name)', (adapter) => {
  let s: TestServer;
  let storage: Storage;
  let alice: CorkboardClient;
  let stranger: CorkboardClient;
  let boardId: string;
  let columns: { todo: string; doing: string };
  const cards: Record<string, { id: string; version: number }> = {};

  const client = async (username: string) => {
    const { token } = await s.register(`${username}${adapter.name}`);
    return createCorkboardClient({ url: `${s.url}/graphql`, token, webSocketImpl: WebSocket });
  };
  const archived = async (api: CorkboardClient, columnId: string, first?: number) => {
    const { column } = await api.request(ArchivedCardsDocument, {
      columnId,
      ...(first === undefined ? {} : { first }),
    });
    return column?.__typename === 'Column'
      ? column.archivedCards.map((card) => {
          expect(card.archived).toBe(true);
          return card.title;
        })
      : null;
  };
  const archive = async (title: string) => {
    const before = Date.now();
    const result = await alice.archiveCard({
      input: { cardId: cards[title]!.id, expectedVersion: cards[title]!.version },
    });
    if (result.__typename !== 'ArchiveCardSuccess') throw new Error(result.__typename);
    cards[title] = result.card;
    await afterClockTick(before);
  };

  beforeAll(async () => {
    storage = await adapter.open();
    s = await startTestServer({ storage, env: NO_CLIENT_LIMITS });
    alice = await client('alice');
    stranger = await client('stranger');
    const created = await alice.createBoard({ input: { name: 'Archive' } });
    if (created.__typename !== 'CreateBoardSuccess') throw new Error(created.__typename);
    boardId = created.board.id;
    let version = created.board.version;
    const ids: string[] = [];
    for (const name of ['To do', 'Doing']) {
      const added = await alice.addColumn({
        input: { boardId: created.board.id, name, expectedVersion: version },
      });
      if (added.__typename !== 'AddColumnSuccess') throw new Error(added.__typename);
      version = added.board.version;
      ids.push(added.column.id);
    }
    columns = { todo: ids[0]!, doing: ids[1]! };
    for (const [title, columnId] of [
      ['A', columns.todo],
      ['B', columns.todo],
      ['C', columns.todo],
      ['D', columns.doing],
    ] as const) {
      const added = await alice.addCard({ input: { columnId, title } });
      if (added.__typename !== 'AddCardSuccess') throw new Error(added.__typename);
      cards[title] = added.card;
    }
    for (const title of ['A', 'D', 'C']) await archive(title);
  });
  afterAll(async () => {
    await s?.close();
    await storage?.close();
  });

  it("lists a column's archived cards only, the last archived first, `first` of them", async () => {
    expect(await archived(alice, columns.todo)).toEqual(['C', 'A']);
    expect(await archived(alice, columns.doing)).toEqual(['D']);
    expect(await archived(alice, columns.todo, 1)).toEqual(['C']);
    expect(await archived(alice, columns.todo, 0)).toEqual([]);
    // Past the most one call answers: the most, not an error.
    expect(await archived(alice, columns.todo, ARCHIVED_CARDS_PAGE.max + 1)).toEqual(['C', 'A']);
  });

  it('hides them from non-members and refuses a negative `first`', async () => {
    expect(await archived(stranger, columns.todo)).toBeNull();
    await expect(archived(alice, columns.todo, -1)).rejects.toThrow(/first: must not be negative/);
  });

  it('drops a card from the list once restored, and the restored card is live in its column again', async () => {
    const restored = await alice.restoreCard({
      input: { cardId: cards['A']!.id, expectedVersion: cards['A']!.version },
    });
    if (restored.__typename !== 'RestoreCardSuccess') throw new Error(restored.__typename);
    expect(restored.card.archived).toBe(false);
    expect(await archived(alice, columns.todo)).toEqual(['C']);
    const column = await alice.column({ id: columns.todo });
    expect(
      column?.__typename === 'Column' && column.cards.edges.map((edge) => edge.node.title),
    ).toEqual(['A', 'B']);
  });

  /** Runs `write` while following the board; the invalidations of the change it made. */
  async function invalidationsOf(write: () => Promise<void>) {
    const abort = new AbortController();
    const changes = alice.boardChanges(boardId, { signal: abort.signal })[Symbol.asyncIterator]();
    try {
      const first = changes.next();
      await until(() => s.app.live.stats().subscribers >= 1, 10_000, 'the subscription');
      await write();
      const { value } = await first;
      if (!value) throw new Error('the subscription ended');
      return value.invalidated.map(({ typename, id, fields, version }) => ({
        typename,
        id,
        fields: [...fields].sort(),
        version,
      }));
    } finally {
      abort.abort();
      await changes.return?.();
      await until(() => s.app.live.stats().subscribers === 0, 10_000, 'the unsubscribe');
    }
  }
  const columnVersion = async (id: string) => {
    const column = await alice.column({ id });
    if (column?.__typename !== 'Column') throw new Error(`no column ${id}`);
    return column.version;
  };

  it("names the column's archivedCards, at its new version, in the change of an archive and of a restore into another column", async () => {
    const archivedB = await invalidationsOf(() => archive('B'));
    expect(archivedB).toContainEqual({
      typename: 'Column',
      id: columns.todo,
      fields: ['archivedCards', 'cardCount', 'cards'],
      version: await columnVersion(columns.todo),
    });

    const restoredC = await invalidationsOf(async () => {
      const restored = await alice.restoreCard({
        input: {
          cardId: cards['C']!.id,
          toColumnId: columns.doing,
          expectedVersion: cards['C']!.version,
        },
      });
      if (restored.__typename !== 'RestoreCardSuccess') throw new Error(restored.__typename);
      expect(restored.column.id).toBe(columns.doing);
    });
    // The column it left loses it from its archived cards; the one it entered gains a card.
    expect(restoredC).toEqual(
      expect.arrayContaining([
        {
          typename: 'Column',
          id: columns.todo,
          fields: ['archivedCards'],
          version: await columnVersion(columns.todo),
        },
        {
          typename: 'Column',
          id: columns.doing,
          fields: ['cardCount', 'cards'],
          version: await columnVersion(columns.doing),
        },
      ]),
    );
    expect(await archived(alice, columns.todo)).toEqual(['B']);
    expect(await archived(alice, columns.doing)).toEqual(['D']);
  });
});
