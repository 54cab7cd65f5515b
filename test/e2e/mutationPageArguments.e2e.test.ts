import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ErrorCode } from '../../src/boards/errors.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';

/**
 * A mutation's payload may select paged fields (`Column.cards`, `Column.archivedCards`,
 * `history`). A bad page argument there is the caller's mistake, and must be refused
 * before anything is written: checked only by the field's resolver, it came after the
 * write, and the payload's non-null fields nulled the whole answer (`data: null`), so a
 * committed write was reported as a failure (and a retry wrote it again).
 */
describe('bad page arguments in a mutation payload', () => {
  let s: TestServer;
  let token: string;
  let columnId: string;

  beforeAll(async () => {
    s = await startTestServer({ env: NO_CLIENT_LIMITS });
    ({ token } = await s.register('pager'));
    const created = await s.gql<any>(
      `mutation { createBoard(input: { name: "Paged" }) {
        ... on CreateBoardSuccess { board { id version } } } }`,
      {},
      token,
    );
    const board = created.data.createBoard.board;
    const added = await s.gql<any>(
      `mutation ($input: AddColumnInput!) { addColumn(input: $input) {
        ... on AddColumnSuccess { column { id } } } }`,
      { input: { boardId: board.id, expectedVersion: board.version, name: 'Todo' } },
      token,
    );
    columnId = added.data.addColumn.column.id;
  });
  afterAll(() => s.close());

  const cardCount = async () => {
    const r = await s.gql<any>(
      `query ($id: ID!) { node(id: $id) { ... on Column { cardCount } } }`,
      { id: columnId },
      token,
    );
    return r.data.node.cardCount as number;
  };

  const addCard = (selection: string, defs = '') => `
    mutation ($columnId: ID!${defs}) {
      first: addCard(input: { columnId: $columnId, title: "one" }) { __typename }
      added: addCard(input: { columnId: $columnId, title: "two" }) {
        __typename ... on AddCardSuccess { ${selection} }
      }
    }`;

  const cases: {
    name: string;
    selection: string;
    vars?: Record<string, unknown>;
    defs?: string;
    field: string;
  }[] = [
    {
      name: 'history after',
      selection: 'card { history(after: "nope") { edges { cursor } } }',
      field: 'after',
    },
    {
      name: 'history first',
      selection: 'card { history(first: -1) { edges { cursor } } }',
      field: 'first',
    },
    {
      name: 'a column history cursor in a variable',
      selection: 'column { history(after: $after) { edges { cursor } } }',
      vars: { after: 'bm90IGEgY3Vyc29y' },
      defs: ', $after: String',
      field: 'after',
    },
    {
      name: 'cards first',
      selection: 'column { cards(first: -5) { edges { cursor } } }',
      field: 'first',
    },
    {
      name: 'cards last',
      selection: 'column { cards(last: -1) { edges { cursor } } }',
      field: 'last',
    },
    {
      name: 'cards before',
      selection: 'column { cards(before: "x") { edges { cursor } } }',
      field: 'before',
    },
    {
      name: 'cards after, through a fragment and a variable',
      selection: '...Cards',
      vars: { after: 'nope' },
      defs: ', $after: String',
      field: 'after',
    },
    {
      name: 'archivedCards first',
      selection: 'column { archivedCards(first: -1) { id } }',
      field: 'first',
    },
    {
      name: 'the board history of a card',
      selection: 'card { board { history(first: -2) { edges { cursor } } } }',
      field: 'first',
    },
  ];

  it.each(cases)(
    '$name: refused before any field writes',
    async ({ selection, vars, defs, field }) => {
      const before = await cardCount();
      const fragment =
        selection === '...Cards'
          ? 'fragment Cards on AddCardSuccess { column { cards(after: $after) { edges { cursor } } } }'
          : '';
      const r = await s.gql(
        `${addCard(selection, defs)} ${fragment}`,
        { columnId, ...vars },
        token,
      );
      expect(r.data ?? null).toBeNull();
      expect(r.errors).toHaveLength(1);
      expect(r.errors![0]!.extensions).toMatchObject({ code: ErrorCode.Validation, field });
      expect(await cardCount()).toBe(before);
    },
  );

  it('good page arguments, and bad ones under @skip, leave the writes as they were', async () => {
    const before = await cardCount();
    const r = await s.gql<any>(
      addCard(
        `card { history(first: 1) { edges { cursor } } }
         column { cards(first: 1) { edges { cursor } } archivedCards(first: 0) { id }
                  history(first: -1) @skip(if: $skip) { edges { cursor } } }`,
        ', $skip: Boolean!',
      ),
      { columnId, skip: true },
      token,
    );
    expect(r.errors).toBeUndefined();
    expect(r.data.first.__typename).toBe('AddCardSuccess');
    expect(r.data.added.card.history.edges).toHaveLength(1);
    expect(await cardCount()).toBe(before + 2);
  });

  it('over the websocket too', async () => {
    const before = await cardCount();
    const client = createClient({
      url: s.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    try {
      const result = await new Promise<{ data?: unknown; errors?: readonly any[] }>(
        (resolve, reject) => {
          let last: { data?: unknown; errors?: readonly any[] } = {};
          client.subscribe(
            {
              query: addCard('card { history(after: "nope") { edges { cursor } } }'),
              variables: { columnId },
            },
            {
              next: (message) => (last = message as typeof last),
              error: (error) =>
                Array.isArray(error) ? resolve({ errors: error }) : reject(error as Error),
              complete: () => resolve(last),
            },
          );
        },
      );
      expect(result.data ?? null).toBeNull();
      expect(result.errors?.[0]?.extensions).toMatchObject({ code: ErrorCode.Validation });
      expect(await cardCount()).toBe(before);
    } finally {
      await client.dispose();
    }
  });
});
