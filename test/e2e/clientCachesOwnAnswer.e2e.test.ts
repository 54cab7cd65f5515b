import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { MoveCardDocument } from '../../src/sdk/generated/graphql.js';
import { expectSuccess } from '../support/expectSuccess.js';
import {
  openLiveCacheClient,
  plain,
  type CacheLibrary,
  type LiveCacheClient,
} from '../support/liveCaches.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The viewer's own mutation answer and the pushes travel on different connections. An
 * answer carries its columns (their first cards, `cardCount`, `version`) as they were
 * when it was read; when another member's later change to such a column was pushed and
 * applied before that answer arrives, the library writes the older column over it. The
 * binding must notice and bring the column back (it may refetch it).
 */
describe.each<CacheLibrary>(['apollo', 'urql'])(
  'an own answer landing after a newer push (%s)',
  (library) => {
    let s: TestServer;
    let a: LiveCacheClient | undefined;

    beforeAll(async () => {
      s = await startTestServer();
    });
    afterAll(async () => {
      await a?.close();
      await s?.close();
    });

    it("does not leave the column without the other member's card", async () => {
      const graphqlUrl = `${s.url}/graphql`;
      const aliceUser = await s.register('alice');
      const bobUser = await s.register('bob');
      const alice = createCorkboardClient({ url: graphqlUrl, token: aliceUser.token });
      const bob = createCorkboardClient({ url: graphqlUrl, token: bobUser.token });
      const board = expectSuccess(
        await alice.createBoard({ input: { name: 'Race' } }),
        'CreateBoardSuccess',
      ).board;
      const withBob = expectSuccess(
        await alice.addMember({
          input: { boardId: board.id, username: 'bob', expectedVersion: board.version },
        }),
        'AddMemberSuccess',
      ).board;
      const todo = expectSuccess(
        await alice.addColumn({
          input: { boardId: board.id, name: 'Todo', expectedVersion: withBob.version },
        }),
        'AddColumnSuccess',
      );
      const done = expectSuccess(
        await alice.addColumn({
          input: { boardId: board.id, name: 'Done', expectedVersion: todo.board.version },
        }),
        'AddColumnSuccess',
      );
      const { card } = expectSuccess(
        await alice.addCard({ input: { columnId: todo.column.id, title: 'mine' } }),
        'AddCardSuccess',
      );

      let answerHeld!: () => void;
      const held = new Promise<void>((resolve) => (answerHeld = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      a = await openLiveCacheClient(library, {
        graphqlUrl,
        token: aliceUser.token,
        boardId: board.id,
        holdAnswer: async (operationName) => {
          if (operationName !== 'MoveCard') return;
          answerHeld();
          await released;
        },
      });
      const watcher = a;

      // Alice's move is committed and answered; the answer is held at her client.
      const moving = watcher.mutate(MoveCardDocument, {
        input: { cardId: card.id, toColumnId: done.column.id, expectedVersion: card.version },
      });
      await held;
      // Bob adds a card to the same column; its push reaches Alice's cache first.
      const bobs = expectSuccess(
        await bob.addCard({ input: { columnId: done.column.id, title: 'bobs' } }),
        'AddCardSuccess',
      ).card;
      await watcher.waitForBoard((shown) =>
        shown.columns.some((c) => c.cards.edges.some((e) => e.node.id === bobs.id)),
      );
      // Then Alice's answer lands, with the Done column as it was before Bob's card.
      release();
      await moving;

      const fresh = plain(await watcher.fresh());
      await watcher.waitForBoard((shown) => JSON.stringify(plain(shown)) === JSON.stringify(fresh));
      expect(plain(watcher.board())).toEqual(fresh);
    });
  },
);
