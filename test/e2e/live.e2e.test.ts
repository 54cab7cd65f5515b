import { once } from 'node:events';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { BoardDoc } from '../../src/boards/readModel.js';
import { LiveCloseCode, LiveErrorCode } from '../../src/live/limits.js';
import { openMemoryStorage } from '../../src/storage.js';
import { startTestServer, type TestServer } from '../support/server.js';

const CHANGES = `subscription ($boardId: ID!, $after: Cursor) {
  boardChanges(boardId: $boardId, after: $after) {
    cursor boardId operation actor { username } at resyncRequired
    invalidated { typename id fields version }
  }
}`;

interface Invalidation {
  typename: string;
  id: string;
  fields: string[];
  version: number;
}
interface Change {
  cursor: string;
  boardId: string;
  operation: string;
  actor: { username: string } | null;
  at: string;
  resyncRequired: boolean;
  invalidated: Invalidation[];
}

/** Polls `condition` until it holds (or fails the test after `timeoutMs`). */
async function until(condition: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const openClients: Client[] = [];
function wsClient(s: TestServer, token?: string): Client {
  const client = createClient({
    url: s.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  openClients.push(client);
  return client;
}

/** One `boardChanges` subscription, recording what arrives. */
function follow(client: Client, variables: { boardId: string; after?: string | null }) {
  const feed = {
    changes: [] as Change[],
    errors: [] as { message: string; extensions?: Record<string, unknown> }[],
    data: [] as unknown[],
    completed: false,
    stop: () => {},
  };
  feed.stop = client.subscribe<{ boardChanges: Change }>(
    { query: CHANGES, variables },
    {
      next: (result) => {
        if (result.errors) feed.errors.push(...(result.errors as never[]));
        if (result.data !== undefined) feed.data.push(result.data);
        if (result.data?.boardChanges) feed.changes.push(result.data.boardChanges);
      },
      error: (error) => {
        feed.errors.push(
          ...(Array.isArray(error) ? error : [{ message: String((error as Error).message) }]),
        );
        feed.completed = true;
      },
      complete: () => {
        feed.completed = true;
      },
    },
  );
  return feed;
}

/** Waits until the server holds `n` subscribers (so "from now on" has begun). */
const subscribed = (s: TestServer, n: number) =>
  until(() => s.app.live.stats().subscribers >= n, `${n} subscribers`);

const SELECTIONS: Record<string, string> = {
  createBoard: 'board { id version }',
  renameBoard: 'board { id version }',
  addMember: 'board { id version }',
  addColumn: 'column { id version } board { id version }',
  moveColumn: 'board { id version }',
  setWipLimit: 'column { id version }',
  addCard: 'card { id version } column { id version }',
  editCard: 'card { id version }',
  moveCard: 'card { id version } from { id version } to { id version }',
  archiveCard: 'card { id version } column { id version }',
  archiveDoneCards: 'column { id version } archivedCount',
};
type Ref = { id: string; version: number };

/** Runs one mutation over HTTP and returns its success payload (throws on anything else). */
async function mutate(
  s: TestServer,
  token: string,
  name: string,
  input: Record<string, unknown>,
): Promise<Record<string, any>> {
  const type = name[0]!.toUpperCase() + name.slice(1);
  const r = await s.gql(
    `mutation ($i: ${type}Input!) { r: ${name}(input: $i) { __typename
      ... on ${type}Success { ${SELECTIONS[name]} } ... on Error { code message } } }`,
    { i: input },
    token,
  );
  const payload = r.data?.r;
  if (payload?.__typename !== `${type}Success`) {
    throw new Error(`${name}: ${JSON.stringify(r)}`);
  }
  return payload;
}

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

afterEach(() => {
  for (const client of openClients.splice(0)) void client.dispose();
});

describe('boardChanges over graphql-ws', () => {
  let s: TestServer;
  let alice: { id: string; token: string };
  beforeAll(async () => {
    s = await startTestServer();
    alice = await s.register('alice');
  });
  afterAll(async () => {
    await s.close();
  });

  it('pushes exactly one message per commit, in order, naming exactly what each mutation made stale', async () => {
    const bob = await s.register('bob');
    // A first board, only to learn a cursor from before the second one exists.
    const other = (await mutate(s, alice.token, 'createBoard', { name: 'Other' })).board as Ref;
    const client = wsClient(s, alice.token);
    const probe = follow(client, { boardId: other.id });
    await subscribed(s, 1);
    await mutate(s, alice.token, 'renameBoard', {
      boardId: other.id,
      name: 'Other 2',
      expectedVersion: other.version,
    });
    await until(() => probe.changes.length === 1, 'the probe');
    probe.stop();
    const before = probe.changes[0]!.cursor;

    let board = (await mutate(s, alice.token, 'createBoard', { name: 'Plan' })).board as Ref;
    // Replayed from `before`: the board's creation; then live: everything below.
    const feed = follow(client, { boardId: board.id, after: before });
    await until(() => feed.changes.length === 1, 'the replayed createBoard');
    await subscribed(s, 1);
    const expected: { operation: string; invalidated: Invalidation[] }[] = [
      {
        operation: 'createBoard',
        invalidated: [inv('Board', board, ['name', 'members', 'columns'])],
      },
    ];
    const step = async (
      operation: string,
      input: Record<string, unknown>,
      invalidated: (p: Record<string, any>) => Invalidation[],
    ) => {
      const payload = await mutate(s, alice.token, operation, input);
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
        (p) => [inv('Board', p.board, ['members'])],
      )
    ).board;
    const addColumn = async (name: string) => {
      const p = await step(
        'addColumn',
        { boardId: board.id, name, expectedVersion: board.version },
        (p) => [
          inv('Board', p.board, ['columns']),
          inv('Column', p.column, ['board', 'name', 'wipLimit', 'cards', 'cardCount']),
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
        inv('Card', p.card, [
          'board',
          'column',
          'title',
          'description',
          'assignee',
          'labels',
          'done',
          'archived',
          'rank',
        ]),
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
      { cardId: cards[0]!.id, toColumnId: doing.id, expectedVersion: cards[0]!.version },
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
      { cardId: cards[0]!.id, expectedVersion: cards[0]!.version },
      (p) => [inv('Card', p.card, ['archived']), inv('Column', p.column, ['cards', 'cardCount'])],
    );
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
    await s.register('carol');
    await step('archiveDoneCards', { columnId: todo.id }, (p) => [
      inv('Column', p.column, ['cards', 'cardCount']),
      inv('Card', { id: cards[1]!.id, version: cards[1]!.version + 1 }, ['archived']),
      inv('Card', { id: cards[2]!.id, version: cards[2]!.version + 1 }, ['archived']),
    ]);

    expect(feed.errors).toEqual([]);
    expect(feed.changes.map((c) => c.operation)).toEqual(expected.map((e) => e.operation));
    feed.changes.forEach((change, i) => {
      expect(change.boardId).toBe(board.id);
      expect(change.resyncRequired).toBe(false);
      expect(change.actor).toEqual({ username: 'alice' });
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
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Resume' })).board as Ref;
    const column = (
      await mutate(s, alice.token, 'addColumn', {
        boardId: board.id,
        name: 'Todo',
        expectedVersion: board.version,
      })
    ).column as Ref;
    const first = follow(wsClient(s, alice.token), { boardId: board.id });
    await subscribed(s, 1);
    await mutate(s, alice.token, 'addCard', { columnId: column.id, title: 'seen' });
    await until(() => first.changes.length === 1, 'the first change');
    const last = first.changes[0]!.cursor;
    await openClients.pop()!.dispose();
    await until(() => s.app.live.stats().subscribers === 0, 'the disconnect');

    const missed: string[] = [];
    for (let i = 0; i < 50; i++) {
      const card = (
        await mutate(s, alice.token, 'addCard', { columnId: column.id, title: `m${i}` })
      ).card as Ref;
      missed.push(card.id);
    }
    const resumed = follow(wsClient(s, alice.token), { boardId: board.id, after: last });
    await until(() => resumed.changes.length === 50, 'the replay');
    await subscribed(s, 1);
    const live = (await mutate(s, alice.token, 'addCard', { columnId: column.id, title: 'live' }))
      .card as Ref;
    await until(() => resumed.changes.length === 51, 'the live change');

    const cardOf = (c: Change) => c.invalidated.find((i) => i.typename === 'Card')!.id;
    expect(resumed.changes.map(cardOf)).toEqual([...missed, live.id]);
    const cursors = resumed.changes.map((c) => Number(c.cursor));
    expect(cursors[0]).toBe(Number(last) + 1);
    expect(cursors).toEqual(cursors.map((_, i) => Number(last) + 1 + i));
    expect(resumed.errors).toEqual([]);
  });

  it('resumes without gap or duplicate while a writer keeps committing during the reconnect', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Busy' })).board as Ref;
    const column = (
      await mutate(s, alice.token, 'addColumn', {
        boardId: board.id,
        name: 'Todo',
        expectedVersion: board.version,
      })
    ).column as Ref;
    const noise = (await mutate(s, alice.token, 'createBoard', { name: 'Noise' })).board as Ref;
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await mutate(s, alice.token, 'addCard', { columnId: column.id, title: `w${written++}` });
      }
    })();
    // Commits of another board interleave with the replayed ones.
    const noiseWriter = (async () => {
      let version = noise.version;
      while (writing) {
        const p = await mutate(s, alice.token, 'renameBoard', {
          boardId: noise.id,
          name: `n${version}`,
          expectedVersion: version,
        });
        version = p.board.version;
      }
    })();

    for (let round = 0; round < 3; round++) {
      const first = follow(wsClient(s, alice.token), { boardId: board.id });
      await until(() => first.changes.length >= 3, 'some live changes');
      await openClients.pop()!.dispose();
      const last = first.changes.at(-1)!.cursor;
      await until(() => written >= (round + 1) * 25, 'more commits while away');
      const resumed = follow(wsClient(s, alice.token), { boardId: board.id, after: last });
      await until(() => resumed.changes.length >= 30, 'the replay and live changes');
      const got = resumed.changes.map((c) => Number(c.cursor));
      // Exactly the board's entries after `last`, as the change log holds them.
      const page = await s.storage.projector.changeLog.read(Number(last), { limit: 10_000 });
      if (page.kind !== 'entries') throw new Error('expired');
      const expectedCursors = page.entries
        .filter((e) => e.scopes.includes(rawBoardId(board.id)))
        .map((e) => e.cursor)
        .slice(0, got.length);
      expect(got).toEqual(expectedCursors);
      expect(resumed.errors).toEqual([]);
      await openClients.pop()!.dispose();
    }
    writing = false;
    await Promise.all([writer, noiseWriter]);
  });

  it('refuses a non-member and an anonymous subscriber with an error and no data', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Private' })).board as Ref;
    const mallory = await s.register('mallory');
    const outsider = follow(wsClient(s, mallory.token), { boardId: board.id });
    const anonymous = follow(wsClient(s), { boardId: board.id });
    const unknown = follow(wsClient(s, alice.token), {
      boardId: Buffer.from('Board:nope').toString('base64'),
    });
    await until(
      () => outsider.completed && anonymous.completed && unknown.completed,
      'the refusals',
    );
    await mutate(s, alice.token, 'renameBoard', {
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
      expect(feed.data.filter((d) => d !== null)).toEqual([]);
      expect(feed.errors).toMatchObject([{ extensions: { code } }]);
    }
    expect(s.app.live.stats().subscribers).toBe(0);
  });

  it('refuses a subscription beyond the per-connection limit, keeping the others', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Many' })).board as Ref;
    const client = wsClient(s, alice.token);
    const feeds = Array.from({ length: 20 }, () => follow(client, { boardId: board.id }));
    await subscribed(s, 20);
    const extra = follow(client, { boardId: board.id });
    await until(() => extra.completed, 'the refusal');
    expect(extra.errors).toMatchObject([
      { extensions: { code: LiveErrorCode.TooManySubscriptions } },
    ]);
    await mutate(s, alice.token, 'renameBoard', {
      boardId: board.id,
      name: 'Many 2',
      expectedVersion: board.version,
    });
    await until(() => feeds.every((f) => f.changes.length === 1), 'every subscription');
    expect(extra.changes).toEqual([]);
  });

  it('takes the token from GraphiQL-style operation headers or a capitalised connectionParams key', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Keys' })).board as Ref;
    // What yoga's GraphiQL sends: no connectionParams, the headers editor in `extensions`.
    const socket = new WebSocket(s.wsUrl, 'graphql-transport-ws');
    await once(socket, 'open');
    const messages: any[] = [];
    socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString())));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await until(() => messages.length === 1, 'the ack');
    socket.send(
      JSON.stringify({
        id: 'g',
        type: 'subscribe',
        payload: {
          query: CHANGES,
          variables: { boardId: board.id },
          extensions: { headers: { Authorization: `Bearer ${alice.token}` } },
        },
      }),
    );
    const capitalised = createClient({
      url: s.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${alice.token}` },
      retryAttempts: 0,
    });
    openClients.push(capitalised);
    const feed = follow(capitalised, { boardId: board.id });
    await subscribed(s, 2);
    await mutate(s, alice.token, 'renameBoard', {
      boardId: board.id,
      name: 'Keys 2',
      expectedVersion: board.version,
    });
    await until(() => messages.length === 2 && feed.changes.length === 1, 'both changes');
    expect(messages[1]).toMatchObject({
      id: 'g',
      type: 'next',
      payload: { data: { boardChanges: { operation: 'renameBoard' } } },
    });
    expect(feed.changes[0]).toMatchObject({ operation: 'renameBoard' });
    socket.close();
  });

  it('still serves boardChanges over SSE', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'SSE' })).board as Ref;
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
    await mutate(s, alice.token, 'renameBoard', {
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

/** The raw id inside a global ID. */
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
const rawBoardId = rawId;

describe('boardChanges membership', () => {
  it('ends the subscription of a member removed from the board with NOT_FOUND, before that change', async () => {
    const s = await startTestServer();
    try {
      const alice = await s.register('alice');
      const bob = await s.register('bob');
      const board = (await mutate(s, alice.token, 'createBoard', { name: 'Team' })).board as Ref;
      await mutate(s, alice.token, 'addMember', {
        boardId: board.id,
        username: 'bob',
        expectedVersion: board.version,
      });
      const feed = follow(wsClient(s, bob.token), { boardId: board.id });
      await subscribed(s, 1);
      // The domain has no way to remove a member yet: do by hand what the projection of
      // such a commit would do (the read document, then its change log entry). This
      // server makes no further commit, whose cursor the hand-made entry has taken.
      const boards = (await s.storage.projector.readModels.active()).collection<BoardDoc>('boards');
      const doc = (await boards.get(rawId(board.id)))!;
      await boards.put({ ...doc, members: [rawId(alice.id)], version: doc.version + 1 });
      await s.storage.projector.changeLog.record({
        cursor: (await s.storage.projector.changeLog.head()) + 1,
        commitId: 'hand-made',
        scopes: [doc._id],
        operation: 'removeMember',
        actor: rawId(alice.id),
        at: new Date(),
        invalidated: [
          { typename: 'Board', id: doc._id, fields: ['members'], version: doc.version + 1 },
        ],
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
      const alice = await a.register('alice');
      const board = (await mutate(a, alice.token, 'createBoard', { name: 'Shared' })).board as Ref;
      const onA = follow(wsClient(a, alice.token), { boardId: board.id });
      const onB = follow(wsClient(b, alice.token), { boardId: board.id });
      await subscribed(a, 1);
      await subscribed(b, 1);
      await mutate(a, alice.token, 'renameBoard', {
        boardId: board.id,
        name: 'via A',
        expectedVersion: board.version,
      });
      await mutate(b, alice.token, 'renameBoard', {
        boardId: board.id,
        name: 'via B',
        expectedVersion: board.version + 1,
      });
      await until(() => onA.changes.length === 2 && onB.changes.length === 2, 'both instances');
      expect(onB.changes).toEqual(onA.changes);
      expect(onA.changes.map((c) => c.operation)).toEqual(['renameBoard', 'renameBoard']);
    } finally {
      await a.close();
      await b.close();
      await storage.close();
    }
  });
});

describe('boardChanges limits', () => {
  let s: TestServer;
  let alice: { id: string; token: string };
  const maxQueuedMessages = 10;
  beforeAll(async () => {
    s = await startTestServer({
      storage: openMemoryStorage({ changeLogRetention: 5 }),
      live: { maxQueuedMessages, connectionInitTimeoutMs: 300 },
    });
    alice = await s.register('alice');
  });
  afterAll(async () => {
    await s.close();
    await s.storage.close();
  });

  it('answers a cursor older than the retention with one resyncRequired message, then goes live', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Old' })).board as Ref;
    let version = board.version;
    for (let i = 0; i < 8; i++) {
      version = (
        await mutate(s, alice.token, 'renameBoard', {
          boardId: board.id,
          name: `r${i}`,
          expectedVersion: version,
        })
      ).board.version;
    }
    const head = await s.storage.projector.changeLog.head();
    const feed = follow(wsClient(s, alice.token), { boardId: board.id, after: '1' });
    await until(() => feed.changes.length === 1, 'the resync');
    await subscribed(s, 1);
    await mutate(s, alice.token, 'renameBoard', {
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
    const socket = new WebSocket(s.wsUrl, 'graphql-transport-ws');
    const [code] = (await once(socket, 'close')) as [number];
    expect(code).toBe(4408);
  });

  it('disconnects a slow consumer with 4008 while its queue stays within its bound', async () => {
    const board = (await mutate(s, alice.token, 'createBoard', { name: 'Firehose' })).board as Ref;
    const column = (
      await mutate(s, alice.token, 'addColumn', {
        boardId: board.id,
        name: 'Todo',
        expectedVersion: board.version,
      })
    ).column as Ref;
    // A well-behaved client on the same board keeps receiving throughout.
    const healthy = follow(wsClient(s, alice.token), { boardId: board.id });

    const socket = new WebSocket(s.wsUrl, 'graphql-transport-ws');
    await once(socket, 'open');
    const closed = once(socket, 'close') as Promise<[number, Buffer]>;
    socket.send(
      JSON.stringify({
        type: 'connection_init',
        payload: { authorization: `Bearer ${alice.token}` },
      }),
    );
    const [ack] = (await once(socket, 'message')) as [Buffer];
    expect(JSON.parse(ack.toString())).toEqual({ type: 'connection_ack' });
    // Large messages (the invalidations, many times over) on many subscriptions fill the
    // operating system's buffers quickly; then the server's own queues start to grow.
    const selection = Array.from(
      { length: 25 },
      (_, i) => `i${i}: invalidated { typename id fields version }`,
    ).join(' ');
    for (let i = 0; i < 19; i++) {
      socket.send(
        JSON.stringify({
          id: `s${i}`,
          type: 'subscribe',
          payload: {
            query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor ${selection} } }`,
            variables: { b: board.id },
          },
        }),
      );
    }
    await subscribed(s, 20);
    socket.pause();

    let commits = 0;
    while (s.app.live.stats().slowConsumers === 0) {
      if (commits > 2_000) throw new Error('never detected the slow consumer');
      await mutate(s, alice.token, 'addCard', { columnId: column.id, title: `c${commits}` });
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

    await mutate(s, alice.token, 'addCard', { columnId: column.id, title: 'after' });
    await until(() => healthy.changes.length === commits + 1, 'the healthy client');
    expect(healthy.errors).toEqual([]);
  });
});
