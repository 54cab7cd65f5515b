import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { ChangeHeadDocument } from '../../src/sdk/generated/graphql.js';
import { openMemoryStorage } from '../../src/storage.js';
import type {
  ReadCollection,
  ReadDoc,
  ReadModelStore,
  ReadView,
} from '../../src/projector/types.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';

/** Narrows a result union to one member, failing the test with the whole result otherwise. */
function expectMember<
  R extends { __typename: string } | null,
  T extends NonNullable<R>['__typename'],
>(result: R, typename: T): Extract<R, { __typename: T }> {
  if (result?.__typename !== typename) {
    throw new Error(`expected ${typename}, got ${JSON.stringify(result)}`);
  }
  return result as Extract<R, { __typename: T }>;
}

/** A client of the server `s`, signed in with `token` when given. */
const clientOf = (s: TestServer, token?: string) =>
  createCorkboardClient({ url: `${s.url}/graphql`, ...(token ? { token } : {}) });

/** Registers `username` and returns a client signed in as that user. */
async function register(s: TestServer, username: string): Promise<CorkboardClient> {
  const result = await clientOf(s).registerUser({ input: { username, displayName: username } });
  return clientOf(s, expectMember(result, 'RegisterUserSuccess').token);
}

async function createBoard(c: CorkboardClient, name = 'Board') {
  return expectMember(await c.createBoard({ input: { name } }), 'CreateBoardSuccess').board;
}

async function addColumn(
  c: CorkboardClient,
  boardId: string,
  name: string,
  wipLimit: number | null = null,
) {
  const board = expectMember(await c.node({ id: boardId }), 'Board');
  const r = await c.addColumn({
    input: { boardId, name, wipLimit, expectedVersion: board.version },
  });
  return expectMember(r, 'AddColumnSuccess').column;
}

async function addCard(c: CorkboardClient, columnId: string, title: string) {
  return expectMember(await c.addCard({ input: { columnId, title } }), 'AddCardSuccess').card;
}

/** The first change of board `boardId` after `cursor`, as a list (of one). */
async function firstChangeAfter(c: CorkboardClient, boardId: string, cursor: string | null) {
  const abort = new AbortController();
  const changes = [];
  for await (const change of c.boardChanges(boardId, { after: cursor, signal: abort.signal })) {
    changes.push(change);
    abort.abort();
  }
  return changes;
}

/** The whole board, every card of every column (at most 500 per column). */
const readBoard = (c: CorkboardClient, id: string) => c.board({ id, cardsPerColumn: 500 });

