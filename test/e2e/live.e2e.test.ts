import { once } from 'node:events';
import type { GraphQLFormattedError } from 'graphql';
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LiveCloseCode } from '../../src/live/limits.js';
import { LiveErrorCode } from '../../src/sdk/liveErrorCodes.js';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import { CorkboardRequestError } from '../../src/sdk/CorkboardRequestError.js';
import {
  createCorkboardClient,
  type CorkboardClient,
  type CorkboardOperations,
} from '../../src/sdk/createCorkboardClient.js';
import { BoardChangesDocument } from '../../src/sdk/generated/graphql.js';
import { openMemoryStorage } from '../../src/storage.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { cardFields } from '../../src/boards/card/events.js';

// Clients talk to the server through the typed SDK. Raw graphql-ws, `ws` and HTTP are
// used only for what the SDK hides on purpose: several subscriptions on one socket, a
// socket that stops reading or never initialises, other ways to send the token, SSE.

/** The SDK's own subscription, for the tests that speak the protocol themselves. */
const CHANGES = print(BoardChangesDocument);

/** What the server sends: the generated type claims a `__typename` the document does not select. */
type Invalidation = Omit<BoardChange['invalidated'][number], '__typename'>;
type Ref = { id: string; version: number };

/** Polls `condition` until it holds (or fails the test after `timeoutMs`). */
async function until(condition: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits until the server holds `n` subscribers (so "from now on" has begun). */
const subscribed = (s: TestServer, n: number) =>
  until(() => s.app.live.stats().subscribers >= n, `${n} subscribers`);

/** Undone after each test: subscriptions, graphql-ws clients and sockets still open. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/**
 * An SDK client of `s`, signed in with `token` when given. It does not reconnect: these
 * tests check what the server delivers on one connection, which a silent resume would
 * hide; a dropped socket ends the subscription with an error instead.
 */
const clientOf = (s: TestServer, token?: string, webSocketImpl: unknown = WebSocket) =>
  createCorkboardClient({
    url: `${s.url}/graphql`,
    ...(token ? { token } : {}),
    webSocketImpl,
    reconnect: { maxAttempts: 0 },
  });

/**
 * The mutations of the SDK that take an `input`: each resolves to a union with a
 * `<Name>Success` member.
 */
type Mutation = {
  [K in keyof CorkboardOperations]: NonNullable<Parameters<CorkboardClient[K]>[0]> extends {
    input: unknown;
  }
    ? K
    : never;
}[keyof CorkboardOperations];
type InputOf<K extends Mutation> = Parameters<CorkboardClient[K]>[0]['input'];
type SuccessOf<K extends Mutation> = Extract<
  Awaited<ReturnType<CorkboardClient[K]>>,
  { __typename: `${Capitalize<K>}Success` }
>;

/** Runs one mutation through the SDK and returns its success member (throws on any other). */
async function commit<K extends Mutation>(
  client: CorkboardClient,
  name: K,
  input: InputOf<K>,
): Promise<SuccessOf<K>> {
  const send = client[name] as (variables: {
    input: InputOf<K>;
  }) => Promise<{ __typename: string }>;
  const result = await send({ input });
  if (result.__typename !== `${name[0]!.toUpperCase()}${name.slice(1)}Success`) {
    throw new Error(`${name}: ${JSON.stringify(result)}`);
  }
  return result as SuccessOf<K>;
}

/** Registers `username` through the SDK: its id, its token and a client signed in as it. */
async function signUp(s: TestServer, username: string) {
  const { token, user } = await commit(clientOf(s), 'registerUser', {
    username,
    displayName: username,
  });
  return { id: user.id, token, client: clientOf(s, token) };
}

/** A new board with one column `Todo`. */
async function boardWithColumn(client: CorkboardClient, name: string) {
  const { board } = await commit(client, 'createBoard', { name });
  const { column } = await commit(client, 'addColumn', {
    boardId: board.id,
    name: 'Todo',
    expectedVersion: board.version,
  });
  return { board, column };
}

/** What one subscription received, and how it ended. */
interface Feed {
  changes: BoardChange[];
  errors: GraphQLFormattedError[];
  completed: boolean;
}

/**
 * `client.boardChanges(boardId, { after })`, consumed in the background. `stop()` aborts
 * it (closing its socket) and resolves once the iteration has ended.
 */
function follow(client: CorkboardClient, boardId: string, after?: string) {
  const abort = new AbortController();
  const feed: Feed = { changes: [], errors: [], completed: false };
  const ended = (async () => {
    try {
      for await (const change of client.boardChanges(boardId, { after, signal: abort.signal })) {
        feed.changes.push(change);
      }
    } catch (error) {
      feed.errors.push(
        ...(error instanceof CorkboardRequestError && error.errors.length > 0
          ? error.errors
          : [{ message: String(error) }]),
      );
    } finally {
      feed.completed = true;
    }
  })();
  const stop = () => {
    abort.abort();
    return ended;
  };
  cleanups.push(stop);
  return Object.assign(feed, { stop });
}

/** A raw graphql-ws client: for what the SDK does not do (its own connectionParams, ...). */
function rawClient(s: TestServer, connectionParams: Record<string, unknown>): Client {
  const client = createClient({
    url: s.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
  });
  cleanups.push(() => client.dispose());
  return client;
}

/** One `boardChanges` subscription on a raw graphql-ws client, recording what arrives. */
function followRaw(client: Client, boardId: string): Feed {
  const feed: Feed = { changes: [], errors: [], completed: false };
  client.subscribe<{ boardChanges: BoardChange }>(
    { query: CHANGES, variables: { boardId } },
    {
      next: (result) => {
        if (result.errors) feed.errors.push(...result.errors);
        if (result.data?.boardChanges) feed.changes.push(result.data.boardChanges);
      },
      error: (error) => {
        feed.errors.push(...(Array.isArray(error) ? error : [{ message: String(error) }]));
        feed.completed = true;
      },
      complete: () => {
        feed.completed = true;
      },
    },
  );
  return feed;
}

/** A raw graphql-transport-ws socket, closed after the test. */
function rawSocket(s: TestServer) {
  const socket = new WebSocket(s.wsUrl, 'graphql-transport-ws');
  cleanups.push(() => socket.terminate());
  return socket;
}

/** A raw socket that sent `connection_init` (with `payload` when given) and got the ack. */
async function acknowledgedSocket(s: TestServer, payload?: Record<string, unknown>) {
  const socket = rawSocket(s);
  await once(socket, 'open');
  send(socket, { type: 'connection_init', ...(payload ? { payload } : {}) });
  const [ack] = (await once(socket, 'message')) as [Buffer];
  expect(JSON.parse(ack.toString())).toEqual({ type: 'connection_ack' });
  return socket;
}
const send = (socket: WebSocket, message: Record<string, unknown>) =>
  socket.send(JSON.stringify(message));

/** A `ws` WebSocket for the SDK that also keeps every message the server sent on it. */
const recordingWebSocket = (received: any[]) =>
  class extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      this.on('message', (data: Buffer) => received.push(JSON.parse(data.toString())));
    }
  };

