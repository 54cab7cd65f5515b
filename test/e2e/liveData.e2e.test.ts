import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { foldEvents } from '../../src/boards/aggregates.js';
import { toStreamName } from '../../src/boards/streams.js';
import { rawIdOf, toGlobalId } from '../../src/graphql/globalIds.js';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { ChangeHeadDocument } from '../../src/sdk/generated/graphql.js';
import { expectSuccess } from '../support/expectSuccess.js';
import { until } from '../support/rawSocket.js';
import { startTestServer, type TestServer } from '../support/server.js';

// `BoardChange.changed` and `cardEdges`: each change carries the resources its commit
// changed, as that commit left them, selected by the SDK's own fragments.

type Changed = BoardChange['changed'][number];
type ChangedCard = Extract<Changed, { __typename: 'Card' }>;

/** Follows a board's changes with the SDK's `BoardChanges` document, collecting them. */
function follow(client: CorkboardClient, boardId: string, after?: string) {
  const received: BoardChange[] = [];
  const abort = new AbortController();
  const done = (async () => {
    for await (const change of client.boardChanges(boardId, {
      signal: abort.signal,
      ...(after ? { after } : {}),
    })) {
      received.push(change);
    }
  })();
  return {
    received,
    async stop() {
      abort.abort();
      await done;
    },
  };
}

const cardsIn = (change: BoardChange) =>
  change.changed.filter((node): node is ChangedCard => node.__typename === 'Card');

