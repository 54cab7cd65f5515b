/**
 * Archive, restore, rename and member changes from three users' points of view, through
 * the SDK's live Apollo and urql caches: Alice (the owner) writes, Bob and Carol watch the
 * board, and every change must reach their caches from the push alone, with no refetch.
 */
import { ApolloClient } from '@apollo/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import {
  AddMemberDocument,
  ArchiveBoardDocument,
  ArchiveCardDocument,
  ArchiveColumnDocument,
  ArchivedCardsDocument,
  BoardsDocument,
  RemoveMemberDocument,
  RenameColumnDocument,
  RestoreBoardDocument,
  RestoreCardDocument,
  SetMemberRoleDocument,
  type ArchivedCardsQuery,
  type BoardsQuery,
} from '../../src/sdk/generated/graphql.js';
import { expectSuccess } from '../support/expectSuccess.js';
import {
  openLiveCacheClient,
  plain,
  type CacheLibrary,
  type LiveCacheClient,
  type WatchedBoard,
} from '../support/liveCaches.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { until as untilWithin } from '../support/until.js';

const until = (check: () => boolean, what: string) => untilWithin(check, 10_000, what);

type Boards = BoardsQuery['boards'];

/** Watches `boards` (archived ones left out) through the client's cache. */
function watchBoards(client: LiveCacheClient) {
  let latest: Boards | undefined;
  let stop: () => void;
  if (client.client instanceof ApolloClient) {
    const subscription = client.client.watchQuery({ query: BoardsDocument }).subscribe((result) => {
      if (result.dataState === 'complete') latest = result.data.boards;
    });
    stop = () => subscription.unsubscribe();
  } else {
    const subscription = client.client.query(BoardsDocument, {}).subscribe((result) => {
      if (result.data) latest = result.data.boards;
    });
    stop = () => subscription.unsubscribe();
  }
  return {
    ids: () => latest?.map((board) => board.id),
    stop,
  };
}

/** Watches a column's `archivedCards` through the client's cache. */
function watchArchived(client: LiveCacheClient, columnId: string) {
  let latest: string[] | undefined;
  const take = (column: ArchivedCardsQuery['column'] | undefined) => {
    if (column?.__typename === 'Column') latest = column.archivedCards.map((card) => card.id);
  };
  let stop: () => void;
  if (client.client instanceof ApolloClient) {
    const subscription = client.client
      .watchQuery({ query: ArchivedCardsDocument, variables: { columnId } })
      .subscribe((result) => {
        if (result.dataState === 'complete') take(result.data.column);
      });
    stop = () => subscription.unsubscribe();
  } else {
    const subscription = client.client
      .query(ArchivedCardsDocument, { columnId })
      .subscribe((result) => take(result.data?.column));
    stop = () => subscription.unsubscribe();
  }
  return { ids: () => latest, stop };
}

const columnNamed = (board: WatchedBoard, name: string) => {
  const column = board.columns.find((c) => c.name === name);
  if (!column) throw new Error(`no column ${name}`);
  return column;
};
const cardIds = (board: WatchedBoard, column: string) =>
  columnNamed(board, column).cards.edges.map((edge) => edge.node.id);