describe('board API over HTTP (memory store)', () => {
  let s: TestServer;
  let alice: CorkboardClient;
  beforeAll(async () => {
    s = await startTestServer({ env: { ...NO_CLIENT_LIMITS } });
    alice = await register(s, 'alice');
  });
  afterAll(async () => {
    await s.close();
  });

  it('registers exactly one of 20 simultaneous registrations of one username in different cases', async () => {
    const names = Array.from({ length: 20 }, (_, i) =>
      [...'racer'].map((c, j) => ((i >> j) & 1 ? c.toUpperCase() : c)).join(''),
    );
    const anonymous = clientOf(s);
    const results = await Promise.all(
      names.map((username) =>
        anonymous.registerUser({ input: { username, displayName: 'Racer' } }),
      ),
    );
    const types = results.map((r) => r.__typename);
    expect(types.filter((t) => t === 'RegisterUserSuccess')).toHaveLength(1);
    expect(types.filter((t) => t === 'UsernameTakenError')).toHaveLength(19);
  });

  it('lets exactly 3 of 30 concurrent moves into a column with WIP limit 3 succeed', async () => {
    const board = await createBoard(alice);
    const source = await addColumn(alice, board.id, 'Backlog');
    const target = await addColumn(alice, board.id, 'Doing', 3);
    const cards = [];
    for (let i = 0; i < 30; i++) cards.push(await addCard(alice, source.id, `card ${i}`));
    const results = await Promise.all(
      cards.map((card) =>
        alice.moveCard({
          input: { cardId: card.id, toColumnId: target.id, expectedVersion: card.version },
        }),
      ),
    );
    const types = results.map((r) => r.__typename);
    expect(types.filter((t) => t === 'MoveCardSuccess')).toHaveLength(3);
    expect(types.filter((t) => t === 'WipLimitReachedError')).toHaveLength(27);
    const column = expectMember(await alice.column({ id: target.id }), 'Column');
    expect(column.cardCount).toBe(3);
    expect(column.cards.edges).toHaveLength(3);
  });

  it('answers a move of a card to the place it holds with the card as it is, and writes and pushes nothing', async () => {
    const carl = createCorkboardClient({
      url: `${s.url}/graphql`,
      token: (await s.register('carl')).token,
      webSocketImpl: WebSocket,
    });
    const board = await createBoard(carl);
    const todo = await addColumn(carl, board.id, 'Todo');
    const first = await addCard(carl, todo.id, 'first');
    const middle = await addCard(carl, todo.id, 'middle');
    const last = await addCard(carl, todo.id, 'last');
    const { changeHead } = await carl.request(ChangeHeadDocument);
    const head = await s.storage.store.headPosition();
    const columnBefore = expectMember(await carl.column({ id: todo.id }), 'Column');
    const stays = [
      { card: middle, afterCardId: first.id },
      { card: middle, beforeCardId: last.id },
      { card: middle, afterCardId: first.id, beforeCardId: last.id },
      { card: first, beforeCardId: middle.id },
      { card: last },
    ];
    for (const { card, ...place } of stays) {
      const payload = expectMember(
        await carl.moveCard({
          input: { cardId: card.id, toColumnId: todo.id, expectedVersion: card.version, ...place },
        }),
        'MoveCardSuccess',
      );
      expect(payload.card).toMatchObject({ id: card.id, version: card.version });
      expect(payload.from).toMatchObject({ id: todo.id, version: columnBefore.version });
      expect(payload.to).toMatchObject({ id: todo.id, version: columnBefore.version });
      expect(payload).toMatchObject({ merged: false, replayed: false });
    }
    expect(await s.storage.store.headPosition()).toBe(head);
    const columnAfter = expectMember(await carl.column({ id: todo.id }), 'Column');
    expect(columnAfter.version).toBe(columnBefore.version);
    expect(columnAfter.cards.edges.map((e) => e.node.id)).toEqual([first.id, middle.id, last.id]);

    // Then a real move: the first change after the head is that one, none before it.
    const moved = expectMember(
      await carl.moveCard({
        input: {
          cardId: last.id,
          toColumnId: todo.id,
          expectedVersion: last.version,
          beforeCardId: first.id,
        },
      }),
      'MoveCardSuccess',
    );
    expect(moved.card.version).toBe(last.version + 1);
    const changes = await firstChangeAfter(carl, board.id, changeHead);
    expect(changes.map((c) => c.operation)).toEqual(['moveCard']);
    expect(changes[0]!.invalidated).toContainEqual(
      expect.objectContaining({ typename: 'Card', id: last.id }),
    );
  });

  it('answers an edit giving fields the values they hold with the card as it is, writing and pushing nothing; a partly new edit writes and names only what changed', async () => {
    const dora = createCorkboardClient({
      url: `${s.url}/graphql`,
      token: (await s.register('dora')).token,
      webSocketImpl: WebSocket,
    });
    const board = await createBoard(dora);
    const todo = await addColumn(dora, board.id, 'Todo');
    const card = await addCard(dora, todo.id, 'title');
    const labelled = expectMember(
      await dora.editCard({
        input: { cardId: card.id, expectedVersion: card.version, labels: ['a', 'b'] },
      }),
      'EditCardSuccess',
    ).card;
    const { changeHead } = await dora.request(ChangeHeadDocument);
    const head = await s.storage.store.headPosition();
    const same = [
      { title: 'title' },
      { labels: ['a', 'b'] },
      { title: 'title', description: '', done: false, assigneeId: null, labels: ['a', 'b'] },
    ];
    for (const fields of same) {
      const payload = expectMember(
        await dora.editCard({
          input: { cardId: card.id, expectedVersion: labelled.version, ...fields },
        }),
        'EditCardSuccess',
      );
      expect(payload.card).toMatchObject({ id: card.id, version: labelled.version });
      expect(payload).toMatchObject({ merged: false, replayed: false });
    }
    expect(await s.storage.store.headPosition()).toBe(head);

    // Labels in another order, and the same title: only the labels are written.
    const edited = expectMember(
      await dora.editCard({
        input: {
          cardId: card.id,
          expectedVersion: labelled.version,
          title: 'title',
          labels: ['b', 'a'],
        },
      }),
      'EditCardSuccess',
    );
    expect(edited.card).toMatchObject({ version: labelled.version + 1, labels: ['b', 'a'] });
    const changes = await firstChangeAfter(dora, board.id, changeHead);
    expect(changes.map((c) => c.operation)).toEqual(['editCard']);
    expect(changes[0]!.invalidated).toEqual([
      expect.objectContaining({ typename: 'Card', id: card.id, fields: ['labels'] }),
    ]);
  });

  it('lets exactly one of 50 concurrent title edits at one version win; the others get the exact conflict', async () => {
    const board = await createBoard(alice);
    const column = await addColumn(alice, board.id, 'Todo');
    const card = await addCard(alice, column.id, 'original');
    const payloads = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        alice.editCard({
          input: { cardId: card.id, expectedVersion: card.version, title: `title ${i}` },
        }),
      ),
    );
    expect(payloads.filter((p) => p.__typename === 'EditCardSuccess')).toHaveLength(1);
    const conflicts = payloads.filter((p) => p.__typename === 'VersionConflictError');
    expect(conflicts).toHaveLength(49);
    for (const c of conflicts) {
      expect(c).toMatchObject({
        expectedVersion: card.version,
        actualVersion: card.version + 1,
        conflicts: [
          {
            version: card.version + 1,
            eventType: 'CardEdited',
            fields: ['title'],
            actor: { username: 'alice' },
          },
        ],
      });
    }
    const after = expectMember(await alice.card({ id: card.id }), 'Card');
    expect(after.version).toBe(card.version + 1);
  });

  it('merges concurrent edits of different fields made at the same version', async () => {
    const board = await createBoard(alice);
    const column = await addColumn(alice, board.id, 'Todo');
    const card = await addCard(alice, column.id, 'draft');
    const payloads = await Promise.all([
      alice.editCard({
        input: { cardId: card.id, expectedVersion: card.version, title: 'final title' },
      }),
      alice.editCard({
        input: { cardId: card.id, expectedVersion: card.version, description: 'details' },
      }),
    ]);
    const successes = payloads.map((p) => expectMember(p, 'EditCardSuccess'));
    expect(successes.map((p) => p.merged).sort()).toEqual([false, true]);
    const after = expectMember(await alice.card({ id: card.id }), 'Card');
    expect({ title: after.title, description: after.description, version: after.version }).toEqual({
      title: 'final title',
      description: 'details',
      version: card.version + 2,
    });
  });

  // 200 moves in flight with their retries: on a loaded 2-core machine this takes far longer
  // than a usual test, so it gets its own bound; if it still runs out, the moves stop with it
  // instead of loading the server under the tests that follow.
  it(
    'keeps a total order and one column per card through 200 random concurrent moves, equal to a fresh rebuild',
    { timeout: 180_000 },
    async () => {
      let finished = false;
      onTestFinished(() => {
        finished = true;
      });
      const board = await createBoard(alice);
      const columns: { id: string; version: number }[] = [];
      for (const name of ['A', 'B', 'C']) columns.push(await addColumn(alice, board.id, name));
      const cards: { id: string; version: number }[] = [];
      for (let i = 0; i < 30; i++) cards.push(await addCard(alice, columns[i % 3]!.id, `c${i}`));
      let seed = 7;
      const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      const plan = Array.from({ length: 200 }, () => ({
        card: cards[random(cards.length)]!,
        to: columns[random(3)]!,
        place: random(3),
      }));
      const movesFrom = await s.storage.store.headPosition();
      let moved = 0;
      await Promise.all(
        plan.map(async ({ card, to, place }) => {
          let version: number | null = null;
          for (let attempt = 0; attempt < 50 && !finished; attempt++) {
            const [current, target] = await Promise.all([
              alice.card({ id: card.id }),
              alice.column({ id: to.id }),
            ]);
            // Another writer's move may not be projected yet: the conflict's actualVersion is fresher.
            version = Math.max(version ?? 0, expectMember(current, 'Card').version);
            const siblings = expectMember(target, 'Column')
              .cards.edges.map((e) => e.node.id)
              .filter((id) => id !== card.id);
            const anchor =
              place === 0 || siblings.length === 0
                ? {}
                : place === 1
                  ? { afterCardId: siblings[0] }
                  : { beforeCardId: siblings.at(-1) };
            const payload = await alice.moveCard({
              input: { cardId: card.id, toColumnId: to.id, expectedVersion: version, ...anchor },
            });
            if (payload.__typename === 'MoveCardSuccess') return void moved++;
            // A sibling used as anchor may have moved away meanwhile: retry on fresh state.
            expect(['VersionConflictError', 'ValidationError']).toContain(payload.__typename);
            if (payload.__typename === 'VersionConflictError') version = payload.actualVersion;
          }
        }),
      );
      expect(moved).toBeGreaterThan(150);

      const before = await readBoard(alice, board.id);
      const seen = new Map<string, string>();
      for (const column of before!.columns) {
        const ranks = column.cards.edges.map((e) => e.node.rank);
        expect(ranks).toEqual([...ranks].sort());
        expect(new Set(ranks).size).toBe(ranks.length);
        expect(column.cardCount).toBe(ranks.length);
        for (const { node } of column.cards.edges) {
          expect(seen.has(node.id)).toBe(false);
          seen.set(node.id, column.id);
          expect(node.column.id).toBe(column.id);
        }
      }
      expect(seen.size).toBe(cards.length);
      // Every move that wrote, and nothing else, bumped its card's version by one; a move
      // to the place the card held (the end of its own column, say) succeeds and writes nothing.
      const moveCommits = (
        await s.storage.store.readAll({ after: movesFrom, limit: 100_000 })
      ).filter((commit) => commit.operation === 'moveCard').length;
      expect(moveCommits).toBeLessThanOrEqual(moved);
      expect(moveCommits).toBeGreaterThan(100);
      const versions = before!.columns.flatMap((c) => c.cards.edges.map((e) => e.node.version - 1));
      expect(versions.reduce((a, b) => a + b, 0)).toBe(moveCommits);

      await s.app.projector.rebuild();
      const after = await readBoard(alice, board.id);
      expect(after).toEqual(before);
    },
  );

  it('hides a board from a non-member on every read path and refuses every change', async () => {
    const board = await createBoard(alice, 'Secret');
    const column = await addColumn(alice, board.id, 'Todo');
    const card = await addCard(alice, column.id, 'hidden');
    const mallory = await register(s, 'mallory');
    const reads = await Promise.all([
      mallory.board({ id: board.id }),
      mallory.node({ id: board.id }),
      mallory.node({ id: column.id }),
      mallory.node({ id: card.id }),
      mallory.boards(),
    ]);
    expect(reads).toEqual([null, null, null, null, []]);

    const attempts: [string, () => Promise<{ __typename: string }>][] = [
      [
        'renameBoard',
        () =>
          mallory.renameBoard({
            input: { boardId: board.id, name: 'pwned', expectedVersion: board.version },
          }),
      ],
      [
        'addMember',
        () =>
          mallory.addMember({
            input: { boardId: board.id, username: 'mallory', expectedVersion: 1 },
          }),
      ],
      [
        'addColumn',
        () => mallory.addColumn({ input: { boardId: board.id, name: 'x', expectedVersion: 2 } }),
      ],
      [
        'moveColumn',
        () => mallory.moveColumn({ input: { columnId: column.id, expectedVersion: 2 } }),
      ],
      [
        'setWipLimit',
        () =>
          mallory.setWipLimit({ input: { columnId: column.id, wipLimit: 1, expectedVersion: 1 } }),
      ],
      ['addCard', () => mallory.addCard({ input: { columnId: column.id, title: 'x' } })],
      [
        'editCard',
        () => mallory.editCard({ input: { cardId: card.id, expectedVersion: 1, title: 'x' } }),
      ],
      [
        'moveCard',
        () =>
          mallory.moveCard({
            input: { cardId: card.id, toColumnId: column.id, expectedVersion: 1 },
          }),
      ],
      [
        'archiveCard',
        () => mallory.archiveCard({ input: { cardId: card.id, expectedVersion: 1 } }),
      ],
      ['archiveDoneCards', () => mallory.archiveDoneCards({ input: { columnId: column.id } })],
    ];
    const headBefore = await s.storage.store.headPosition();
    for (const [field, attempt] of attempts) {
      const r = await attempt();
      expect([field, r.__typename]).toEqual([field, 'NotFoundError']);
    }
    expect(await s.storage.store.headPosition()).toBe(headBefore);
  });

  it('answers anonymous callers with null me, no boards, and UnauthenticatedError on writes', async () => {
    const anonymous = clientOf(s);
    expect(await Promise.all([anonymous.me(), anonymous.boards()])).toEqual([null, []]);
    const w = await anonymous.createBoard({ input: { name: 'x' } });
    expect(w).toMatchObject({ __typename: 'UnauthenticatedError', code: 'UNAUTHENTICATED' });
    // A token that is no one's is refused, not served as anonymous.
    const bad = clientOf(s, 'not-a-real-token-but-long-enough-xx');
    await expect(bad.me()).rejects.toMatchObject({ codes: ['UNAUTHENTICATED'] });
  });

  it.each<[string, (c: CorkboardClient, ids: Ids) => Promise<{ __typename: string }>, string]>([
    ['an empty board name', (c) => c.createBoard({ input: { name: '   ' } }), 'input.name'],
    [
      'an overlong card title',
      (c, ids) => c.addCard({ input: { columnId: ids.column, title: 'x'.repeat(201) } }),
      'input.title',
    ],
    [
      'a negative WIP limit',
      (c, ids) =>
        c.setWipLimit({ input: { columnId: ids.column, wipLimit: -1, expectedVersion: 1 } }),
      'input.wipLimit',
    ],
    [
      'an ID of the wrong type',
      (c, ids) => c.addCard({ input: { columnId: ids.board, title: 'x' } }),
      'input.columnId',
    ],
    [
      'a malformed ID',
      (c) => c.editCard({ input: { cardId: '%%%', expectedVersion: 1, title: 'x' } }),
      'input.cardId',
    ],
    [
      'an afterCardId outside the target column',
      (c, ids) =>
        c.moveCard({
          input: {
            cardId: ids.card,
            toColumnId: ids.column,
            afterCardId: ids.otherCard,
            expectedVersion: 1,
          },
        }),
      'input.afterCardId',
    ],
  ])(
    'rejects %s with a ValidationError naming the field and writes nothing',
    async (_, send, path) => {
      const board = await createBoard(alice);
      const column = await addColumn(alice, board.id, 'Todo');
      const other = await addColumn(alice, board.id, 'Other');
      const card = await addCard(alice, column.id, 'c');
      const otherCard = await addCard(alice, other.id, 'o');
      const ids: Ids = {
        board: board.id,
        column: column.id,
        card: card.id,
        otherCard: otherCard.id,
      };
      const head = await s.storage.store.headPosition();
      expect(await send(alice, ids)).toMatchObject({
        __typename: 'ValidationError',
        field: path,
        code: 'VALIDATION',
      });
      expect(await s.storage.store.headPosition()).toBe(head);
    },
  );

  it('reads its own writes: a query right after each of 100 mutations sees it', async () => {
    const board = await createBoard(alice);
    const column = await addColumn(alice, board.id, 'Todo');
    const card = await addCard(alice, column.id, 'v0');
    let version = card.version;
    for (let i = 1; i <= 100; i++) {
      const r = await alice.editCard({
        input: { cardId: card.id, expectedVersion: version, title: `v${i}` },
      });
      expect(expectMember(r, 'EditCardSuccess').card).toMatchObject({
        title: `v${i}`,
        version: version + 1,
      });
      version++;
      const q = expectMember(await alice.card({ id: card.id }), 'Card');
      expect({ title: q.title, version: q.version }).toEqual({ title: `v${i}`, version });
    }
  });
});

