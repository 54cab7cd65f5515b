import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { HISTORY_PAGE } from '../../src/boards/history/graphql.js';
import { cardStream } from '../../src/boards/streams.js';
import { ANY } from '../../src/eventstore/types.js';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import { openMongoStorage } from '../../src/mongoStorage.js';
import { openMemoryStorage, type Storage } from '../../src/storage.js';
import { fileScopedMongoUri, uniqueDatabaseName, useContractTimeout } from '../support/mongo.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';

const HISTORY = `
  fragment Page on HistoryConnection {
    edges {
      cursor
      node { at operation version actor { id username } changes { field from to } }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
  query ($id: ID!, $first: Int, $after: String) {
    node(id: $id) {
      __typename
      ... on Card { history(first: $first, after: $after) { ...Page } }
      ... on Column { history(first: $first, after: $after) { ...Page } }
      ... on Board { history(first: $first, after: $after) { ...Page } }
    }
  }`;

interface Entry {
  at: string;
  operation: string;
  version: number;
  actor: { id: string; username: string } | null;
  changes: { field: string; from: string | null; to: string | null }[];
}
interface Page {
  edges: { cursor: string; node: Entry }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; endCursor: string | null };
}

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

describe.each(adapters)('history of cards, columns and boards ($name)', (adapter) => {
  let s: TestServer;
  let storage: Storage;
  beforeAll(async () => {
    storage = await adapter.open();
    s = await startTestServer({ storage, env: NO_CLIENT_LIMITS });
  });
  afterAll(async () => {
    await s.close();
    await storage.close();
  });

  /** Runs a mutation that must succeed; returns its payload. */
  async function ok(token: string, field: string, input: Record<string, unknown>, select: string) {
    const r = await s.gql(
      `mutation ($input: ${field[0]!.toUpperCase()}${field.slice(1)}Input!) {
        ${field}(input: $input) { __typename ... on Error { code message } ${select} }
      }`,
      { input },
      token,
    );
    const payload = r.data?.[field] as Record<string, any> | undefined;
    if (!payload || 'code' in payload) throw new Error(`${field}: ${JSON.stringify(r)}`);
    return payload;
  }

  async function history(token: string | undefined, id: string, first?: number, after?: string) {
    const r = await s.gql<{ node: { history: Page } | null }>(HISTORY, { id, first, after }, token);
    return r;
  }

  let unique = 0;
  /** Registers a user under a fresh name. */
  async function user(prefix: string) {
    const username = `${prefix}${(unique += 1)}${adapter.name}`;
    return { username, ...(await s.register(username)) };
  }

  /** A board of alice's, with bob as a member, and two columns. */
  async function sharedBoard() {
    const alice = await user('alice');
    const bob = await user('bob');
    const { board } = await ok(
      alice.token,
      'createBoard',
      { name: 'Plan' },
      '... on CreateBoardSuccess { board { id version } }',
    );
    const boardId = board.id as string;
    let version = (
      await ok(
        alice.token,
        'addMember',
        { boardId, username: bob.username, expectedVersion: board.version },
        '... on AddMemberSuccess { board { version } }',
      )
    ).board.version as number;
    const columns: string[] = [];
    for (const name of ['Todo', 'Doing']) {
      const added = await ok(
        alice.token,
        'addColumn',
        { boardId, name, expectedVersion: version },
        '... on AddColumnSuccess { column { id } board { version } }',
      );
      columns.push(added.column.id as string);
      version = added.board.version as number;
    }
    return { alice, bob, boardId, todo: columns[0]!, doing: columns[1]! };
  }

  async function addCard(token: string, columnId: string, title: string) {
    const r = await ok(
      token,
      'addCard',
      { columnId, title },
      '... on AddCardSuccess { card { id version } }',
    );
    return r.card as { id: string; version: number };
  }

  async function editCard(token: string, cardId: string, changes: Record<string, unknown>) {
    const version = await cardVersion(token, cardId);
    await ok(
      token,
      'editCard',
      { cardId, expectedVersion: version, ...changes },
      '... on EditCardSuccess { card { version } }',
    );
  }

  async function cardVersion(token: string, cardId: string): Promise<number> {
    const r = await s.gql<{ node: { version: number } }>(
      'query ($id: ID!) { node(id: $id) { ... on Card { version } } }',
      { id: cardId },
      token,
    );
    return r.data!.node.version;
  }

  const json = (value: unknown) => JSON.stringify(value);

  it('shows bob who did what to a card alice and he edited, from its creation, with moves between columns', async () => {
    const { alice, bob, boardId, todo, doing } = await sharedBoard();
    const card = await addCard(alice.token, todo, 'Write the plan');
    await editCard(alice.token, card.id, { title: 'Write the plan v2', assigneeId: bob.id });
    await ok(
      bob.token,
      'moveCard',
      {
        cardId: card.id,
        toColumnId: doing,
        expectedVersion: await cardVersion(bob.token, card.id),
      },
      '... on MoveCardSuccess { card { version } }',
    );
    await editCard(bob.token, card.id, { done: true, labels: ['q3'] });

    const r = await history(bob.token, card.id);
    expect(r.errors).toBeUndefined();
    const entries = r.data!.node!.history.edges.map((e) => e.node);
    expect(entries.map((e) => [e.version, e.operation, e.actor?.username])).toEqual([
      [4, 'CardEdited', bob.username],
      [3, 'CardMoved', bob.username],
      [2, 'CardEdited', alice.username],
      [1, 'CardCreated', alice.username],
    ]);
    expect(entries[0]!.changes).toEqual([
      { field: 'labels', from: '[]', to: json(['q3']) },
      { field: 'done', from: 'false', to: 'true' },
    ]);
    expect(entries[1]!.changes).toEqual([
      { field: 'column', from: json(todo), to: json(doing) },
      { field: 'rank', from: expect.any(String), to: expect.any(String) },
    ]);
    expect(entries[2]!.changes).toEqual([
      { field: 'title', from: json('Write the plan'), to: json('Write the plan v2') },
      { field: 'assignee', from: null, to: json(bob.id) },
    ]);
    expect(entries[3]!.changes).toContainEqual({
      field: 'column',
      from: null,
      to: json(todo),
    });
    expect(entries[3]!.changes).toContainEqual({ field: 'board', from: null, to: json(boardId) });
    expect(entries[0]!.actor?.id).toBe(bob.id);
    for (const e of entries) expect(Number.isNaN(Date.parse(e.at))).toBe(false);

    // The move, as each column tells it.
    const todoHistory = (await history(alice.token, todo)).data!.node!.history.edges;
    expect(
      todoHistory.map((e) => [e.node.operation, e.node.actor?.username, e.node.changes]),
    ).toEqual([
      ['CardRemoved', bob.username, [{ field: 'card', from: json(card.id), to: null }]],
      ['CardAdded', alice.username, [{ field: 'card', from: null, to: json(card.id) }]],
      ['ColumnCreated', alice.username, expect.any(Array)],
    ]);
    const doingHistory = (await history(bob.token, doing)).data!.node!.history.edges;
    expect(doingHistory.map((e) => [e.node.operation, e.node.changes])).toEqual([
      ['CardAdded', [{ field: 'card', from: null, to: json(card.id) }]],
      ['ColumnCreated', expect.any(Array)],
    ]);

    // The board: created, bob added, two columns placed.
    const boardHistory = (await history(bob.token, boardId)).data!.node!.history.edges;
    expect(boardHistory.map((e) => e.node.operation)).toEqual([
      'ColumnPlaced',
      'ColumnPlaced',
      'MemberAdded',
      'BoardCreated',
    ]);
    expect(boardHistory[2]!.node.changes).toEqual([
      { field: 'member', from: null, to: json(bob.id) },
      { field: 'role', from: null, to: json({ user: bob.id, role: 'EDITOR' }) },
    ]);
  });

  it("shows a member's role change from the role they had, on every page size", async () => {
    const { alice, bob, boardId } = await sharedBoard();
    const boardVersion = async () =>
      (
        await s.gql<{ node: { version: number } }>(
          'query ($id: ID!) { node(id: $id) { ... on Board { version } } }',
          { id: boardId },
          alice.token,
        )
      ).data!.node.version;
    const setRole = async (token: string, userId: string, role: string) =>
      ok(
        token,
        'setMemberRole',
        { boardId, userId, role, expectedVersion: await boardVersion() },
        '... on SetMemberRoleSuccess { board { version } }',
      );
    await setRole(alice.token, bob.id, 'VIEWER');
    await setRole(alice.token, bob.id, 'OWNER');
    // The creator's role came with the board.
    await setRole(bob.token, alice.id, 'EDITOR');
    const role = (user: string, name: string) => json({ user, role: name });
    const expected = [
      [{ field: 'role', from: role(alice.id, 'OWNER'), to: role(alice.id, 'EDITOR') }],
      [{ field: 'role', from: role(bob.id, 'VIEWER'), to: role(bob.id, 'OWNER') }],
      [{ field: 'role', from: role(bob.id, 'EDITOR'), to: role(bob.id, 'VIEWER') }],
    ];
    // One page, and pages of one entry (each looks back past itself for the role before).
    const whole = (await history(alice.token, boardId)).data!.node!.history.edges;
    expect(whole.slice(0, 3).map((e) => e.node.operation)).toEqual([
      'MemberRoleChanged',
      'MemberRoleChanged',
      'MemberRoleChanged',
    ]);
    expect(whole.slice(0, 3).map((e) => e.node.changes)).toEqual(expected);
    let after: string | undefined;
    for (const changes of expected) {
      const page = (await history(alice.token, boardId, 1, after)).data!.node!.history;
      expect(page.edges.map((e) => e.node.changes)).toEqual([changes]);
      after = page.pageInfo.endCursor!;
    }
    const created = whole.at(-1)!.node;
    expect(created.operation).toBe('BoardCreated');
    expect(created.changes).toContainEqual({
      field: 'role',
      from: null,
      to: role(alice.id, 'OWNER'),
    });
  });

  it('is not visible to a non-member or an anonymous caller', async () => {
    const { alice, boardId, todo } = await sharedBoard();
    const card = await addCard(alice.token, todo, 'Secret');
    const carol = await user('carol');
    for (const id of [card.id, todo, boardId]) {
      for (const token of [carol.token, undefined]) {
        const r = await history(token, id);
        expect(r.errors).toBeUndefined();
        expect(r.data!.node).toBeNull();
      }
    }
  });

  it('pages without gaps or duplicates while new edits arrive between pages', async () => {
    const { alice, bob, todo } = await sharedBoard();
    const card = await addCard(alice.token, todo, 't0');
    for (let i = 1; i <= 12; i += 1) await editCard(alice.token, card.id, { title: `t${i}` });
    const seen: number[] = [];
    const titles: (string | null)[] = [];
    let after: string | undefined;
    let headAtStart: number | undefined;
    for (let round = 0; ; round += 1) {
      const r = await history(bob.token, card.id, 5, after);
      expect(r.errors).toBeUndefined();
      const page = r.data!.node!.history;
      headAtStart ??= page.edges[0]!.node.version;
      seen.push(...page.edges.map((e) => e.node.version));
      titles.push(...page.edges.map((e) => e.node.changes.find((c) => c.field === 'title')!.to));
      expect(page.pageInfo.hasPreviousPage).toBe(after !== undefined);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor!;
      // Someone keeps editing meanwhile.
      await editCard(bob.token, card.id, { title: `late${round}` });
    }
    expect(headAtStart).toBe(13);
    expect(seen).toEqual(Array.from({ length: 13 }, (_, i) => 13 - i));
    expect(titles).toEqual(Array.from({ length: 13 }, (_, i) => json(`t${12 - i}`)));
  });

  it("reads a cursor past a resource's newest entry (another card's) as any cursor: the entries older than it", async () => {
    const { alice, todo } = await sharedBoard();
    const busy = await addCard(alice.token, todo, 'b0');
    for (let i = 1; i <= 12; i += 1) await editCard(alice.token, busy.id, { title: `b${i}` });
    const quiet = await addCard(alice.token, todo, 'q0');
    await editCard(alice.token, quiet.id, { title: 'q1' });
    const whole = (await history(alice.token, quiet.id)).data!.node!.history;
    expect(whole.edges.map((e) => e.node.version)).toEqual([2, 1]);
    // The busy card's newest cursor (version 13) and older ones of its, on the quiet card.
    const busyPage = (await history(alice.token, busy.id, 12)).data!.node!.history;
    for (const { cursor } of busyPage.edges.slice(0, 10)) {
      for (const first of [1, 2, 5, undefined]) {
        const r = await history(alice.token, quiet.id, first, cursor);
        expect(r.errors).toBeUndefined();
        const page = r.data!.node!.history;
        const expected = whole.edges.slice(0, first ?? whole.edges.length);
        expect(page.edges.map((e) => e.node)).toEqual(expected.map((e) => e.node));
        expect(page.pageInfo.hasNextPage).toBe(expected.length < whole.edges.length);
      }
    }
  });

  it('refuses a bad cursor or a negative first with a VALIDATION error and writes nothing', async () => {
    const { alice, todo } = await sharedBoard();
    const card = await addCard(alice.token, todo, 'x');
    const head = await storage.store.headPosition();
    for (const after of [
      'nope',
      Buffer.from('history:0').toString('base64url'),
      Buffer.from('history:1e3').toString('base64url'),
    ]) {
      const r = await history(alice.token, card.id, 5, after);
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'after' });
    }
    const negative = await history(alice.token, card.id, -1);
    expect(negative.errors?.[0]?.extensions).toMatchObject({ code: 'VALIDATION', field: 'first' });
    expect(await storage.store.headPosition()).toBe(head);
  });

  it(`gives at most ${HISTORY_PAGE.max} entries per page, however many are asked for`, async () => {
    const { alice, todo } = await sharedBoard();
    const card = await addCard(alice.token, todo, 'busy');
    const events = Array.from({ length: HISTORY_PAGE.max + 10 }, (_, i) => ({
      type: 'CardEdited',
      data: { changes: { title: `t${i}` } },
    }));
    await storage.store.append({
      streams: [{ stream: cardStream(rawIdOf(card.id, 'Card')!), expected: ANY, events }],
    });
    const r = await history(alice.token, card.id, 100_000);
    const page = r.data!.node!.history;
    expect(page.edges).toHaveLength(HISTORY_PAGE.max);
    expect(page.pageInfo.hasNextPage).toBe(true);
    // The same written in the document: served the same page, not refused as too costly.
    for (const first of [HISTORY_PAGE.max + 1, 100_000]) {
      const literal = await s.gql(
        `query ($id: ID!) { node(id: $id) { ... on Card { history(first: ${first}) { edges { cursor } pageInfo { hasNextPage } } } } }`,
        { id: card.id },
        alice.token,
      );
      expect(literal.errors).toBeUndefined();
      const literalPage = literal.data!.node!.history;
      expect(literalPage.edges).toEqual(
        page.edges.map(({ cursor }: { cursor: string }) => ({ cursor })),
      );
      expect(literalPage.pageInfo.hasNextPage).toBe(true);
    }
  });
});