describe.each<CacheLibrary>(['apollo', 'urql'])(
  'archive and restore in live %s caches',
  (library) => {
    let s: TestServer;
    let alice: CorkboardClient;
    let boardId: string;
    let otherBoardId: string;
    let todoId: string;
    let spareId: string;
    let cards: { id: string; version: number }[];
    /** Alice's cache: the writer. */
    let a: LiveCacheClient;
    /** Bob's and Carol's caches: watchers. */
    let b: LiveCacheClient;
    let c: LiveCacheClient;
    let boardLists: ReturnType<typeof watchBoards>[];
    let bobId: string;

    beforeAll(async () => {
      s = await startTestServer();
      const graphqlUrl = `${s.url}/graphql`;
      const [aliceUser, bobUser, carolUser] = await Promise.all(
        ['alice', 'bob', 'carol'].map((name) => s.register(name)),
      );
      alice = createCorkboardClient({ url: graphqlUrl, token: aliceUser!.token });
      bobId = bobUser!.id;
      // An older board each member also sees: `boards` holds two, newest first.
      const older = expectSuccess(
        await alice.createBoard({ input: { name: 'Older' } }),
        'CreateBoardSuccess',
      ).board;
      otherBoardId = older.id;
      let version = older.version;
      for (const username of ['bob', 'carol']) {
        version = expectSuccess(
          await alice.addMember({
            input: { boardId: older.id, username, expectedVersion: version },
          }),
          'AddMemberSuccess',
        ).board.version;
      }
      const board = expectSuccess(
        await alice.createBoard({ input: { name: 'Archive and restore' } }),
        'CreateBoardSuccess',
      ).board;
      boardId = board.id;
      version = board.version;
      for (const username of ['bob', 'carol']) {
        version = expectSuccess(
          await alice.addMember({ input: { boardId, username, expectedVersion: version } }),
          'AddMemberSuccess',
        ).board.version;
      }
      const todo = expectSuccess(
        await alice.addColumn({ input: { boardId, name: 'Todo', expectedVersion: version } }),
        'AddColumnSuccess',
      );
      const spare = expectSuccess(
        await alice.addColumn({
          input: { boardId, name: 'Spare', wipLimit: 4, expectedVersion: todo.board.version },
        }),
        'AddColumnSuccess',
      );
      todoId = todo.column.id;
      spareId = spare.column.id;
      cards = [];
      for (const title of ['one', 'two', 'three']) {
        const { card } = expectSuccess(
          await alice.addCard({ input: { columnId: todoId, title } }),
          'AddCardSuccess',
        );
        cards.push({ id: card.id, version: card.version });
      }
      const open = (token: string) =>
        openLiveCacheClient(library, { graphqlUrl, token, boardId, viewerId: null });
      [a, b, c] = await Promise.all([
        open(aliceUser!.token),
        open(bobUser!.token),
        open(carolUser!.token),
      ]);
      await until(() => s.app.live.stats().subscribers >= 3, '3 subscribers');
      boardLists = [a, b, c].map(watchBoards);
      await until(
        () => boardLists.every((list) => list.ids()?.length === 2),
        "every user's boards list",
      );
    });
    afterAll(async () => {
      boardLists?.forEach((list) => list.stop());
      await Promise.all([a?.close(), b?.close(), c?.close()]);
      await s?.close();
    });

    const watchers = () => [b, c];

    /**
     * Every cache equals a fresh query of the board made with its own user's token (the
     * board's `viewerRole` is each viewer's) once it has applied its changes.
     */
    async function expectCurrent() {
      for (const client of [a, b, c]) {
        const fresh = JSON.stringify(plain(await client.fresh()));
        await client.waitForBoard((board) => JSON.stringify(plain(board)) === fresh);
      }
    }

    /**
     * Runs one mutation through Alice's cache, waits until every binding applied its
     * change and every cache equals a fresh query, then a little longer (a stray request
     * would be sent by then), and returns the requests each client sent meanwhile.
     */
    async function observe(run: () => Promise<unknown>) {
      const clients = [a, b, c];
      const sent = clients.map((client) => client.requests.length);
      const applied = clients.map((client) => client.applied.length);
      await run();
      await until(
        () => clients.every((client, i) => client.applied.length > applied[i]!),
        'every binding to apply the change',
      );
      await expectCurrent();
      await sleep(100);
      return clients.map((client, i) => client.requests.slice(sent[i]));
    }

    it('applies a renamed column: no refetch', async () => {
      const todo = columnNamed(b.board()!, 'Todo');
      const requests = await observe(() =>
        a.mutate(RenameColumnDocument, {
          input: { columnId: todo.id, name: 'Doing', expectedVersion: todo.version },
        }),
      );
      for (const watcher of watchers()) {
        expect(columnNamed(watcher.board()!, 'Doing')).toMatchObject({ id: todoId });
      }
      expect(requests).toEqual([['RenameColumn'], [], []]);
    });

    it('drops an archived card, then puts the restored card back at its old place: no refetch', async () => {
      const card = columnNamed(b.board()!, 'Doing').cards.edges[1]!.node;
      expect(card.id).toBe(cards[1]!.id);
      let archivedVersion = 0;
      const archived = await observe(async () => {
        const { archiveCard } = await a.mutate(ArchiveCardDocument, {
          input: { cardId: card.id, expectedVersion: card.version },
        });
        archivedVersion = expectSuccess(archiveCard, 'ArchiveCardSuccess').card.version;
      });
      for (const watcher of watchers()) {
        expect(cardIds(watcher.board()!, 'Doing')).toEqual([cards[0]!.id, cards[2]!.id]);
      }
      expect(archived).toEqual([['ArchiveCard'], [], []]);

      const restored = await observe(() =>
        a.mutate(RestoreCardDocument, {
          input: { cardId: card.id, expectedVersion: archivedVersion },
        }),
      );
      for (const watcher of watchers()) {
        expect(cardIds(watcher.board()!, 'Doing')).toEqual(cards.map((c) => c.id));
        expect(columnNamed(watcher.board()!, 'Doing').cardCount).toBe(3);
        const shown = columnNamed(watcher.board()!, 'Doing').cards.edges[1]!.node;
        expect(shown).toMatchObject({ id: card.id, archived: false, version: archivedVersion + 1 });
      }
      expect(restored).toEqual([['RestoreCard'], [], []]);
    });

    it('restores a card into another column, in rank order among its cards, and out of the archived cards of its own: no refetch', async () => {
      const card = columnNamed(b.board()!, 'Doing').cards.edges[0]!.node;
      // The watchers also show the archived cards of the card's column.
      const archivedLists = watchers().map((watcher) => watchArchived(watcher, todoId));
      const archivedIs = (ids: string[], what: string) =>
        until(
          () => archivedLists.every((list) => JSON.stringify(list.ids()) === JSON.stringify(ids)),
          what,
        );
      try {
        await archivedIs([], 'the empty archived cards in every watcher');
        let archivedVersion = 0;
        const archived = await observe(async () => {
          const { archiveCard } = await a.mutate(ArchiveCardDocument, {
            input: { cardId: card.id, expectedVersion: card.version },
          });
          archivedVersion = expectSuccess(archiveCard, 'ArchiveCardSuccess').card.version;
        });
        await archivedIs([card.id], 'the archived card in every watcher');
        expect(archived).toEqual([['ArchiveCard'], [], []]);

        const requests = await observe(() =>
          a.mutate(RestoreCardDocument, {
            input: { cardId: card.id, toColumnId: spareId, expectedVersion: archivedVersion },
          }),
        );
        for (const watcher of watchers()) {
          expect(cardIds(watcher.board()!, 'Spare')).toEqual([card.id]);
          expect(cardIds(watcher.board()!, 'Doing')).toEqual([cards[1]!.id, cards[2]!.id]);
        }
        // The push names the archived cards of the column the card left: it leaves them.
        await archivedIs([], 'the restored card to leave every archived list');
        expect(requests).toEqual([['RestoreCard'], [], []]);
      } finally {
        archivedLists.forEach((list) => list.stop());
      }
    });

    it('takes an archived column out of the board: no refetch', async () => {
      // Emptied first: a column with live cards is refused (ColumnNotEmptyError).
      const card = columnNamed(b.board()!, 'Spare').cards.edges[0]!.node;
      const refused = await a.mutate(ArchiveColumnDocument, {
        input: { columnId: spareId, expectedVersion: columnNamed(b.board()!, 'Spare').version },
      });
      expect(refused.archiveColumn).toMatchObject({
        __typename: 'ColumnNotEmptyError',
        columnId: spareId,
        cardCount: 1,
      });
      expectSuccess(
        await alice.archiveCard({ input: { cardId: card.id, expectedVersion: card.version } }),
        'ArchiveCardSuccess',
      );
      await expectCurrent();
      const spare = columnNamed(b.board()!, 'Spare');
      const requests = await observe(() =>
        a.mutate(ArchiveColumnDocument, {
          input: { columnId: spareId, expectedVersion: spare.version },
        }),
      );
      for (const watcher of watchers()) {
        expect(watcher.board()!.columns.map((column) => column.name)).toEqual(['Doing']);
      }
      expect(requests).toEqual([['ArchiveColumn'], [], []]);
    });

    it("shows the board's archived flag and takes it out of every user's boards list, then back in on restore: no refetch", async () => {
      const version = b.board()!.version;
      let archivedVersion = 0;
      const archived = await observe(async () => {
        const { archiveBoard } = await a.mutate(ArchiveBoardDocument, {
          input: { boardId, expectedVersion: version },
        });
        archivedVersion = expectSuccess(archiveBoard, 'ArchiveBoardSuccess').board.version;
      });
      for (const client of [a, b, c]) expect(client.board()).toMatchObject({ archived: true });
      await until(
        () =>
          boardLists.every((list) => JSON.stringify(list.ids()) === JSON.stringify([otherBoardId])),
        'the archived board to leave every boards list',
      );
      expect(archived).toEqual([['ArchiveBoard'], [], []]);

      // Read-only now: a write answers BoardArchivedError and changes nothing.
      const card = columnNamed(b.board()!, 'Doing').cards.edges[0]!.node;
      expect(
        await alice.editCard({
          input: { cardId: card.id, expectedVersion: card.version, title: 'x' },
        }),
      ).toMatchObject({ __typename: 'BoardArchivedError', boardId });

      const restored = await observe(() =>
        a.mutate(RestoreBoardDocument, { input: { boardId, expectedVersion: archivedVersion } }),
      );
      for (const client of [a, b, c]) expect(client.board()).toMatchObject({ archived: false });
      await until(
        () =>
          boardLists.every(
            (list) => JSON.stringify(list.ids()) === JSON.stringify([boardId, otherBoardId]),
          ),
        'the restored board to come back, newest first, into every boards list',
      );
      expect(restored).toEqual([['RestoreBoard'], [], []]);
      // The lists were kept from the pushes: no Boards query went out again.
      for (const client of [a, b, c]) {
        expect(client.requests.filter((name) => name === 'Boards')).toEqual(['Boards']);
      }
    });

    it("shows a changed role, an added and a removed member in every cache, and each viewer's own role: no refetch", async () => {
      const roles = () => [a, b, c].map((client) => client.board()!.viewerRole);
      const roleOf = (board: WatchedBoard, username: string) =>
        board.memberships.find((m) => m.user.username === username)?.role;
      expect(roles()).toEqual(['OWNER', 'EDITOR', 'EDITOR']);

      const demoted = await observe(async () => {
        const { setMemberRole } = await a.mutate(SetMemberRoleDocument, {
          input: { boardId, userId: bobId, role: 'VIEWER', expectedVersion: b.board()!.version },
        });
        expectSuccess(setMemberRole, 'SetMemberRoleSuccess');
      });
      // Bob's own role changed; Alice and Carol see his new role in the memberships.
      expect(roles()).toEqual(['OWNER', 'VIEWER', 'EDITOR']);
      for (const client of [a, b, c]) expect(roleOf(client.board()!, 'bob')).toBe('VIEWER');
      expect(demoted).toEqual([['SetMemberRole'], [], []]);

      const dave = await s.register('dave');
      const added = await observe(async () => {
        const { addMember } = await a.mutate(AddMemberDocument, {
          input: { boardId, username: 'dave', role: 'VIEWER', expectedVersion: b.board()!.version },
        });
        expectSuccess(addMember, 'AddMemberSuccess');
      });
      for (const client of [a, b, c]) {
        expect(client.board()!.memberships.map((m) => m.user.username)).toEqual([
          'alice',
          'bob',
          'carol',
          'dave',
        ]);
        expect(client.board()!.members.map((m) => m.id)).toContain(dave.id);
        expect(roleOf(client.board()!, 'dave')).toBe('VIEWER');
      }
      expect(added).toEqual([['AddMember'], [], []]);

      const removed = await observe(async () => {
        const { removeMember } = await a.mutate(RemoveMemberDocument, {
          input: { boardId, userId: dave.id, expectedVersion: b.board()!.version },
        });
        expectSuccess(removeMember, 'RemoveMemberSuccess');
      });
      for (const client of [a, b, c]) {
        expect(client.board()!.memberships.map((m) => m.user.username)).toEqual([
          'alice',
          'bob',
          'carol',
        ]);
        expect(client.board()!.members.map((m) => m.id)).not.toContain(dave.id);
      }
      expect(removed).toEqual([['RemoveMember'], [], []]);

      // Bob again an editor: his own role comes back from the push alone.
      const promoted = await observe(async () => {
        const { setMemberRole } = await a.mutate(SetMemberRoleDocument, {
          input: { boardId, userId: bobId, role: 'EDITOR', expectedVersion: b.board()!.version },
        });
        expectSuccess(setMemberRole, 'SetMemberRoleSuccess');
      });
      expect(roles()).toEqual(['OWNER', 'EDITOR', 'EDITOR']);
      expect(promoted).toEqual([['SetMemberRole'], [], []]);
    });
  },
);