interface Ids {
  board: string;
  column: string;
  card: string;
  otherCard: string;
}

/** Wraps a read model store so every collection call is counted. */
function countingReadModels(inner: ReadModelStore) {
  const counter = { reads: 0 };
  const wrapView = (view: ReadView): ReadView => ({
    generation: view.generation,
    collection: <T extends ReadDoc>(name: string) => {
      const c = view.collection<T>(name);
      const counted: ReadCollection<T> = {
        get: (...a) => (counter.reads++, c.get(...a)),
        getMany: (...a) => (counter.reads++, c.getMany(...a)),
        find: (...a) => (counter.reads++, c.find(...a)),
        count: (...a) => (counter.reads++, c.count(...a)),
        put: (d) => c.put(d),
        putEach: (d) => c.putEach(d),
        putMany: (d) => c.putMany(d),
        delete: (id) => c.delete(id),
      };
      return counted;
    },
  });
  const store: ReadModelStore = {
    active: async (o) => wrapView(await inner.active(o)),
    view: (g) => wrapView(inner.view(g)),
    createGeneration: () => inner.createGeneration(),
    activate: (g, e) => inner.activate(g, e),
    dropGeneration: (g) => inner.dropGeneration(g),
  };
  return { store, counter };
}

describe('board queries', () => {
  it('answers a board of 20 columns and 500 cards with as few store reads as a board of 2 columns and 2 cards', async () => {
    const storage = openMemoryStorage({});
    const { store, counter } = countingReadModels(storage.projector.readModels);
    const s = await startTestServer({
      env: { ...NO_CLIENT_LIMITS },
      storage: { ...storage, projector: { ...storage.projector, readModels: store } },
    });
    try {
      const user = await register(s, 'reader');
      const readsFor = async (columns: number, cards: number) => {
        const board = await createBoard(user);
        const ids = [];
        for (let i = 0; i < columns; i++)
          ids.push((await addColumn(user, board.id, `col ${i}`)).id);
        for (let i = 0; i < cards; i++) await addCard(user, ids[i % columns]!, `card ${i}`);
        counter.reads = 0;
        const read = await readBoard(user, board.id);
        const total = read!.columns.reduce((n, c) => n + c.cards.edges.length, 0);
        expect(total).toBe(cards);
        return counter.reads;
      };
      const small = await readsFor(2, 2);
      const large = await readsFor(20, 500);
      expect(large).toBe(small);
      expect(large).toBeLessThanOrEqual(6);
    } finally {
      await s.close();
      await storage.close();
    }
  });
});
