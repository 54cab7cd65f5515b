import { createClient } from 'graphql-ws';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ClientLimitCode } from '../../src/graphql/clientLimits.js';
import { openMemoryStorage } from '../../src/storage.js';
import { startTestServer, type TestServer } from '../support/server.js';

const REGISTER = `mutation ($input: RegisterUserInput!) {
  registerUser(input: $input) { __typename ... on RegisterUserSuccess { token } }
}`;
const CREATE_BOARD = `mutation ($name: String!) {
  createBoard(input: { name: $name }) { __typename ... on CreateBoardSuccess { board { id } } }
}`;
const ADD_COLUMN = `mutation ($b: ID!) {
  addColumn(input: { boardId: $b, name: "Todo", expectedVersion: 1 }) { ... on AddColumnSuccess { column { id } } }
}`;
const ADD_CARD = `mutation ($c: ID!, $t: String!) {
  addCard(input: { columnId: $c, title: $t }) { __typename }
}`;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] };
}

async function post(s: TestServer, query: string, variables: object, token?: string) {
  const response = await fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (await response.json()) as Answer['body'],
  };
}

const codeOf = (answer: Answer) => answer.body.errors?.[0]?.extensions?.['code'];

describe('per-client rate limits and the bounded command queue', () => {
  const servers: TestServer[] = [];
  const serve = async (env: Record<string, string>, storage = openMemoryStorage({})) => {
    const s = await startTestServer({ env, storage });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      await s.close();
      await s.storage.close();
    }
  });

  it('lets one address register REGISTRATIONS_PER_MINUTE users, refuses the rest with 429, Retry-After and RATE_LIMITED', async () => {
    const s = await serve({ REGISTRATIONS_PER_MINUTE: '5' });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(s, REGISTER, { input: { username: `flood${i}`, displayName: 'Flood' } }),
      ),
    );
    const registered = answers.filter(
      (a) => a.body.data?.registerUser?.__typename === 'RegisterUserSuccess',
    );
    const refused = answers.filter((a) => codeOf(a) === ClientLimitCode.RateLimited);
    expect(registered).toHaveLength(5);
    expect(refused).toHaveLength(15);
    for (const answer of refused) {
      expect(answer.status).toBe(429);
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(answer.retryAfter)).toBeLessThanOrEqual(60);
      expect(answer.body.errors![0]!.extensions).toMatchObject({
        limit: 'registrations',
        retryAfterSeconds: Number(answer.retryAfter),
      });
      expect(answer.body.data ?? null).toBeNull();
    }
  });

  it('counts each mutation field of a user against MUTATIONS_PER_MINUTE; another user is not held back', async () => {
    const s = await serve({ MUTATIONS_PER_MINUTE: '10', REGISTRATIONS_PER_MINUTE: '0' });
    const alice = await s.register('alice'); // an anonymous mutation: counted for the address
    const bob = await s.register('bob');
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(s, CREATE_BOARD, { name: `B${i}` }, alice.token)),
    );
    const created = answers.filter(
      (a) => a.body.data?.createBoard?.__typename === 'CreateBoardSuccess',
    );
    expect(created).toHaveLength(10);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(20);
    // Nothing ran for the refused ones: alice has exactly 10 boards.
    const boards = await s.gql<{ boards: unknown[] }>(`{ boards { id } }`, {}, alice.token);
    expect(boards.data!.boards).toHaveLength(10);
    const other = await post(s, CREATE_BOARD, { name: 'Mine' }, bob.token);
    expect(other.body.data?.createBoard?.__typename).toBe('CreateBoardSuccess');
    // Aliases do not get round it: 11 fields in one request are over what is left.
    const aliased = await post(
      s,
      `mutation { ${Array.from({ length: 11 }, (_, i) => `b${i}: createBoard(input: { name: "A${i}" }) { __typename }`).join(' ')} }`,
      {},
      bob.token,
    );
    expect(codeOf(aliased)).toBe(ClientLimitCode.RateLimited);
  });

  it('refuses subscribes over the websocket past SUBSCRIBES_PER_MINUTE with RATE_LIMITED', async () => {
    const s = await serve({ SUBSCRIBES_PER_MINUTE: '3' });
    const alice = await s.register('alice');
    const board = await post(s, CREATE_BOARD, { name: 'Live' }, alice.token);
    const boardId = board.body.data.createBoard.board.id as string;
    const client = createClient({
      url: s.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${alice.token}` },
      retryAttempts: 0,
    });
    const refusals: unknown[] = [];
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 20_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error('condition not met in time');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      for (let i = 0; i < 5; i += 1) {
        client.subscribe(
          {
            query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor } }`,
            variables: { b: boardId },
          },
          {
            next: (result) => void refusals.push(result),
            // Refused before its stream starts: graphql-ws's `error` message, its errors.
            error: (error) =>
              void refusals.push(
                (error as { extensions?: { code?: string } }[])[0]?.extensions?.code,
              ),
            complete: () => undefined,
          },
        );
      }
      await until(() => refusals.length === 2 && s.app.live.stats().subscribers === 3);
      expect(refusals).toEqual([ClientLimitCode.RateLimited, ClientLimitCode.RateLimited]);
    } finally {
      await client.dispose();
    }
  });

  it('answers BUSY at once, writing nothing, to commands past MAX_QUEUED_COMMANDS_PER_STREAM on one column', async () => {
    const storage = openMemoryStorage({});
    let release: () => void = () => {};
    let gate: Promise<void> | null = null;
    const append = storage.store.append.bind(storage.store);
    storage.store.append = async (...args) => {
      if (gate) await gate;
      return append(...args);
    };
    const s = await serve(
      { MAX_QUEUED_COMMANDS_PER_STREAM: '3', MUTATIONS_PER_MINUTE: '0' },
      storage,
    );
    const alice = await s.register('alice');
    const board = await post(s, CREATE_BOARD, { name: 'Busy' }, alice.token);
    const boardId = board.body.data.createBoard.board.id as string;
    const column = await post(s, ADD_COLUMN, { b: boardId }, alice.token);
    const columnId = column.body.data.addColumn.column.id as string;

    gate = new Promise<void>((resolve) => (release = resolve));
    const answers: Answer[] = [];
    const all = Array.from({ length: 10 }, (_, i) =>
      post(s, ADD_CARD, { c: columnId, t: `card ${i}` }, alice.token).then((a) => {
        answers.push(a);
        return a;
      }),
    );
    // One command holds the column (its append waits on the gate), three wait behind it,
    // and the other six are answered while the gate is still shut.
    const deadline = Date.now() + 20_000;
    while (answers.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const busy = answers.filter((a) => codeOf(a) === ClientLimitCode.Busy);
    expect(busy).toHaveLength(6);
    for (const answer of busy) {
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toBe('1');
    }
    gate = null;
    release();
    const settled = await Promise.all(all);
    const added = settled.filter((a) => a.body.data?.addCard?.__typename === 'AddCardSuccess');
    expect(added).toHaveLength(4);
    const count = await s.gql<{ node: { cardCount: number } }>(
      `query ($c: ID!) { node(id: $c) { ... on Column { cardCount } } }`,
      { c: columnId },
      alice.token,
    );
    expect(count.data!.node.cardCount).toBe(4);
  });

  it('lets a later field of an operation that already wrote wait its turn on a busy column, not answer BUSY over the write', async () => {
    const storage = openMemoryStorage({});
    // Appends to the gated stream wait for the gate; each idempotency lookup tells the
    // test once the store has answered it (the command takes its place in line next).
    let gated: string | null = null;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let appending: () => void = () => {};
    const holderAppending = new Promise<void>((resolve) => (appending = resolve));
    const append = storage.store.append.bind(storage.store);
    storage.store.append = async (request, options) => {
      if (gated !== null && request.streams.some((s) => s.stream.endsWith(gated!))) {
        appending();
        await gate;
      }
      return append(request, options);
    };
    const looked: (() => void)[] = [];
    const nextLookup = () => new Promise<void>((resolve) => looked.push(resolve));
    const idempotentResult = storage.store.idempotentResult.bind(storage.store);
    storage.store.idempotentResult = async (...args) => {
      const answer = await idempotentResult(...args);
      looked.shift()?.();
      return answer;
    };
    const afterPendingWork = () => new Promise((resolve) => setImmediate(resolve));
    const s = await serve(
      { MAX_QUEUED_COMMANDS_PER_STREAM: '1', MUTATIONS_PER_MINUTE: '0' },
      storage,
    );
    const alice = await s.register('alice');
    const board = await post(s, CREATE_BOARD, { name: 'Busy' }, alice.token);
    const boardId = board.body.data.createBoard.board.id as string;
    const column = await post(s, ADD_COLUMN, { b: boardId }, alice.token);
    const hot = column.body.data.addColumn.column.id as string;
    const other = await post(
      s,
      `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "Later", expectedVersion: 2 }) { ... on AddColumnSuccess { column { id } } } }`,
      { b: boardId },
      alice.token,
    );
    const cold = other.body.data.addColumn.column.id as string;
    const card = await post(
      s,
      `mutation ($c: ID!) { addCard(input: { columnId: $c, title: "Draft" }) { ... on AddCardSuccess { card { id } } } }`,
      { c: cold },
      alice.token,
    );
    const cardId = card.body.data.addCard.card.id as string;
    // Bob fills the line, so that Alice's own membership stream (which her commands
    // hold while they decide) is free.
    const bob = await s.register('bob');
    await post(
      s,
      `mutation ($b: ID!) { addMember(input: { boardId: $b, username: "bob", expectedVersion: 3 }) { __typename } }`,
      { b: boardId },
      alice.token,
    );

    // The hot column's line is full: one command holds it (its append waits on the
    // gate) and one waits behind it.
    gated = Buffer.from(hot, 'base64').toString('utf8').split(':')[1]!;
    const addKeyed = (key: string) =>
      post(
        s,
        `mutation ($c: ID!, $k: String!) { addCard(input: { columnId: $c, title: $k, idempotencyKey: $k }) { __typename } }`,
        { c: hot, k: key },
        bob.token,
      );
    const holder = post(s, ADD_CARD, { c: hot, t: 'holder' }, bob.token);
    await holderAppending;
    const waiterLooked = nextLookup();
    const waiter = addKeyed('waiter');
    await waiterLooked;
    await afterPendingWork();

    // One operation: its first field writes the card (another stream), its second
    // meets the full line.
    const secondLooked = nextLookup();
    const both = post(
      s,
      `mutation ($card: ID!, $c: ID!) {
        edit: editCard(input: { cardId: $card, expectedVersion: 1, title: "Final" }) { __typename }
        add: addCard(input: { columnId: $c, title: "second", idempotencyKey: "second" }) { __typename }
      }`,
      { card: cardId, c: hot },
      alice.token,
    );
    await secondLooked;
    await afterPendingWork();
    release();

    const answer = await both;
    expect(answer.body.errors).toBeUndefined();
    expect(answer.status).toBe(200);
    expect(answer.body.data).toEqual({
      edit: { __typename: 'EditCardSuccess' },
      add: { __typename: 'AddCardSuccess' },
    });
    for (const other of await Promise.all([holder, waiter])) {
      expect(other.body.data.addCard.__typename).toBe('AddCardSuccess');
    }
    const after = await s.gql<{ card: { title: string }; hot: { cardCount: number } }>(
      `query ($card: ID!, $c: ID!) {
        card: node(id: $card) { ... on Card { title } }
        hot: node(id: $c) { ... on Column { cardCount } }
      }`,
      { card: cardId, c: hot },
      alice.token,
    );
    expect(after.data).toEqual({ card: { title: 'Final' }, hot: { cardCount: 3 } });
  });
});