const inv = (typename: string, ref: Ref, fields: string[]): Invalidation => ({
  typename,
  id: ref.id,
  fields,
  version: ref.version,
});
const normalized = (invalidated: Invalidation[]) =>
  invalidated
    .map((i) => ({ ...i, fields: [...i.fields].sort() }))
    .sort((a, b) => `${a.typename}${a.id}`.localeCompare(`${b.typename}${b.id}`));

/** The raw id inside a global ID. */
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

describe('boardChanges over graphql-ws', () => {
  let s: TestServer;
  let alice: Awaited<ReturnType<typeof signUp>>;
  beforeAll(async () => {
    s = await startTestServer();
    alice = await signUp(s, 'alice');
  });
  afterAll(async () => {
    await s.close();
  });

  it('pushes exactly one message per commit, in order, naming exactly what each mutation made stale', async () => {
    const bob = await signUp(s, 'bob');
    const a = alice.client;
    // A first board, only to learn a cursor from before the second one exists.
    const other = (await commit(a, 'createBoard', { name: 'Other' })).board;
    const probe = follow(a, other.id);
    await subscribed(s, 1);
    await commit(a, 'renameBoard', {
      boardId: other.id,
      name: 'Other 2',
      expectedVersion: other.version,
    });
    await until(() => probe.changes.length === 1, 'the probe');
    await probe.stop();
    await until(() => s.app.live.stats().subscribers === 0, 'the probe to go');
    const before = probe.changes[0]!.cursor;

    let board: Ref = (await commit(a, 'createBoard', { name: 'Plan' })).board;
    // Replayed from `before`: the board's creation; then live: everything below.
    const feed = follow(a, board.id, before);
    await until(() => feed.changes.length === 1, 'the replayed createBoard');
    await subscribed(s, 1);
    const expected: { operation: string; invalidated: Invalidation[] }[] = [
      {
        operation: 'createBoard',
        invalidated: [
          inv('Board', board, [
            'name',
            'members',
            'memberships',
            'viewerRole',
            'columns',
            'archived',
          ]),
        ],
      },
    ];
    const step = async <K extends Mutation>(
      operation: K,
      input: InputOf<K>,
      invalidated: (p: SuccessOf<K>) => Invalidation[],
    ) => {
      const payload = await commit(a, operation, input);
      expected.push({ operation, invalidated: invalidated(payload) });
      // Each message arrives before the next commit, so versions are the current ones.
      await until(() => feed.changes.length === expected.length, `the ${operation} message`);
      return payload;
    };

    board = (
      await step(
        'renameBoard',
        { boardId: board.id, name: 'Q3', expectedVersion: board.version },
        (p) => [inv('Board', p.board, ['name'])],
      )
    ).board;
    board = (
      await step(
        'addMember',
        { boardId: board.id, username: 'bob', expectedVersion: board.version },
        (p) => [inv('Board', p.board, ['members', 'memberships', 'viewerRole'])],
      )
    ).board;
    const addColumn = async (name: string) => {
      const p = await step(
        'addColumn',
        { boardId: board.id, name, expectedVersion: board.version },
        (p) => [
          inv('Board', p.board, ['columns']),
          inv('Column', p.column, [
            'board',
            'name',
            'wipLimit',
            'cards',
            'cardCount',
            'archivedCards',
            'archived',
          ]),
        ],
      );
      board = p.board;
      return p.column as Ref;
    };
    let todo = await addColumn('Todo');
    let doing = await addColumn('Doing');
    board = (
      await step('moveColumn', { columnId: doing.id, expectedVersion: board.version }, (p) => [
        inv('Board', p.board, ['columns']),
      ])
    ).board;
    doing = (
      await step(
        'setWipLimit',
        { columnId: doing.id, wipLimit: 5, expectedVersion: doing.version },
        (p) => [inv('Column', p.column, ['wipLimit'])],
      )
    ).column;
    const cards: Ref[] = [];
    for (const title of ['a', 'b', 'c', 'd']) {
      const p = await step('addCard', { columnId: todo.id, title }, (p) => [
        inv('Column', p.column, ['cards', 'cardCount']),
        inv('Card', p.card, [...cardFields]),
      ]);
      todo = p.column;
      cards.push(p.card);
    }
    cards[0] = (
      await step(
        'editCard',
        {
          cardId: cards[0]!.id,
          expectedVersion: cards[0]!.version,
          title: 'A',
          assigneeId: bob.id,
        },
        (p) => [inv('Card', p.card, ['title', 'assignee'])],
      )
    ).card;
    // Across columns: the card and both columns, in one message.
    const moved = await step(
      'moveCard',
      { cardId: cards[0].id, toColumnId: doing.id, expectedVersion: cards[0].version },
      (p) => [
        inv('Card', p.card, ['column', 'rank']),
        inv('Column', p.from, ['cards', 'cardCount']),
        inv('Column', p.to, ['cards', 'cardCount']),
      ],
    );
    cards[0] = moved.card;
    todo = moved.from;
    doing = moved.to;
    // Within a column: the card's rank and the column's order.
    const within = await step(
      'moveCard',
      {
        cardId: cards[1]!.id,
        toColumnId: todo.id,
        afterCardId: cards[3]!.id,
        expectedVersion: cards[1]!.version,
      },
      (p) => [inv('Card', p.card, ['rank']), inv('Column', p.to, ['cards'])],
    );
    cards[1] = within.card;
    todo = within.to;
    const archived = await step(
      'archiveCard',
      { cardId: cards[0].id, expectedVersion: cards[0].version },
      (p) => [
        inv('Card', p.card, ['archived']),
        inv('Column', p.column, ['cards', 'cardCount', 'archivedCards']),
      ],
    );
    cards[0] = archived.card;
    doing = archived.column;
    for (const i of [1, 2]) {
      cards[i] = (
        await step(
          'editCard',
          { cardId: cards[i]!.id, expectedVersion: cards[i]!.version, done: true },
          (p) => [inv('Card', p.card, ['done'])],
        )
      ).card;
    }
    // A commit outside the board (a registration) sends nothing to it.
    await signUp(s, 'carol');
    todo = (
      await step('archiveDoneCards', { columnId: todo.id }, (p) => [
        inv('Column', p.column, ['cards', 'cardCount', 'archivedCards']),
        inv('Card', { id: cards[1]!.id, version: cards[1]!.version + 1 }, ['archived']),
        inv('Card', { id: cards[2]!.id, version: cards[2]!.version + 1 }, ['archived']),
      ])
    ).column;
    // Back into its own column: it leaves the column's archived cards and joins its cards.
    doing = (
      await step('restoreCard', { cardId: cards[0].id, expectedVersion: cards[0].version }, (p) => [
        inv('Card', p.card, ['archived', 'column', 'rank']),
        inv('Column', p.column, ['cards', 'cardCount', 'archivedCards']),
      ])
    ).column;
    // Into another column: that one's cards, and the archived cards of the one it left,
    // at that column's new version.
    await step(
      'restoreCard',
      { cardId: cards[1].id, toColumnId: doing.id, expectedVersion: cards[1].version + 1 },
      (p) => [
        inv('Card', p.card, ['archived', 'column', 'rank']),
        inv('Column', p.column, ['cards', 'cardCount']),
        inv('Column', { id: todo.id, version: todo.version + 1 }, ['archivedCards']),
      ],
    );

    expect(feed.errors).toEqual([]);
    expect(feed.changes.map((c) => c.operation)).toEqual(expected.map((e) => e.operation));
    feed.changes.forEach((change, i) => {
      expect(change.boardId).toBe(board.id);
      expect(change.resyncRequired).toBe(false);
      expect(change.actor).toEqual({
        id: alice.id,
        username: 'alice',
        displayName: 'alice',
      });
      expect([change.operation, normalized(change.invalidated)]).toEqual([
        expected[i]!.operation,
        normalized(expected[i]!.invalidated),
      ]);
    });
    const cursors = feed.changes.map((c) => Number(c.cursor));
    expect(cursors[0]).toBeGreaterThan(Number(before));
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(cursors.length);
  });

  it('replays exactly the 50 changes missed while disconnected, then goes live, none twice', async () => {
    const a = alice.client;
    const { board, column } = await boardWithColumn(a, 'Resume');
    const first = follow(a, board.id);
    await subscribed(s, 1);
    await commit(a, 'addCard', { columnId: column.id, title: 'seen' });
    await until(() => first.changes.length === 1, 'the first change');
    await first.stop();
    const last = first.changes[0]!.cursor;
    await until(() => s.app.live.stats().subscribers === 0, 'the disconnect');

    const missed: string[] = [];
    for (let i = 0; i < 50; i++) {
      missed.push((await commit(a, 'addCard', { columnId: column.id, title: `m${i}` })).card.id);
    }
    const resumed = follow(a, board.id, last);
    await until(() => resumed.changes.length === 50, 'the replay');
    await subscribed(s, 1);
    const live = (await commit(a, 'addCard', { columnId: column.id, title: 'live' })).card;
    await until(() => resumed.changes.length === 51, 'the live change');

    const cardOf = (c: BoardChange) => c.invalidated.find((i) => i.typename === 'Card')!.id;
    expect(resumed.changes.map(cardOf)).toEqual([...missed, live.id]);
    const cursors = resumed.changes.map((c) => Number(c.cursor));
    expect(cursors[0]).toBe(Number(last) + 1);
    expect(cursors).toEqual(cursors.map((_, i) => Number(last) + 1 + i));
    expect(resumed.errors).toEqual([]);
  });

  it('resumes without gap or duplicate while a writer keeps committing during the reconnect', async () => {
    const a = alice.client;
    const { board, column } = await boardWithColumn(a, 'Busy');
    const noise = (await commit(a, 'createBoard', { name: 'Noise' })).board;
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await commit(a, 'addCard', { columnId: column.id, title: `w${written++}` });
      }
    })();
    // Commits of another board interleave with the replayed ones.
    const noiseWriter = (async () => {
      let version = noise.version;
      while (writing) {
        const p = await commit(a, 'renameBoard', {
          boardId: noise.id,
          name: `n${version}`,
          expectedVersion: version,
        });
        version = p.board.version;
      }
    })();

    for (let round = 0; round < 3; round++) {
      const first = follow(a, board.id);
      await until(() => first.changes.length >= 3, 'some live changes');
      await first.stop();
      const last = first.changes.at(-1)!.cursor;
      await until(() => written >= (round + 1) * 25, 'more commits while away');
      const resumed = follow(a, board.id, last);
      await until(() => resumed.changes.length >= 30, 'the replay and live changes');
      const got = resumed.changes.map((c) => Number(c.cursor));
      // Exactly the board's entries after `last`, as the change log holds them.
      const page = await s.storage.projector.changeLog.read(Number(last), { limit: 10_000 });
      if (page.kind !== 'entries') throw new Error('expired');
      const expectedCursors = page.entries
        .filter((e) => e.scopes.includes(rawId(board.id)))
        .map((e) => e.cursor)
        .slice(0, got.length);
      expect(got).toEqual(expectedCursors);
      expect(resumed.errors).toEqual([]);
      await resumed.stop();
    }
    writing = false;
    await Promise.all([writer, noiseWriter]);
  });

  it('refuses a non-member and an anonymous subscriber with an error and no data', async () => {
    const board = (await commit(alice.client, 'createBoard', { name: 'Private' })).board;
    const mallory = await signUp(s, 'mallory');
    // Every message the server sends these three, to check that none carries data.
    const received: any[] = [];
    const recording = recordingWebSocket(received);
    const outsider = follow(clientOf(s, mallory.token, recording), board.id);
    const anonymous = follow(clientOf(s, undefined, recording), board.id);
    const unknown = follow(
      clientOf(s, alice.token, recording),
      Buffer.from('Board:nope').toString('base64'),
    );
    await until(
      () => outsider.completed && anonymous.completed && unknown.completed,
      'the refusals',
    );
    await commit(alice.client, 'renameBoard', {
      boardId: board.id,
      name: 'Still private',
      expectedVersion: board.version,
    });
    for (const [feed, code] of [
      [outsider, 'NOT_FOUND'],
      [anonymous, 'UNAUTHENTICATED'],
      [unknown, 'NOT_FOUND'],
    ] as const) {
      expect(feed.changes).toEqual([]);
      expect(feed.errors).toMatchObject([{ extensions: { code } }]);
    }
    const answers = received.filter((m) => m.type === 'next' || m.type === 'error');
    expect(answers).toHaveLength(3);
    expect(answers.map((m) => m.payload?.data).filter((d) => d != null)).toEqual([]);
    expect(s.app.live.stats().subscribers).toBe(0);
  });

  it('refuses a subscription beyond the per-connection limit, keeping the others', async () => {
    // Twenty-one subscriptions on ONE socket: the SDK opens a socket per subscription.
    const board = (await commit(alice.client, 'createBoard', { name: 'Many' })).board;
    const client = rawClient(s, { authorization: `Bearer ${alice.token}` });
    const feeds = Array.from({ length: 20 }, () => followRaw(client, board.id));
    await subscribed(s, 20);
    const extra = followRaw(client, board.id);
    await until(() => extra.completed, 'the refusal');
    expect(extra.errors).toMatchObject([
      { extensions: { code: LiveErrorCode.TooManySubscriptions } },
    ]);
    await commit(alice.client, 'renameBoard', {
      boardId: board.id,
      name: 'Many 2',
      expectedVersion: board.version,
    });
    await until(() => feeds.every((f) => f.changes.length === 1), 'every subscription');
    expect(extra.changes).toEqual([]);
  });

  it('takes the token from GraphiQL-style operation headers or a capitalised connectionParams key', async () => {
    const board = (await commit(alice.client, 'createBoard', { name: 'Keys' })).board;
    // What yoga's GraphiQL sends: no connectionParams, the headers editor in `extensions`.
    const socket = await acknowledgedSocket(s);
    const messages: any[] = [];
    socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString())));
    send(socket, {
      id: 'g',
      type: 'subscribe',
      payload: {
        query: CHANGES,
        variables: { boardId: board.id },
        extensions: { headers: { Authorization: `Bearer ${alice.token}` } },
      },
    });
    // The SDK always sends `authorization` in lower case.
    const capitalised = rawClient(s, { Authorization: `Bearer ${alice.token}` });
    const feed = followRaw(capitalised, board.id);
    await subscribed(s, 2);
    await commit(alice.client, 'renameBoard', {
      boardId: board.id,
      name: 'Keys 2',
      expectedVersion: board.version,
    });
    await until(() => messages.length === 1 && feed.changes.length === 1, 'both changes');
    expect(messages[0]).toMatchObject({
      id: 'g',
      type: 'next',
      payload: { data: { boardChanges: { operation: 'renameBoard' } } },
    });
    expect(feed.changes[0]).toMatchObject({ operation: 'renameBoard' });
  });

  it('refuses an authorization that is not a string as a malformed token, not as anonymous', async () => {
    for (const authorization of [12345, { token: alice.token }, [alice.token]]) {
      const client = rawClient(s, { authorization });
      const answer = await new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: '{ me { id } }' },
          { next: resolve, error: resolve, complete: () => undefined },
        );
      });
      // Anonymous would answer `{ data: { me: null } }`.
      expect(answer).toMatchObject([{ extensions: { code: 'UNAUTHENTICATED' } }]);
    }
  });

  it('still serves boardChanges over SSE', async () => {
    const board = (await commit(alice.client, 'createBoard', { name: 'SSE' })).board;
    const abort = new AbortController();
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${alice.token}`,
      },
      body: JSON.stringify({ query: CHANGES, variables: { boardId: board.id } }),
      signal: abort.signal,
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    await subscribed(s, 1);
    await commit(alice.client, 'renameBoard', {
      boardId: board.id,
      name: 'SSE 2',
      expectedVersion: board.version,
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes('"renameBoard"')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    abort.abort();
    expect(text).toContain('"operation":"renameBoard"');
    await until(() => s.app.live.stats().subscribers === 0, 'the SSE subscriber to go');
  });
});

describe('boardChanges membership', () => {
  it('ends the subscription of a member removed from the board with NOT_FOUND, before that change', async () => {
    const s = await startTestServer();
    try {
      const alice = await signUp(s, 'alice');
      const bob = await signUp(s, 'bob');
      const board = (await commit(alice.client, 'createBoard', { name: 'Team' })).board;
      await commit(alice.client, 'addMember', {
        boardId: board.id,
        username: 'bob',
        expectedVersion: board.version,
      });
      const feed = follow(bob.client, board.id);
      await subscribed(s, 1);
      await commit(alice.client, 'removeMember', {
        boardId: board.id,
        userId: bob.id,
        expectedVersion: board.version + 1,
      });
      await until(() => feed.completed, 'the revocation');
      expect(feed.changes).toEqual([]);
      expect(feed.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
      expect(s.app.live.stats()).toMatchObject({ subscribers: 0, revoked: 1 });
    } finally {
      await s.close();
    }
  });
});

describe('boardChanges across instances', () => {
  it('delivers a change committed through instance A to subscribers of instances A and B', async () => {
    const storage = openMemoryStorage({});
    const a = await startTestServer({ storage });
    const b = await startTestServer({ storage });
    try {
      const alice = await signUp(a, 'alice');
      const onB = clientOf(b, alice.token);
      const board = (await commit(alice.client, 'createBoard', { name: 'Shared' })).board;
      const fromA = follow(alice.client, board.id);
      const fromB = follow(onB, board.id);
      await subscribed(a, 1);
      await subscribed(b, 1);
      await commit(alice.client, 'renameBoard', {
        boardId: board.id,
        name: 'via A',
        expectedVersion: board.version,
      });
      await commit(onB, 'renameBoard', {
        boardId: board.id,
        name: 'via B',
        expectedVersion: board.version + 1,
      });
      await until(() => fromA.changes.length === 2 && fromB.changes.length === 2, 'both instances');
      expect(fromB.changes).toEqual(fromA.changes);
      expect(fromA.changes.map((c) => c.operation)).toEqual(['renameBoard', 'renameBoard']);
    } finally {
      await a.close();
      await b.close();
      await storage.close();
    }
  });
});

describe('boardChanges limits', () => {
  let s: TestServer;
  let alice: Awaited<ReturnType<typeof signUp>>;
  const maxQueuedMessages = 10;
  beforeAll(async () => {
    s = await startTestServer({
      storage: openMemoryStorage({ changeLogRetention: 5 }),
      live: { maxQueuedMessages, connectionInitTimeoutMs: 300 },
    });
    alice = await signUp(s, 'alice');
  });
  afterAll(async () => {
    await s.close();
    await s.storage.close();
  });

  it('answers a cursor older than the retention with one resyncRequired message, then goes live', async () => {
    const board = (await commit(alice.client, 'createBoard', { name: 'Old' })).board;
    let version = board.version;
    for (let i = 0; i < 8; i++) {
      version = (
        await commit(alice.client, 'renameBoard', {
          boardId: board.id,
          name: `r${i}`,
          expectedVersion: version,
        })
      ).board.version;
    }
    const head = await s.storage.projector.changeLog.head();
    const feed = follow(alice.client, board.id, '1');
    await until(() => feed.changes.length === 1, 'the resync');
    await subscribed(s, 1);
    await commit(alice.client, 'renameBoard', {
      boardId: board.id,
      name: 'live',
      expectedVersion: version,
    });
    await until(() => feed.changes.length === 2, 'the live change');
    expect(feed.changes[0]).toMatchObject({
      cursor: String(head),
      boardId: board.id,
      resyncRequired: true,
      invalidated: [],
      actor: null,
    });
    expect(feed.changes[1]).toMatchObject({
      cursor: String(head + 1),
      operation: 'renameBoard',
      resyncRequired: false,
    });
    expect(feed.errors).toEqual([]);
  });

  it('closes a connection that never sends connection_init with 4408', async () => {
    const socket = rawSocket(s);
    const [code] = (await once(socket, 'close')) as [number];
    expect(code).toBe(4408);
  });

  it('disconnects a slow consumer with 4008 while its queue stays within its bound', async () => {
    const { board, column } = await boardWithColumn(alice.client, 'Firehose');
    // A well-behaved client on the same board keeps receiving throughout.
    const healthy = follow(alice.client, board.id);

    // A socket that stops reading, with all its subscriptions: the SDK always reads.
    const socket = await acknowledgedSocket(s, { authorization: `Bearer ${alice.token}` });
    const closed = once(socket, 'close') as Promise<[number, Buffer]>;
    // Large messages (the invalidations, many times over) on many subscriptions fill the
    // operating system's buffers quickly; then the server's own queues start to grow.
    const selection = Array.from(
      { length: 25 },
      (_, i) => `i${i}: invalidated { typename id fields version }`,
    ).join(' ');
    for (let i = 0; i < 19; i++) {
      send(socket, {
        id: `s${i}`,
        type: 'subscribe',
        payload: {
          query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor ${selection} } }`,
          variables: { b: board.id },
        },
      });
    }
    await subscribed(s, 20);
    socket.pause();

    let commits = 0;
    while (s.app.live.stats().slowConsumers === 0) {
      if (commits > 2_000) throw new Error('never detected the slow consumer');
      await commit(alice.client, 'addCard', { columnId: column.id, title: `c${commits}` });
      commits++;
    }
    const stats = s.app.live.stats();
    expect(stats.peakQueued).toBeLessThanOrEqual(maxQueuedMessages);
    // Every subscription of that socket is gone at once; the healthy one stays.
    await until(() => s.app.live.stats().subscribers === 1, 'the slow subscriptions to go');
    socket.resume();
    const [code, reason] = await closed;
    expect(code).toBe(LiveCloseCode.SlowConsumer);
    expect(reason.toString()).toBe('slow consumer');

    await commit(alice.client, 'addCard', { columnId: column.id, title: 'after' });
    await until(() => healthy.changes.length === commits + 1, 'the healthy client');
    expect(healthy.errors).toEqual([]);
  });
});
