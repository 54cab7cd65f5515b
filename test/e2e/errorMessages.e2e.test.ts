import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { toGlobalId } from '../../src/graphql/globalIds.js';
import { MAX_ERROR_MESSAGE_LENGTH } from '../../src/graphql/yoga.js';
import { startTestServer, type TestServer } from '../support/server.js';

interface ErrorResult {
  __typename: string;
  message: string;
}

/** An error as it reaches the client. */
interface WireError {
  message: string;
  extensions?: { code?: string };
}

/** The errors of one operation sent over the websocket (graphql-ws). */
async function errorsOverWebSocket(
  s: TestServer,
  query: string,
  variables: Record<string, unknown>,
): Promise<readonly WireError[]> {
  const client = createClient({ url: s.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    return await new Promise<readonly WireError[]>((resolve, reject) => {
      client.subscribe(
        { query, variables },
        {
          next: (result) => resolve((result.errors ?? []) as WireError[]),
          error: (error) =>
            Array.isArray(error) ? resolve(error as WireError[]) : reject(error as Error),
          complete: () => undefined,
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

describe('error messages over HTTP', () => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startTestServer();
    ({ token } = await s.register('messenger'));
  });
  afterAll(async () => {
    await s.close();
  });

  it('names resources by the global IDs clients know, never by internal ids', async () => {
    const created = await s.gql<{ createBoard: { board: { id: string } } }>(
      `mutation { createBoard(input: { name: "Plans" }) { ... on CreateBoardSuccess { board { id } } } }`,
      {},
      token,
    );
    const boardId = created.data!.createBoard.board.id;
    const rawBoardId = decodeGlobalID(boardId).id;

    const stale = await s.gql<{ renameBoard: ErrorResult }>(
      `mutation ($input: RenameBoardInput!) { renameBoard(input: $input) { __typename ... on Error { message } } }`,
      { input: { boardId, name: 'Later', expectedVersion: 0 } },
      token,
    );
    expect(stale.data?.renameBoard).toEqual({
      __typename: 'VersionConflictError',
      message: `Board ${boardId} is at version 1, not 0`,
    });

    const columnId = toGlobalId('Column', 'no-such-column');
    const missing = await s.gql<{ addCard: ErrorResult }>(
      `mutation ($input: AddCardInput!) { addCard(input: $input) { __typename ... on Error { message } } }`,
      { input: { columnId, title: 'x' } },
      token,
    );
    expect(missing.data?.addCard).toEqual({
      __typename: 'NotFoundError',
      message: `Column ${columnId} not found`,
    });
    expect(JSON.stringify([stale, missing])).not.toContain(rawBoardId);
    expect(JSON.stringify(missing)).not.toContain('"Column no-such-column');
  });

  it("cuts a typed error's message too: a NotFoundError names the ID it was sent, however long", async () => {
    const limit = MAX_ERROR_MESSAGE_LENGTH + '… (cut)'.length;
    const columnId = toGlobalId('Column', 'x'.repeat(5_000));
    const missing = await s.gql<{ addCard: ErrorResult & { id: string } }>(
      `mutation ($input: AddCardInput!) {
        addCard(input: $input) { __typename ... on Error { message } ... on NotFoundError { id } }
      }`,
      { input: { columnId, title: 'x' } },
      token,
    );
    const answer = missing.data!.addCard;
    expect(answer.__typename).toBe('NotFoundError');
    expect(answer.id).toBe(columnId);
    expect(answer.message.length).toBeLessThanOrEqual(limit);
    expect(answer.message).toBe(
      `Column ${columnId}`.slice(0, MAX_ERROR_MESSAGE_LENGTH) + '… (cut)',
    );
  });

  it('answers node(id:) null for a global ID of a type that is no node, not the schema library error', async () => {
    const user = await s.gql<{ me: { id: string } }>(`{ me { id } }`, {}, token);
    // Types of the schema that are no node, an interface, and names of nothing.
    const ids = ['Session', 'Query', 'BoardChange', 'Node', 'Error', 'board', 'Membership'].map(
      (typename) => encodeGlobalID(typename, decodeGlobalID(user.data!.me.id).id),
    );
    for (const id of ids) {
      const answer = await s.gql<{ node: unknown }>(
        `query ($id: ID!) { node(id: $id) { id } }`,
        { id },
        token,
      );
      expect(answer).toEqual({ data: { node: null } });
    }
    // A node's own ID still reads.
    const me = await s.gql<{ node: { id: string } }>(
      `query ($id: ID!) { node(id: $id) { id } }`,
      { id: user.data!.me.id },
      token,
    );
    expect(me.data?.node).toEqual({ id: user.data!.me.id });
  });
});

describe('the 300-character cap on every error message', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s.close();
  });

  const long = 'x'.repeat(20_000);
  // Each with the code it has when short: cutting the message keeps it.
  const cases: [string, string, Record<string, unknown>, string][] = [
    ['an unknown field (validation)', `{ me { ${long} } }`, {}, 'GRAPHQL_VALIDATION_FAILED'],
    [
      'an unknown argument (validation)',
      `{ boards(${long}: 1) { id } }`,
      {},
      'GRAPHQL_VALIDATION_FAILED',
    ],
    ['an unknown fragment (validation)', `{ me { ...${long} } }`, {}, 'GRAPHQL_VALIDATION_FAILED'],
    ['an unterminated string (parse)', `{ me { id } } "${long}`, {}, 'GRAPHQL_PARSE_FAILED'],
    ['a syntax error quoting a token (parse)', `{ me { "${long}" } }`, {}, 'GRAPHQL_PARSE_FAILED'],
    [
      'a variable of the wrong type (execution)',
      `query ($id: ID!) { node(id: $id) { id } }`,
      { id: { [long]: 1 } },
      'BAD_USER_INPUT',
    ],
  ];
  const limit = MAX_ERROR_MESSAGE_LENGTH + '… (cut)'.length;

  it.each(cases)(
    'cuts the message of %s over HTTP, keeping its code',
    async (_name, query, variables, code) => {
      const result = await s.gql(query, variables);
      expect(result.errors?.length).toBeGreaterThan(0);
      for (const error of result.errors!) {
        expect(error.message.length).toBeLessThanOrEqual(limit);
        expect(error.extensions?.['code']).toBe(code);
      }
      expect(JSON.stringify(result)).not.toContain('x'.repeat(400));
    },
  );

  it.each(cases)(
    'cuts the message of %s over the websocket, keeping its code',
    async (_name, query, variables, code) => {
      const errors = await errorsOverWebSocket(s, query, variables);
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error.message.length).toBeLessThanOrEqual(limit);
        expect(error.extensions?.code).toBe(code);
      }
    },
  );
});

