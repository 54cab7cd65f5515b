import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { QUERY_LIMIT_CODES, QUERY_LIMITS } from '../../src/graphql/queryLimits.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  ALL_TRANSPORTS,
  errorsOf,
  transports,
  type RawOperation as Operation,
  type Transport,
  type TransportAnswer as Answer,
} from '../support/transports.js';

// One rule for every transport: the same over-limit operation, sent over HTTP GET, a JSON
// POST, a multipart POST, SSE and graphql-ws, gets the same typed refusal, and none of it
// runs. A transport that skipped a rule would answer with `data` (each document below is
// otherwise valid and cheap to execute) or commit the mutation.

/** A query whose selection is `levels` deep: boards > columns > board > columns … > id. */
function queryOfDepth(levels: number): string {
  const fields = Array.from({ length: levels - 1 }, (_, i) =>
    i === 0 ? 'boards' : i % 2 === 1 ? 'columns' : 'board',
  );
  return `query { ${fields.join(' { ')} { id }${' }'.repeat(fields.length - 1)} }`;
}

/** JSON text of an array nested `levels` deep. */
const nestedArray = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

/**
 * Variables whose operation nests `levels` deep, counted as MAX_JSON_DEPTH counts: the
 * operation's parameters (a JSON body, a multipart `operations` field, a GET's
 * parameters, a graphql-ws `payload`) are one level, `variables` one more.
 */
const variablesNesting = (levels: number) => `{"pad":${nestedArray(levels - 2)}}`;

describe('one set of query limits for every transport', () => {
  let s: TestServer;
  let token: string;
  const maxJsonDepth = loadConfig({}).http.maxJsonDepth;
  beforeAll(async () => {
    s = await startTestServer();
    ({ token } = await s.register('limits'));
    // A board, so the queries below have something to walk if they ran.
    const created = await s.gql(
      `mutation { createBoard(input: { name: "Limits" }) { __typename } }`,
      {},
      token,
    );
    expect(created.data!.createBoard.__typename).toBe('CreateBoardSuccess');
  });
  afterAll(async () => {
    await s.close();
  });

  const all = ALL_TRANSPORTS;

  /** Sends `op` over every transport; asserts the same refusal everywhere, no data. */
  async function refusedEverywhere(op: Operation, over: readonly Transport[] = all) {
    const answers = new Map<Transport, Answer>();
    for (const transport of over) answers.set(transport, await transports[transport](s, token, op));
    const [first, ...rest] = over.map((transport) => ({ transport, ...answers.get(transport)! }));
    for (const answer of [first!, ...rest]) {
      // Nothing ran: no `data` at all (an execution would have answered with it).
      expect(answer.body, answer.transport).not.toHaveProperty('data');
      expect(errorsOf(answer), answer.transport).toEqual(errorsOf(first!));
    }
    return errorsOf(first!);
  }

  it('answers the documents below with data when they are within the limits, on every transport', async () => {
    // The control: the same shapes one step inside each limit run everywhere.
    const within: Operation[] = [
      { query: queryOfDepth(QUERY_LIMITS.maxDepth), variables: '{}' },
      { query: `query { me { id } }`, variables: variablesNesting(maxJsonDepth) },
      {
        // As many aliases as allowed, plus aliases of `__typename`, which are not counted.
        query: `query { ${Array.from({ length: QUERY_LIMITS.maxAliases }, (_, i) => `a${i}: me { id }`).join(' ')} ${Array.from({ length: 10 }, (_, i) => `t${i}: __typename`).join(' ')} }`,
        variables: '{}',
      },
    ];
    for (const op of within) {
      for (const transport of all) {
        const answer = await transports[transport](s, token, op);
        expect(answer.body.errors, transport).toBeUndefined();
        expect(answer.body.data, transport).toBeTruthy();
      }
    }
  });

  it('refuses a query nested one level past the depth limit the same way on every transport', async () => {
    const errors = await refusedEverywhere({
      query: queryOfDepth(QUERY_LIMITS.maxDepth + 1),
      variables: '{}',
    });
    expect(errors).toEqual([
      {
        message: `Query depth limit of ${QUERY_LIMITS.maxDepth} exceeded, found ${QUERY_LIMITS.maxDepth + 1}.`,
        extensions: { code: QUERY_LIMIT_CODES.depth },
      },
    ]);
  });

  it('refuses one alias too many and one token too many the same way on every transport', async () => {
    const aliases = Array.from(
      { length: QUERY_LIMITS.maxAliases + 1 },
      (_, i) => `a${i}: me { id }`,
    );
    const tooManyAliases = await refusedEverywhere({
      query: `query { ${aliases.join(' ')} }`,
      variables: '{}',
    });
    expect(tooManyAliases).toEqual([
      {
        message: `Aliases limit of ${QUERY_LIMITS.maxAliases} exceeded, found ${QUERY_LIMITS.maxAliases + 1}.`,
        extensions: { code: QUERY_LIMIT_CODES.aliases },
      },
    ]);
    // A GET cannot carry that many tokens: Node refuses a URL past its 16 KiB of headers.
    const tooManyTokens = await refusedEverywhere(
      { query: `query { ${'__typename '.repeat(QUERY_LIMITS.maxTokens)} }`, variables: '{}' },
      ['post', 'multipart', 'sse', 'ws'],
    );
    expect(tooManyTokens[0]!.message).toContain(
      `Token limit of ${QUERY_LIMITS.maxTokens} exceeded`,
    );
  });

  it('refuses a document past the cost limit with its code and a whole-number cost on every transport', async () => {
    // A page is priced at what it may hold (its cap, through a variable too): a page of
    // history inside a page of cards is far past the limit.
    const errors = await refusedEverywhere({
      query: `query ($n: Int) { boards { columns { cards(first: $n) { edges { node { id history(first: 500) { edges { node { version } } } } } } } } }`,
      variables: '{}',
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      message: expect.stringMatching(
        new RegExp(`^Query Cost limit of ${QUERY_LIMITS.maxCost} exceeded, found \\d+\\.$`),
      ),
      extensions: { code: QUERY_LIMIT_CODES.cost },
    });
  });

  it('refuses variables nested past MAX_JSON_DEPTH with BAD_REQUEST on every transport, and runs nothing', async () => {
    const errors = await refusedEverywhere({
      query: `query { me { id } }`,
      variables: variablesNesting(maxJsonDepth + 1),
    });
    expect(errors).toEqual([
      {
        message: `JSON nested deeper than ${maxJsonDepth} levels (MAX_JSON_DEPTH).`,
        extensions: { code: 'BAD_REQUEST' },
      },
    ]);
    // The HTTP transports say so with a 400.
    for (const transport of ['get', 'post', 'multipart', 'sse'] as const) {
      const answer = await transports[transport](s, token, {
        query: `query { me { id } }`,
        variables: variablesNesting(maxJsonDepth + 1),
      });
      expect(answer.status, transport).toBe(400);
    }
  });

  it('commits no mutation whose variables nest too deep, on any transport that carries mutations', async () => {
    const boards = async () =>
      ((await s.gql(`query { boards { id } }`, {}, token)).data!.boards as unknown[]).length;
    const before = await boards();
    await refusedEverywhere(
      {
        query: `mutation { createBoard(input: { name: "Deep" }) { __typename } }`,
        // Deep enough to have hurt before: 400,000 levels in a multipart body were accepted.
        variables: `{"pad":${nestedArray(100_000)}}`,
      },
      ['post', 'multipart', 'sse', 'ws'],
    );
    expect(await boards()).toBe(before);
  });
});
