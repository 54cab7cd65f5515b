import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMemoryStorage } from '../../src/storage.js';
import type {
  ReadCollection,
  ReadDoc,
  ReadModelStore,
  ReadView,
} from '../../src/projector/types.js';
import { startTestServer, type TestServer } from '../support/server.js';

const BOARD = `fragment B on Board { id version name members { username } columns { id version name wipLimit cardCount cards(first: 500) { edges { node { id version title description done rank column { id } } } } } }`;

async function createBoard(s: TestServer, token: string, name = 'Board') {
  const r = await s.gql(
    `mutation ($i: CreateBoardInput!) { createBoard(input: $i) { __typename ... on CreateBoardSuccess { board { id version } } } }`,
    { i: { name } },
    token,
  );
  return r.data!.createBoard.board as { id: string; version: number };
}

async function addColumn(
  s: TestServer,
  token: string,
  boardId: string,
  name: string,
  wipLimit: number | null = null,
) {
  const { data } = await s.gql(
    `query ($id: ID!) { board(id: $id) { version } }`,
    { id: boardId },
    token,
  );
  const r = await s.gql(
    `mutation ($i: AddColumnInput!) { addColumn(input: $i) { __typename ... on AddColumnSuccess { column { id version } } ... on Error { message } } }`,
    { i: { boardId, name, wipLimit, expectedVersion: data!.board.version } },
    token,
  );
  return r.data!.addColumn.column as { id: string; version: number };
}

async function addCard(s: TestServer, token: string, columnId: string, title: string) {
  const r = await s.gql(
    `mutation ($i: AddCardInput!) { addCard(input: $i) { __typename ... on AddCardSuccess { card { id version } } ... on Error { message } } }`,
    { i: { columnId, title } },
    token,
  );
  if (r.data?.addCard.__typename !== 'AddCardSuccess') throw new Error(JSON.stringify(r));
  return r.data.addCard.card as { id: string; version: number };
}

const MOVE = `mutation ($i: MoveCardInput!) { moveCard(input: $i) { __typename
  ... on MoveCardSuccess { card { id version rank } }
  ... on VersionConflictError { actualVersion }
  ... on Error { code message } } }`;
const EDIT = `mutation ($i: EditCardInput!) { editCard(input: $i) { __typename
  ... on EditCardSuccess { merged card { id version title description } }
  ... on VersionConflictError { expectedVersion actualVersion conflicts { version eventType fields actor { username } } }
  ... on Error { code message } } }`;