describe('data-carrying board changes', () => {
  let s: TestServer;
  let alice: CorkboardClient;
  let boardId: string;
  let boardVersion: number;
  let todo: string;
  let done: string;

  beforeAll(async () => {
    s = await startTestServer();
    const user = await s.register('alice');
    alice = createCorkboardClient({
      url: `${s.url}/graphql`,
      token: user.token,
      webSocketImpl: WebSocket,
    });
    const board = expectSuccess(
      await alice.createBoard({ input: { name: 'Data' } }),
      'CreateBoardSuccess',
    ).board;
    boardId = board.id;
    boardVersion = board.version;
    for (const name of ['Todo', 'Done']) {
      const added = expectSuccess(
        await alice.addColumn({ input: { boardId, name, expectedVersion: boardVersion } }),
        'AddColumnSuccess',
      );
      boardVersion = added.board.version;
      if (name === 'Todo') todo = added.column.id;
      else done = added.column.id;
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('carries what each kind of change made, equal to a fresh query of it', async () => {
    const live = follow(alice, boardId);
    await until(() => s.app.live.stats().subscribers === 1, 'the subscription');
    /** Runs `write`, waits for its change, and checks its data against fresh reads. */
    const next = async (write: () => Promise<unknown>) => {
      const count = live.received.length;
      await write();
      await until(() => live.received.length > count, 'the change');
      const change = live.received.at(-1)!;
      for (const node of change.changed) {
        const fresh = await alice.node({ id: node.id });
        // The push carries a board as every member sees it: all of the query's fields but
        // the caller's own viewerRole (the live bindings derive it from memberships).
        if (fresh?.__typename === 'Board') {
          const { viewerRole: _ownRole, ...shared } = fresh;
          expect(node).toEqual(shared);
        } else {
          expect(node).toEqual(fresh);
        }
      }
      // Every resource the change names is carried, at the version it names.
      expect(change.changed.map((n) => [n.id, 'version' in n ? n.version : null]).sort()).toEqual(
        change.invalidated.map((i) => [i.id, i.version]).sort(),
      );
      return change;
    };
    try {
      const added = await next(() => alice.addCard({ input: { columnId: todo, title: 'a' } }));
      expect(added.changed.map((n) => n.__typename).sort()).toEqual(['Card', 'Column']);
      const card = cardsIn(added)[0]!;
      expect(card).toMatchObject({ title: 'a', column: { id: todo }, archived: false });
      // Its edge is the one `Column.cards` has for it.
      const page = await alice.column({ id: todo });
      if (page?.__typename !== 'Column') throw new Error('no column');
      expect(added.cardEdges).toEqual([
        { cursor: page.cards.edges[0]!.cursor, node: { id: card.id } },
      ]);

      const second = cardsIn(
        await next(() => alice.addCard({ input: { columnId: todo, title: 'b' } })),
      )[0]!;
      const edited = await next(() =>
        alice.editCard({
          input: { cardId: card.id, expectedVersion: card.version, title: 'a!', labels: ['x'] },
        }),
      );
      expect(edited.changed).toEqual([expect.objectContaining({ title: 'a!', labels: ['x'] })]);

      // Within a column: the card's new rank, and its new edge.
      const within = await next(() =>
        alice.moveCard({
          input: {
            cardId: second.id,
            toColumnId: todo,
            beforeCardId: card.id,
            expectedVersion: second.version,
          },
        }),
      );
      const moved = cardsIn(within)[0]!;
      expect(moved.rank < cardsIn(edited)[0]!.rank).toBe(true);
      expect(within.cardEdges.map((e) => e.node.id)).toEqual([second.id]);

      // Across: the card in its new column, and both columns' counts.
      const across = await next(() =>
        alice.moveCard({
          input: { cardId: second.id, toColumnId: done, expectedVersion: moved.version },
        }),
      );
      expect(cardsIn(across)[0]).toMatchObject({ column: { id: done } });
      const counts = Object.fromEntries(
        across.changed.flatMap((n) => (n.__typename === 'Column' ? [[n.id, n.cardCount]] : [])),
      );
      expect(counts).toEqual({ [todo]: 1, [done]: 1 });

      // Archived: the card says so and has no edge.
      const archived = await next(() =>
        alice.archiveCard({
          input: { cardId: second.id, expectedVersion: cardsIn(across)[0]!.version },
        }),
      );
      expect(cardsIn(archived)[0]).toMatchObject({ archived: true });
      expect(archived.cardEdges).toEqual([]);

      // Board and columns: rename, column move, WIP limit.
      const renamed = await next(() =>
        alice.renameBoard({ input: { boardId, name: 'Data!', expectedVersion: boardVersion } }),
      );
      const board = renamed.changed[0]!;
      if (board.__typename !== 'Board') throw new Error('no board');
      expect(board.name).toBe('Data!');
      const columnMove = await next(() =>
        alice.moveColumn({ input: { columnId: todo, expectedVersion: board.version } }),
      );
      const reordered = columnMove.changed.find((n) => n.__typename === 'Board');
      if (reordered?.__typename !== 'Board') throw new Error('no board');
      expect(reordered.columns.map((c) => c.id)).toEqual([todo, done].reverse());
      const column = (await alice.column({ id: todo }))!;
      if (column.__typename !== 'Column') throw new Error('no column');
      const wip = await next(() =>
        alice.setWipLimit({
          input: { columnId: todo, wipLimit: 50, expectedVersion: column.version },
        }),
      );
      expect(wip.changed).toEqual([expect.objectContaining({ id: todo, wipLimit: 50 })]);
    } finally {
      await live.stop();
    }
  });

  it("gives each change its own commit's state under concurrent writes, live and replayed alike", async () => {
    const { changeHead: start } = await alice.request(ChangeHeadDocument);
    if (start === null) throw new Error('no change head');
    const live = follow(alice, boardId);
    await until(() => s.app.live.stats().subscribers === 1, 'the subscription');
    try {
      const cards: { id: string; version: number }[] = [];
      for (let i = 0; i < 6; i++) {
        const { card } = expectSuccess(
          await alice.addCard({ input: { columnId: todo, title: `c${i}` } }),
          'AddCardSuccess',
        );
        cards.push({ id: card.id, version: card.version });
      }
      // Six writers at once, each changing its card eight times (edits and moves
      // between the columns), so that most changes are delivered while later commits of
      // the same board are already projected.
      await Promise.all(
        cards.map(async (card, n) => {
          for (let i = 0; i < 8; i++) {
            const result =
              i % 3 === 2
                ? expectSuccess(
                    await alice.moveCard({
                      input: {
                        cardId: card.id,
                        toColumnId: (i + n) % 2 === 0 ? done : todo,
                        expectedVersion: card.version,
                      },
                    }),
                    'MoveCardSuccess',
                  )
                : expectSuccess(
                    await alice.editCard({
                      input: {
                        cardId: card.id,
                        expectedVersion: card.version,
                        title: `c${n}.${i}`,
                        labels: [`l${i}`],
                      },
                    }),
                    'EditCardSuccess',
                  );
            card.version = result.card.version;
          }
        }),
      );
      const total = cards.length * 9;
      await until(() => live.received.length >= total, `${total} changes`);
      // Each card as of each version, from its events: what its commit left.
      const asOf = async (id: string, version: number) => {
        const events = await s.storage.store.readStream(toStreamName('card', rawIdOf(id, 'Card')!));
        return foldEvents(
          'card',
          events.filter((e) => e.version <= version),
        );
      };
      for (const change of live.received) {
        for (const card of cardsIn(change)) {
          const state = await asOf(card.id, card.version);
          if (state.status === 'absent') throw new Error('absent card');
          expect({
            title: card.title,
            labels: card.labels,
            column: card.column.id,
            rank: card.rank,
          }).toEqual({
            title: state.title,
            labels: [...state.labels],
            column: toGlobalId('Column', state.columnId),
            rank: state.rank,
          });
        }
      }
      // A replay of the same changes, long after, carries the same data.
      const replay = follow(alice, boardId, start);
      try {
        await until(() => replay.received.length >= live.received.length, 'the replay');
        expect(replay.received.slice(0, live.received.length)).toEqual(live.received);
      } finally {
        await replay.stop();
      }
    } finally {
      await live.stop();
    }
  });
});
