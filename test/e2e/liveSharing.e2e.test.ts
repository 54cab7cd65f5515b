import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoardChangesDocument } from '../../src/sdk/generated/graphql.js';
import { watchWholeFrameWrites } from '../support/frameWrites.js';
import { openSocket, until, type Received } from '../support/rawSocket.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';

// Identical subscriptions of a board share one execution per change (see
// src/graphql/sharedSubscriptions.ts). These tests speak graphql-transport-ws on raw
// sockets, many subscriptions per socket, so that a thousand subscribers cost a few
// sockets; the server's hub stats count the executions.

const FULL = `subscription Full($boardId: ID!, $after: Cursor) {
  boardChanges(boardId: $boardId, after: $after) {
    cursor boardId operation at resyncRequired
    actor { id username displayName }
    invalidated { typename id fields version }
  }
}`;

/** A user, a board and a card on it, through the HTTP API. */
async function fixture(s: TestServer, username: string) {
  const user = await s.register(username);
  const created = await s.gql(
    `mutation ($i: CreateBoardInput!) { createBoard(input: $i) { ... on CreateBoardSuccess { board { id version } } } }`,
    { i: { name: `${username}'s board` } },
    user.token,
  );
  const board = created.data!.createBoard.board as { id: string; version: number };
  const column = await s.gql(
    `mutation ($i: AddColumnInput!) { addColumn(input: $i) { ... on AddColumnSuccess { column { id } } } }`,
    { i: { boardId: board.id, name: 'Todo', expectedVersion: board.version } },
    user.token,
  );
  const columnId = column.data!.addColumn.column.id as string;
  const card = await s.gql(
    `mutation ($i: AddCardInput!) { addCard(input: $i) { ... on AddCardSuccess { card { id version } } } }`,
    { i: { columnId, title: 'first' } },
    user.token,
  );
  const ref = card.data!.addCard.card as { id: string; version: number };
  /** Edits the card's title once; resolves when committed. */
  const edit = async (title: string, token = user.token) => {
    const result = await s.gql(
      `mutation ($i: EditCardInput!) { editCard(input: $i) { __typename ... on EditCardSuccess { card { version } } } }`,
      { i: { cardId: ref.id, expectedVersion: ref.version, title } },
      token,
    );
    if (result.data?.editCard.__typename !== 'EditCardSuccess') {
      throw new Error(`editCard: ${JSON.stringify(result)}`);
    }
    ref.version = result.data.editCard.card.version as number;
  };
  const addMember = async (username: string) => {
    const current = await s.gql(
      `query ($id: ID!) { board(id: $id) { version } }`,
      { id: board.id },
      user.token,
    );
    await s.gql(
      `mutation ($i: AddMemberInput!) { addMember(input: $i) { __typename } }`,
      { i: { boardId: board.id, username, expectedVersion: current.data!.board.version } },
      user.token,
    );
  };
  return { user, boardId: board.id, edit, addMember };
}

/** Cursors of the changes a subscription received. */
const cursorsOf = (received: Received) =>
  received.next.map((p) => Number(p.data.boardChanges.cursor));

