import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPILE_ON_RUN } from '../../src/graphql/compiledQueries.js';
import {
  BoardDocument,
  BoardsDocument,
  CardDocument,
  ChangeHeadDocument,
  ColumnDocument,
  MeDocument,
  MySessionsDocument,
  NodeDocument,
} from '../../src/sdk/generated/graphql.js';
import { createLogger } from '../../src/logger.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Repeated queries run compiled (graphql-jit) from their COMPILE_ON_RUN-th run on: each
 * query below runs through graphql-js first, then compiled, and must get the same
 * answer to the byte (field order included), errors and masking included.
 */
describe('compiled queries', () => {
  let s: TestServer;
  const lines: string[] = [];
  const ids: Record<string, string> = {};
  const tokens: Record<string, string> = {};

  async function mutate(token: string, name: string, input: object, select: string) {
    const inputType = `${name[0]!.toUpperCase()}${name.slice(1)}Input`;
    const result = await s.gql<{ r: Record<string, any> }>(
      `mutation ($input: ${inputType}!) { r: ${name}(input: $input) { __typename ${select} } }`,
      { input },
      token,
    );
    if (!String(result.data?.r.__typename).endsWith('Success')) {
      throw new Error(`${name}: ${JSON.stringify(result)}`);
    }
    return result.data!.r;
  }

  beforeAll(async () => {
    const logger = createLogger('debug', {
      destination: { write: (line: string) => void lines.push(line) },
    });
    s = await startTestServer({ logger });
    for (const name of ['alice', 'bob', 'mallory']) {
      const user = await s.register(name);
      tokens[name] = user.token;
      ids[name] = user.id;
    }
    const alice = tokens.alice!;
    let board = (
      await mutate(
        alice,
        'createBoard',
        { name: 'Launch' },
        '... on CreateBoardSuccess { board { id version } }',
      )
    ).board as { id: string; version: number };
    ids.board = board.id;
    board = (
      await mutate(
        alice,
        'addMember',
        { boardId: board.id, expectedVersion: board.version, username: 'bob' },
        '... on AddMemberSuccess { board { id version } }',
      )
    ).board;
    for (const column of ['todo', 'done']) {
      const added = await mutate(
        alice,
        'addColumn',
        { boardId: board.id, expectedVersion: board.version, name: column },
        '... on AddColumnSuccess { board { id version } column { id } }',
      );
      board = added.board;
      ids[column] = added.column.id;
    }
    for (const title of ['one', 'two', 'three']) {
      ids[title] = (
        await mutate(
          alice,
          'addCard',
          { columnId: ids.todo, title },
          '... on AddCardSuccess { card { id } }',
        )
      ).card.id;
    }
    await mutate(
      alice,
      'editCard',
      { cardId: ids.one, expectedVersion: 1, assigneeId: ids.bob, labels: ['x', 'y'], done: true },
      '... on EditCardSuccess { card { id } }',
    );
    await mutate(
      alice,
      'archiveCard',
      { cardId: ids.three, expectedVersion: 1 },
      '... on ArchiveCardSuccess { card { id } }',
    );
    await mutate(
      alice,
      'addCard',
      { columnId: ids.done, title: 'four' },
      '... on AddCardSuccess { card { id } }',
    );
  });
  afterAll(() => s?.close());

  const cases: [
    name: string,
    query: () => string,
    variables: () => Record<string, unknown>,
    as: string | null,
  ][] = [
    ['Boards', () => print(BoardsDocument), () => ({}), 'alice'],
    ['Me', () => print(MeDocument), () => ({}), 'bob'],
    ['MySessions', () => print(MySessionsDocument), () => ({}), 'alice'],
    ['ChangeHead', () => print(ChangeHeadDocument), () => ({}), 'alice'],
    ['Board', () => print(BoardDocument), () => ({ id: ids.board, cardsPerColumn: 1 }), 'bob'],
    ['Board of a non-member', () => print(BoardDocument), () => ({ id: ids.board }), 'mallory'],
    ['Board, anonymous', () => print(BoardDocument), () => ({ id: ids.board }), null],
    ['Node of a card', () => print(NodeDocument), () => ({ id: ids.one }), 'alice'],
    ['Node of a column', () => print(NodeDocument), () => ({ id: ids.todo }), 'alice'],
    ['Node of a user', () => print(NodeDocument), () => ({ id: ids.bob }), 'alice'],
    [
      'Node of a card to a non-member',
      () => print(NodeDocument),
      () => ({ id: ids.one }),
      'mallory',
    ],
    ['Node of a malformed id', () => print(NodeDocument), () => ({ id: 'nope' }), 'alice'],
    ['Card', () => print(CardDocument), () => ({ id: ids.two }), 'alice'],
    ['Column, a page', () => print(ColumnDocument), () => ({ id: ids.todo, first: 1 }), 'alice'],
    [
      'Column, a negative page',
      () => print(ColumnDocument),
      () => ({ id: ids.todo, first: -1 }),
      'alice',
    ],
    [
      'Column, a bad cursor',
      () => print(ColumnDocument),
      () => ({ id: ids.todo, after: 'nope' }),
      'alice',
    ],
    [
      'Column, a variable of the wrong type',
      () => print(ColumnDocument),
      () => ({ id: ids.todo, first: 'ten' }),
      'alice',
    ],
    ['Board, a missing variable', () => print(BoardDocument), () => ({}), 'alice'],
  ];

  it.each(cases)(
    'answers %s compiled exactly as graphql-js does',
    async (name, query, variables, as) => {
      const token = as ? tokens[as] : undefined;
      // A document of its own (the server caches documents by their text), so that its
      // first run is graphql-js's.
      const text = `${query()}\n# ${name}`;
      const answers: string[] = [];
      for (let run = 1; run <= COMPILE_ON_RUN + 1; run += 1) {
        answers.push(JSON.stringify(await s.gql(text, variables(), token)));
      }
      expect(answers[0]).not.toContain('Unexpected error');
      for (const answer of answers.slice(1)) expect(answer).toBe(answers[0]);
    },
  );

  it('compiles each repeated query document once, and no mutation', () => {
    const compiled = lines
      .map((line) => JSON.parse(line) as { msg: string; operationName?: string })
      .filter((record) => record.msg === 'query compiled')
      .map((record) => record.operationName);
    expect(compiled.sort()).toEqual(
      cases.map(([, query]) => /^query (\w+)/.exec(query())![1]).sort(),
    );
  });
});
