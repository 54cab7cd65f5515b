import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { QUERY_LIMITS } from '../../src/graphql/yoga.js';
import { openSocket, until } from '../support/rawSocket.js';
import { startTestServer, type TestServer } from '../support/server.js';

// One rule for every transport: the same over-limit operation, sent over HTTP GET, a JSON
// POST, a multipart POST, SSE and graphql-ws, gets the same typed refusal, and none of it
// runs. A transport that skipped a rule would answer with `data` (each document below is
// otherwise valid and cheap to execute) or commit the mutation.

/** What one transport answered: the GraphQL result, as a client reads it. */
interface Answer {
  status: number | 'ws';
  body: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

/** One operation: its text and variables as JSON text (so nesting needs no stack here). */
interface Operation {
  query: string;
  /** JSON text of the variables object. */
  variables: string;
}

const bodyOf = ({ query, variables }: Operation) =>
  `{"query":${JSON.stringify(query)},"variables":${variables}}`;

const transports = {
  async get(s: TestServer, token: string, op: Operation): Promise<Answer> {
    const search = new URLSearchParams({ query: op.query, variables: op.variables });
    const response = await fetch(`${s.url}/graphql?${search}`, {
      headers: { accept: 'application/json', authorization: `Bearer ${token}` },
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  },
  async post(s: TestServer, token: string, op: Operation): Promise<Answer> {
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: bodyOf(op),
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  },
  async multipart(s: TestServer, token: string, op: Operation): Promise<Answer> {
    const form = new FormData();
    form.set('operations', bodyOf(op));
    form.set('map', '{}');
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: form,
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  },
  async sse(s: TestServer, token: string, op: Operation): Promise<Answer> {
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: bodyOf(op),
    });
    const text = await response.text();
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      // Refused before a stream was opened: a plain GraphQL answer.
      return { status: response.status, body: JSON.parse(text) as Answer['body'] };
    }
    const next = /event: next\ndata: (.*)\n/.exec(text);
    if (!next) throw new Error(`no next event in ${text.slice(0, 200)}`);
    return { status: response.status, body: JSON.parse(next[1]!) as Answer['body'] };
  },
  async ws(s: TestServer, token: string, op: Operation): Promise<Answer> {
    const socket = await openSocket(s, token);
    const id = 'op';
    const received: { next: unknown[]; error: unknown[] | null; complete: boolean } = {
      next: [],
      error: null,
      complete: false,
    };
    socket.socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: string; type: string; payload: any };
      if (message.id !== id) return;
      if (message.type === 'next') received.next.push(message.payload);
      if (message.type === 'error') received.error = message.payload as unknown[];
      if (message.type === 'complete') received.complete = true;
    });
    socket.socket.send(`{"id":"${id}","type":"subscribe","payload":${bodyOf(op)}}`);
    await until(() => received.error !== null || received.complete, 'the answer');
    // The socket outlives the refusal: the operation failed alone.
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    if (received.error) return { status: 'ws', body: { errors: received.error as never } };
    return { status: 'ws', body: received.next[0] as Answer['body'] };
  },
} as const;

type Transport = keyof typeof transports;

/** Errors without `locations` (the one thing transports may render differently). */
const errorsOf = (answer: Answer) =>
  (answer.body.errors ?? []).map(({ message, extensions }) => ({
    message,
    ...(extensions ? { extensions } : {}),
  }));

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

  const all = Object.keys(transports) as Transport[];

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
        extensions: { code: 'QUERY_TOO_DEEP' },
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
    expect(tooManyAliases[0]!.message).toContain(
      `Aliases limit of ${QUERY_LIMITS.maxAliases} exceeded`,
    );
    // A GET cannot carry that many tokens: Node refuses a URL past its 16 KiB of headers.
    const tooManyTokens = await refusedEverywhere(
      { query: `query { ${'__typename '.repeat(QUERY_LIMITS.maxTokens)} }`, variables: '{}' },
      ['post', 'multipart', 'sse', 'ws'],
    );
    expect(tooManyTokens[0]!.message).toContain(
      `Token limit of ${QUERY_LIMITS.maxTokens} exceeded`,
    );
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