describe('shared execution of board subscriptions', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      live: { maxSubscriptionsPerConnection: 250 },
      env: { ...NO_CLIENT_LIMITS },
    });
  });
  afterAll(async () => {
    await s.close();
  });

  it('executes 1,000 identical subscriptions once per change, and every subscriber gets every change once, in order', async () => {
    const f = await fixture(s, 'thousand');
    const before = s.app.live.stats();
    const sockets = await Promise.all(Array.from({ length: 4 }, () => openSocket(s, f.user.token)));
    const subscriptions = sockets.flatMap((socket, i) =>
      Array.from({ length: 250 }, (_, j) =>
        socket.subscribe(`s${i}-${j}`, FULL, { boardId: f.boardId }),
      ),
    );
    await until(
      () => s.app.live.stats().subscribers === before.subscribers + 1_000,
      '1,000 subscribers',
    );
    expect(s.app.live.stats().groups).toBe(before.groups + 1);
    let writes = 0;
    const watch = watchWholeFrameWrites(() => (writes += 1));
    const changes = 5;
    for (let i = 0; i < changes; i += 1) await f.edit(`title ${i}`);
    await until(
      () => subscriptions.every((r) => r.next.length === changes),
      'every change at every subscriber',
    );
    expect(s.app.live.stats().executions - before.executions).toBe(changes);
    // Each delivery left as one whole frame in one write (not re-framed by ws), as text.
    watch.restore();
    expect(writes).toBe(changes * 1_000);
    expect(sockets.map((socket) => socket.binaryFrames)).toEqual([0, 0, 0, 0]);
    const expected = subscriptions[0]!.next;
    expect(cursorsOf(subscriptions[0]!)).toEqual(
      [...cursorsOf(subscriptions[0]!)].sort((a, b) => a - b),
    );
    expect(new Set(cursorsOf(subscriptions[0]!)).size).toBe(changes);
    for (const r of subscriptions) {
      expect(r.error).toBeNull();
      expect(r.next).toEqual(expected);
    }
    // The payload is the whole selection, resolved (the actor through the read model).
    expect(expected[0].data.boardChanges).toMatchObject({
      operation: 'editCard',
      resyncRequired: false,
      actor: { username: 'thousand' },
      invalidated: [{ typename: 'Card', fields: ['title'] }],
    });
    // Spliced frames are graphql-ws frames like any other.
    const frame = sockets[0]!.frames.find((t) => t.includes('"type":"next"'))!;
    expect(JSON.parse(frame)).toEqual({ id: 's0-0', type: 'next', payload: expected[0] });
  });

  it('gives a different selection or different variables their own group and correct payload', async () => {
    const f = await fixture(s, 'selective');
    const socket = await openSocket(s, f.user.token);
    const before = s.app.live.stats();
    const narrow = `subscription ($boardId: ID!) { boardChanges(boardId: $boardId) { cursor operation } }`;
    const optional = `subscription ($boardId: ID!, $withActor: Boolean!) {
      boardChanges(boardId: $boardId) { cursor actor @include(if: $withActor) { username } }
    }`;
    const full = [
      socket.subscribe('full-1', FULL, { boardId: f.boardId }),
      socket.subscribe('full-2', FULL, { boardId: f.boardId }),
      // An id JSON must escape is spliced escaped.
      socket.subscribe('full "ü" \\ 3', FULL, { boardId: f.boardId }),
    ];
    // Same operation, different whitespace and comments: the same group.
    const reformatted = socket.subscribe('full-3', `# comment\n${FULL.replace(/\n\s*/g, '  ')}`, {
      boardId: f.boardId,
    });
    const narrowOnes = [
      socket.subscribe('narrow-1', narrow, { boardId: f.boardId }),
      socket.subscribe('narrow-2', narrow, { boardId: f.boardId }),
    ];
    const withActor = socket.subscribe('with', optional, { boardId: f.boardId, withActor: true });
    const without = socket.subscribe('without', optional, { boardId: f.boardId, withActor: false });
    await until(() => s.app.live.stats().subscribers === before.subscribers + 8, 'the subscribers');
    expect(s.app.live.stats().groups - before.groups).toBe(4);
    await f.edit('renamed');
    await f.edit('renamed again');
    const all = [...full, reformatted, ...narrowOnes, withActor, without];
    await until(() => all.every((r) => r.next.length === 2), 'both changes everywhere');
    expect(s.app.live.stats().executions - before.executions).toBe(4 * 2);
    const cursor = full[0]!.next[0].data.boardChanges.cursor as string;
    expect(full[1]!.next).toEqual(full[0]!.next);
    expect(full[2]!.next).toEqual(full[0]!.next);
    expect(reformatted.next).toEqual(full[0]!.next);
    expect(narrowOnes[0]!.next[0]).toEqual({
      data: { boardChanges: { cursor, operation: 'editCard' } },
    });
    expect(narrowOnes[1]!.next).toEqual(narrowOnes[0]!.next);
    expect(withActor.next[0]).toEqual({
      data: { boardChanges: { cursor, actor: { username: 'selective' } } },
    });
    expect(without.next[0]).toEqual({ data: { boardChanges: { cursor } } });
  });

  it('gives the same operation text with different fragment bodies their own group and selection', async () => {
    const f = await fixture(s, 'fragments');
    const socket = await openSocket(s, f.user.token);
    const before = s.app.live.stats();
    // The operation reads the same in all three; only what F (and G, through F) selects differs.
    const operation = `subscription S($boardId: ID!) { boardChanges(boardId: $boardId) { ...F } }`;
    const cursorOnly = `${operation}\nfragment F on BoardChange { cursor }`;
    const withActor = `${operation}\nfragment F on BoardChange { cursor ...G }\nfragment G on BoardChange { actor { username } }`;
    const withOperation = `${operation}\nfragment F on BoardChange { cursor ...G }\nfragment G on BoardChange { operation }`;
    // The same fragments in another order: the same document as executed.
    const withOperationReordered = `fragment G on BoardChange { operation }\n${operation}\nfragment F on BoardChange { cursor ...G }`;
    const received = {
      cursorOnly: socket.subscribe('f1', cursorOnly, { boardId: f.boardId }),
      withActor: socket.subscribe('f2', withActor, { boardId: f.boardId }),
      withOperation: socket.subscribe('f3', withOperation, { boardId: f.boardId }),
      reordered: socket.subscribe('f4', withOperationReordered, { boardId: f.boardId }),
    };
    await until(() => s.app.live.stats().subscribers === before.subscribers + 4, 'the subscribers');
    expect(s.app.live.stats().groups - before.groups).toBe(3);
    await f.edit('fragmented');
    await until(() => Object.values(received).every((r) => r.next.length === 1), 'the change');
    const cursor = received.cursorOnly.next[0].data.boardChanges.cursor as string;
    expect(received.cursorOnly.next).toEqual([{ data: { boardChanges: { cursor } } }]);
    expect(received.withActor.next).toEqual([
      { data: { boardChanges: { cursor, actor: { username: 'fragments' } } } },
    ]);
    expect(received.withOperation.next).toEqual([
      { data: { boardChanges: { cursor, operation: 'editCard' } } },
    ]);
    expect(received.reordered.next).toEqual(received.withOperation.next);
    expect(s.app.live.stats().executions - before.executions).toBe(3);
  });

  it('executes a selection that touches a viewer-dependent field for its subscriber alone', async () => {
    const f = await fixture(s, 'viewer-a');
    const bob = await s.register('viewer-b');
    await f.addMember('viewer-b');
    const mine = `subscription ($boardId: ID!) { boardChanges(boardId: $boardId) { cursor byViewer } }`;
    const aliceSocket = await openSocket(s, f.user.token);
    const bobSocket = await openSocket(s, bob.token);
    const before = s.app.live.stats();
    const alice = [
      aliceSocket.subscribe('a1', mine, { boardId: f.boardId }),
      aliceSocket.subscribe('a2', mine, { boardId: f.boardId }),
    ];
    const bobs = bobSocket.subscribe('b1', mine, { boardId: f.boardId });
    const shared = [
      aliceSocket.subscribe('s1', FULL, { boardId: f.boardId }),
      bobSocket.subscribe('s2', FULL, { boardId: f.boardId }),
    ];
    await until(() => s.app.live.stats().subscribers === before.subscribers + 5, 'the subscribers');
    // Three alone (even alice's two), one shared by alice and bob.
    expect(s.app.live.stats().groups - before.groups).toBe(4);
    await f.edit('by alice');
    await f.edit('by bob', bob.token);
    await until(
      () => [...alice, bobs, ...shared].every((r) => r.next.length === 2),
      'both changes',
    );
    expect(s.app.live.stats().executions - before.executions).toBe(4 * 2);
    const byViewer = (r: (typeof alice)[number]) => r.next.map((p) => p.data.boardChanges.byViewer);
    expect(byViewer(alice[0]!)).toEqual([true, false]);
    expect(byViewer(alice[1]!)).toEqual([true, false]);
    expect(byViewer(bobs)).toEqual([false, true]);
    expect(shared[1]!.next).toEqual(shared[0]!.next);
  });

  it('delivers every change exactly once and in order while subscribers join, replay and leave', async () => {
    const f = await fixture(s, 'churn');
    const sockets = await Promise.all(Array.from({ length: 3 }, () => openSocket(s, f.user.token)));
    const before = s.app.live.stats();
    /** Per subscription: its record, where it started (after), whether it left. */
    const subscriptions: { received: Received; after: number | null; left: boolean }[] = [];
    const edits = 40;
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < edits; i += 1) await f.edit(`churn ${i}`);
      writing = false;
    })();
    let n = 0;
    const head = async () => s.storage.projector.changeLog.head();
    // While the writer commits: join live, join with a replay from a past cursor, leave.
    for (let round = 0; writing || round < 12; round += 1) {
      const socket = sockets[round % sockets.length]!;
      const id = `c${n++}`;
      const after = round % 3 === 1 ? Math.max(0, (await head()) - 5) : null;
      subscriptions.push({
        received: socket.subscribe(
          id,
          FULL,
          after === null ? { boardId: f.boardId } : { boardId: f.boardId, after: String(after) },
        ),
        after,
        left: false,
      });
      if (round % 4 === 3) {
        const leaving = subscriptions[round - 2]!;
        sockets[(round - 2) % sockets.length]!.complete(`c${round - 2}`);
        leaving.left = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await writer;
    // One more change, once every remaining subscriber is registered: all must get it.
    const stayed = subscriptions.filter((x) => !x.left);
    await until(
      () => s.app.live.stats().subscribers === before.subscribers + stayed.length,
      'the remaining subscribers',
    );
    await f.edit('final');
    const last = await head();
    await until(
      () => stayed.every((x) => cursorsOf(x.received).at(-1) === last),
      'the last change at every remaining subscriber',
    );
    const { entries } = (await s.storage.projector.changeLog.read(0, { limit: 10_000 })) as {
      entries: { cursor: number; scopes: string[] }[];
    };
    const boardRaw = Buffer.from(f.boardId, 'base64').toString().split(':')[1]!;
    const boardCursors = entries.filter((e) => e.scopes.includes(boardRaw)).map((e) => e.cursor);
    for (const x of subscriptions) {
      const got = cursorsOf(x.received);
      expect(x.received.error).toBeNull();
      if (got.length === 0) continue;
      // Contiguous in the board's change log: no gap, no duplicate, in order.
      const start = boardCursors.indexOf(got[0]!);
      expect(got).toEqual(boardCursors.slice(start, start + got.length));
      if (x.after !== null) expect(got[0]).toBe(boardCursors.find((c) => c > x.after!));
      if (!x.left) expect(got.at(-1)).toBe(last);
    }
    // Replaying subscribers shared the group's executions too: fewer than one per delivery.
    const deliveries = subscriptions.reduce((sum, x) => sum + x.received.next.length, 0);
    expect(s.app.live.stats().executions - before.executions).toBeLessThan(deliveries / 3);
  });

  it('shares one execution between SSE and websocket subscribers, SSE writing the shared JSON', async () => {
    const f = await fixture(s, 'sse');
    const socket = await openSocket(s, f.user.token);
    const before = s.app.live.stats();
    const aborts: AbortController[] = [];
    const readers = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const abort = new AbortController();
        aborts.push(abort);
        const response = await fetch(`${s.url}/graphql`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            authorization: `Bearer ${f.user.token}`,
          },
          body: JSON.stringify({ query: FULL, variables: { boardId: f.boardId } }),
          signal: abort.signal,
        });
        expect(response.headers.get('content-type')).toContain('text/event-stream');
        return response.body!.pipeThrough(new TextDecoderStream()).getReader();
      }),
    );
    const overWs = [
      socket.subscribe('w1', FULL, { boardId: f.boardId }),
      socket.subscribe('w2', FULL, { boardId: f.boardId }),
    ];
    await until(() => s.app.live.stats().subscribers === before.subscribers + 5, 'the subscribers');
    expect(s.app.live.stats().groups - before.groups).toBe(1);
    await f.edit('over SSE');
    await f.edit('over SSE again');
    const events = await Promise.all(
      readers.map(async (reader) => {
        let text = '';
        while ((text.match(/event: next/g) ?? []).length < 2) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
        return [...text.matchAll(/event: next\ndata: (.*)\n\n/g)].map((m) => m[1]!);
      }),
    );
    await until(() => overWs.every((r) => r.next.length === 2), 'the websocket subscribers');
    expect(s.app.live.stats().executions - before.executions).toBe(2);
    // Every SSE subscriber got exactly the bytes the websocket frames carry.
    const shared = overWs[0]!.next.map((payload) => JSON.stringify(payload));
    for (const data of events) expect(data).toEqual(shared);
    expect(overWs[1]!.next).toEqual(overWs[0]!.next);
    for (const abort of aborts) abort.abort();
    await until(
      () => s.app.live.stats().subscribers === before.subscribers + 2,
      'the SSE subscribers to go',
    );
  });
  it("executes the SDK's own BoardChanges once per change for every member: its push carries nothing viewer-dependent", async () => {
    const f = await fixture(s, 'sdkowner');
    const names = ['sdkeditor', 'sdkthird'];
    const others = [];
    for (const name of names) {
      others.push(await s.register(name));
      await f.addMember(name);
    }
    const query = print(BoardChangesDocument);
    const before = s.app.live.stats();
    const members = [f.user, ...others];
    const sockets = await Promise.all(members.map((member) => openSocket(s, member.token)));
    const subscriptions = sockets.map((socket, i) =>
      socket.subscribe(`sdk${i}`, query, { boardId: f.boardId }),
    );
    await until(
      () => s.app.live.stats().subscribers === before.subscribers + members.length,
      'every member subscribed',
    );
    const changes = 3;
    for (let i = 0; i < changes; i += 1) await f.edit(`sdk ${i}`);
    await until(
      () => subscriptions.every((r) => r.next.length === changes),
      'every change at every member',
    );
    expect(subscriptions.map((r) => r.error)).toEqual(members.map(() => null));
    expect(subscriptions.flatMap((r) => r.next.filter((p) => p.errors))).toEqual([]);
    expect(s.app.live.stats().groups - before.groups).toBe(1);
    expect(s.app.live.stats().executions - before.executions).toBe(changes);
  });
});