describe('a code on every error of a request', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s.close();
  });

  const cases: [string, string, Record<string, unknown>, string][] = [
    [
      'a variable of the wrong type',
      'query ($n: Boolean!) { boards(includeArchived: $n) { id } }',
      { n: 'x' },
      'BAD_USER_INPUT',
    ],
    [
      'a required variable left out',
      'query ($n: Boolean!) { boards(includeArchived: $n) { id } }',
      {},
      'BAD_USER_INPUT',
    ],
    [
      'an input object missing its fields',
      'mutation ($input: RenameBoardInput!) { renameBoard(input: $input) { __typename } }',
      { input: { name: 3 } },
      'BAD_USER_INPUT',
    ],
    ['an unknown field', '{ me { nope } }', {}, 'GRAPHQL_VALIDATION_FAILED'],
    ['a syntax error', '{ me { ', {}, 'GRAPHQL_PARSE_FAILED'],
  ];

  it('never quotes a variable back: a password in a mistyped input stays out of the answer', async () => {
    const password = 'Hunter3-SECRET-PW';
    const result = await s.gql(
      'mutation ($input: SignInInput!) { signIn(input: $input) { __typename } }',
      { input: { username: 'someone', password, extra: 1 } },
    );
    expect(result.errors).toEqual([
      expect.objectContaining({
        message:
          'Variable "$input" got an invalid value; Field "extra" is not defined by type "SignInInput".',
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ]);
    expect(JSON.stringify(result)).not.toContain(password);
  });

  it.each(cases)('codes %s over HTTP', async (_name, query, variables, code) => {
    const result = await s.gql(query, variables);
    const errors = (result.errors ?? []) as WireError[];
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) expect(error.extensions?.code).toBe(code);
  });

  it.each(cases)('codes %s over the websocket', async (_name, query, variables, code) => {
    const errors = await errorsOverWebSocket(s, query, variables);
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) expect(error.extensions?.code).toBe(code);
  });
});