describe('board API over HTTP (memory store)', () => {
  let s: TestServer;
  let alice: { id: string; token: string };
  beforeAll(async () => {
    s = await startTestServer();
    alice = await s.register('alice');
  });
  afterAll(async () => {
    await s.close();
  });

  it('registers exactly one of 20 simultaneous registrations of one username in different cases', async () => {
    const names = Array.from(
      { length: 20 },
      (_, i) =>
        [...'racer'].map((c, j) => ((i >> j) & 1 ? c.toUpperCase() : c)).join('') +
        (i >= 16 ? '' : ''),
    );
    const results = await Promise.all(
      names.map((username) =>
        s.gql(
          `mutation ($i: RegisterUserInput!) { registerUser(input: $i) { __typename ... on UsernameTakenError { username code } } }`,
          { i: { username, displayName: 'Racer' } },
        ),
      ),
    );
    const types = results.map((r) => r.data!.registerUser.__typename);
    expect(types.filter((t) => t === 'RegisterUserSuccess')).toHaveLength(1);
    expect(types.filter((t) => t === 'UsernameTakenError')).toHaveLength(19);
  });

  it('lets exactly 3 of 30 concurrent moves into a column with WIP limit 3 succeed', async () => {
    const board = await createBoard(s, alice.token);
    const source = await addColumn(s, alice.token, board.id, 'Backlog');
    const target = await addColumn(s, alice.token, board.id, 'Doing', 3);
    const cards = [];
    for (let i = 0; i < 30; i++) cards.push(await addCard(s, alice.token, source.id, `card ${i}`));
    const results = await Promise.all(
      cards.map((card) =>
        s.gql(
          MOVE,
          { i: { cardId: card.id, toColumnId: target.id, expectedVersion: card.version } },
          alice.token,
        ),
      ),
    );
    const types = results.map((r) => r.data!.moveCard.__typename);
    expect(types.filter((t) => t === 'MoveCardSuccess')).toHaveLength(3);
    expect(types.filter((t) => t === 'WipLimitReachedError')).toHaveLength(27);
    const { data } = await s.gql(
      `query ($id: ID!) { node(id: $id) { ... on Column { cardCount cards { edges { node { id } } } } } }`,
      { id: target.id },
      alice.token,
    );
    expect(data!.node.cardCount).toBe(3);
    expect(data!.node.cards.edges).toHaveLength(3);
  });

  it('lets exactly one of 50 concurrent title edits at one version win; the others get the exact conflict', async () => {
    const board = await createBoard(s, alice.token);
    const column = await addColumn(s, alice.token, board.id, 'Todo');
    const card = await addCard(s, alice.token, column.id, 'original');
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        s.gql(
          EDIT,
          { i: { cardId: card.id, expectedVersion: card.version, title: `title ${i}` } },
          alice.token,
        ),
      ),
    );
    const payloads = results.map((r) => r.data!.editCard);
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
    const { data } = await s.gql(
      `query ($id: ID!) { node(id: $id) { ... on Card { version } } }`,
      { id: card.id },
      alice.token,
    );
    expect(data!.node.version).toBe(card.version + 1);
  });

  it('merges concurrent edits of different fields made at the same version', async () => {
    const board = await createBoard(s, alice.token);
    const column = await addColumn(s, alice.token, board.id, 'Todo');
    const card = await addCard(s, alice.token, column.id, 'draft');
    const [a, b] = await Promise.all([
      s.gql(
        EDIT,
        { i: { cardId: card.id, expectedVersion: card.version, title: 'final title' } },
        alice.token,
      ),
      s.gql(
        EDIT,
        { i: { cardId: card.id, expectedVersion: card.version, description: 'details' } },
        alice.token,
      ),
    ]);
    const payloads = [a.data!.editCard, b.data!.editCard];
    expect(payloads.map((p) => p.__typename)).toEqual(['EditCardSuccess', 'EditCardSuccess']);
    expect(payloads.map((p) => p.merged).sort()).toEqual([false, true]);
    const { data } = await s.gql(
      `query ($id: ID!) { node(id: $id) { ... on Card { title description version } } }`,
      { id: card.id },
      alice.token,
    );
    expect(data!.node).toEqual({
      title: 'final title',
      description: 'details',
      version: card.version + 2,
    });
  });

  it('keeps a total order and one column per card through 200 random concurrent moves, equal to a fresh rebuild', async () => {
    const board = await createBoard(s, alice.token);
    const columns: { id: string; version: number }[] = [];
    for (const name of ['A', 'B', 'C'])
      columns.push(await addColumn(s, alice.token, board.id, name));
    const cards: { id: string; version: number }[] = [];
    for (let i = 0; i < 30; i++)
      cards.push(await addCard(s, alice.token, columns[i % 3]!.id, `c${i}`));
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const plan = Array.from({ length: 200 }, () => ({
      card: cards[random(cards.length)]!,
      to: columns[random(3)]!,
      place: random(3),
    }));
    let moved = 0;
    await Promise.all(
      plan.map(async ({ card, to, place }) => {
        let version: number | null = null;
        for (let attempt = 0; attempt < 50; attempt++) {
          const { data } = await s.gql(
            `query ($id: ID!, $to: ID!) { card: node(id: $id) { ... on Card { version } } to: node(id: $to) { ... on Column { cards { edges { node { id } } } } } }`,
            { id: card.id, to: to.id },
            alice.token,
          );
          // Another writer's move may not be projected yet: the conflict's actualVersion is fresher.
          version = Math.max(version ?? 0, data!.card.version as number);
          const siblings = (data!.to.cards.edges as { node: { id: string } }[])
            .map((e) => e.node.id)
            .filter((id) => id !== card.id);
          const anchor =
            place === 0 || siblings.length === 0
              ? {}
              : place === 1
                ? { afterCardId: siblings[0] }
                : { beforeCardId: siblings.at(-1) };
          const r = await s.gql(
            MOVE,
            { i: { cardId: card.id, toColumnId: to.id, expectedVersion: version, ...anchor } },
            alice.token,
          );
          const payload = r.data!.moveCard;
          if (payload.__typename === 'MoveCardSuccess') return void moved++;
          // A sibling used as anchor may have moved away meanwhile: retry on fresh state.
          expect(['VersionConflictError', 'ValidationError']).toContain(payload.__typename);
          if (payload.__typename === 'VersionConflictError') version = payload.actualVersion;
        }
      }),
    );
    expect(moved).toBeGreaterThan(150);

    const before = await s.gql(
      `query ($id: ID!) { board(id: $id) { ...B } } ${BOARD}`,
      { id: board.id },
      alice.token,
    );
    const seen = new Map<string, string>();
    for (const column of before.data!.board.columns) {
      const ranks = column.cards.edges.map((e: { node: { rank: string } }) => e.node.rank);
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
    // Every successful move, and nothing else, bumped its card's version by one.
    const versions = before.data!.board.columns.flatMap(
      (c: { cards: { edges: { node: { version: number } }[] } }) =>
        c.cards.edges.map((e) => e.node.version - 1),
    );
    expect(versions.reduce((a: number, b: number) => a + b, 0)).toBe(moved);

    await s.app.projector.rebuild();
    const after = await s.gql(
      `query ($id: ID!) { board(id: $id) { ...B } } ${BOARD}`,
      { id: board.id },
      alice.token,
    );
    expect(after.data).toEqual(before.data);
  });

  it('hides a board from a non-member on every read path and refuses every change', async () => {
    const board = await createBoard(s, alice.token, 'Secret');
    const column = await addColumn(s, alice.token, board.id, 'Todo');
    const card = await addCard(s, alice.token, column.id, 'hidden');
    const mallory = await s.register('mallory');
    const reads = await s.gql(
      `query ($b: ID!, $c: ID!, $k: ID!) { board(id: $b) { id } b: node(id: $b) { id } c: node(id: $c) { id } k: node(id: $k) { id } boards { id } }`,
      { b: board.id, c: column.id, k: card.id },
      mallory.token,
    );
    expect(reads).toEqual({ data: { board: null, b: null, c: null, k: null, boards: [] } });

    const attempts: [string, string, Record<string, unknown>][] = [
      [
        'renameBoard',
        'RenameBoardInput',
        { boardId: board.id, name: 'pwned', expectedVersion: board.version },
      ],
      [
        'addMember',
        'AddMemberInput',
        { boardId: board.id, username: 'mallory', expectedVersion: 1 },
      ],
      ['addColumn', 'AddColumnInput', { boardId: board.id, name: 'x', expectedVersion: 2 }],
      ['moveColumn', 'MoveColumnInput', { columnId: column.id, expectedVersion: 2 }],
      ['setWipLimit', 'SetWipLimitInput', { columnId: column.id, wipLimit: 1, expectedVersion: 1 }],
      ['addCard', 'AddCardInput', { columnId: column.id, title: 'x' }],
      ['editCard', 'EditCardInput', { cardId: card.id, expectedVersion: 1, title: 'x' }],
      ['moveCard', 'MoveCardInput', { cardId: card.id, toColumnId: column.id, expectedVersion: 1 }],
      ['archiveCard', 'ArchiveCardInput', { cardId: card.id, expectedVersion: 1 }],
      ['archiveDoneCards', 'ArchiveDoneCardsInput', { columnId: column.id }],
    ];
    const headBefore = await s.storage.store.headPosition();
    for (const [field, input, value] of attempts) {
      const r = await s.gql(
        `mutation ($i: ${input}!) { ${field}(input: $i) { __typename } }`,
        { i: value },
        mallory.token,
      );
      expect([field, r.data?.[field].__typename]).toEqual([field, 'NotFoundError']);
    }
    expect(await s.storage.store.headPosition()).toBe(headBefore);
  });

  it('answers anonymous callers with null me, no boards, and UnauthenticatedError on writes', async () => {
    const r = await s.gql(`{ me { id } boards { id } }`);
    expect(r).toEqual({ data: { me: null, boards: [] } });
    const w = await s.gql(
      `mutation { createBoard(input: { name: "x" }) { __typename ... on Error { code } } }`,
    );
    expect(w.data!.createBoard).toEqual({
      __typename: 'UnauthenticatedError',
      code: 'UNAUTHENTICATED',
    });
    const bad = await s.gql(`{ me { id } }`, {}, 'not-a-real-token-but-long-enough-xx');
    expect(bad).toEqual({ data: { me: null } });
  });

  it.each([
    [
      'an empty board name',
      'createBoard',
      'CreateBoardInput',
      () => ({ name: '   ' }),
      'input.name',
    ],
    [
      'an overlong card title',
      'addCard',
      'AddCardInput',
      (c: Ids) => ({ columnId: c.column, title: 'x'.repeat(201) }),
      'input.title',
    ],
    [
      'a negative WIP limit',
      'setWipLimit',
      'SetWipLimitInput',
      (c: Ids) => ({ columnId: c.column, wipLimit: -1, expectedVersion: 1 }),
      'input.wipLimit',
    ],
    [
      'an ID of the wrong type',
      'addCard',
      'AddCardInput',
      (c: Ids) => ({ columnId: c.board, title: 'x' }),
      'input.columnId',
    ],
    [
      'a malformed ID',
      'editCard',
      'EditCardInput',
      () => ({ cardId: '%%%', expectedVersion: 1, title: 'x' }),
      'input.cardId',
    ],
    [
      'an afterCardId outside the target column',
      'moveCard',
      'MoveCardInput',
      (c: Ids) => ({
        cardId: c.card,
        toColumnId: c.column,
        afterCardId: c.otherCard,
        expectedVersion: 1,
      }),
      'input.afterCardId',
    ],
  ])(
    'rejects %s with a ValidationError naming the field and writes nothing',
    async (_, field, input, value, path) => {
      const board = await createBoard(s, alice.token);
      const column = await addColumn(s, alice.token, board.id, 'Todo');
      const other = await addColumn(s, alice.token, board.id, 'Other');
      const card = await addCard(s, alice.token, column.id, 'c');
      const otherCard = await addCard(s, alice.token, other.id, 'o');
      const ids: Ids = {
        board: board.id,
        column: column.id,
        card: card.id,
        otherCard: otherCard.id,
      };
      const head = await s.storage.store.headPosition();
      const r = await s.gql(
        `mutation ($i: ${input}!) { ${field}(input: $i) { __typename ... on ValidationError { field code message } } }`,
        { i: value(ids) },
        alice.token,
      );
      expect(r.data![field]).toMatchObject({
        __typename: 'ValidationError',
        field: path,
        code: 'VALIDATION',
      });
      expect(await s.storage.store.headPosition()).toBe(head);
    },
  );

  it('reads its own writes: a query right after each of 100 mutations sees it', async () => {
    const board = await createBoard(s, alice.token);
    const column = await addColumn(s, alice.token, board.id, 'Todo');
    const card = await addCard(s, alice.token, column.id, 'v0');
    let version = card.version;
    for (let i = 1; i <= 100; i++) {
      const r = await s.gql(
        EDIT,
        { i: { cardId: card.id, expectedVersion: version, title: `v${i}` } },
        alice.token,
      );
      expect(r.data!.editCard.card).toMatchObject({ title: `v${i}`, version: version + 1 });
      version++;
      const q = await s.gql(
        `query ($id: ID!) { node(id: $id) { ... on Card { title version } } }`,
        { id: card.id },
        alice.token,
      );
      expect(q.data!.node).toEqual({ title: `v${i}`, version });
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
      storage: { ...storage, projector: { ...storage.projector, readModels: store } },
    });
    try {
      const user = await s.register('reader');
      const readsFor = async (columns: number, cards: number) => {
        const board = await createBoard(s, user.token);
        const ids = [];
        for (let i = 0; i < columns; i++)
          ids.push((await addColumn(s, user.token, board.id, `col ${i}`)).id);
        for (let i = 0; i < cards; i++)
          await addCard(s, user.token, ids[i % columns]!, `card ${i}`);
        counter.reads = 0;
        const r = await s.gql(
          `query ($id: ID!) { board(id: $id) { ...B } } ${BOARD}`,
          { id: board.id },
          user.token,
        );
        if (!r.data) throw new Error(JSON.stringify(r.errors));
        const total = r.data.board.columns.reduce(
          (n: number, c: { cards: { edges: unknown[] } }) => n + c.cards.edges.length,
          0,
        );
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
