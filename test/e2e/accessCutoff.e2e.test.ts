/**
 * Access ends at once, on every path: a member removed while their own writes, reads and
 * subscriptions are in flight gets nothing past the removal's commit. The board projection
 * is held back on the removal (the read model lags behind it, as it may on a loaded server
 * or another instance), so only a check made on the event store can refuse what follows.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { projections } from '../../src/boards/readModel.js';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import type { Projection } from '../../src/projector/types.js';
import { CorkboardRequestError } from '../../src/sdk/CorkboardRequestError.js';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { openMemoryStorage } from '../../src/storage.js';
import { mutationDocument } from '../support/mutationDocument.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';
import { serverStorages } from '../support/serverStorages.js';
import { until } from '../support/until.js';

const RACERS = 50;

const MUTATION = mutationDocument;
const CREATE_BOARD = MUTATION('createBoard', 'CreateBoardSuccess', 'board { id version }');
const ADD_MEMBER = MUTATION('addMember', 'AddMemberSuccess', 'board { id version }');
const ADD_COLUMN = MUTATION('addColumn', 'AddColumnSuccess', 'column { id } board { id version }');
const ADD_CARD = MUTATION('addCard', 'AddCardSuccess', 'card { id }');
const REMOVE_MEMBER = MUTATION('removeMember', 'RemoveMemberSuccess', 'board { id version }');
const BOARD = `query ($id: ID!) {
  board(id: $id) { id version name columns { id cards(first: 100) { edges { node { id } } } } }
}`;
const CHANGES = `subscription ($boardId: ID!, $after: Cursor) {
  boardChanges(boardId: $boardId, after: $after) { cursor operation }
}`;

interface Feed {
  changes: { cursor: string; operation: string }[];
  errors: { message: string; extensions?: Record<string, unknown> }[];
  completed: boolean;
}

/** The board projection, held back on removeMember commits while `gate` is set. */
let gate: Promise<void> | null = null;
let openGate: () => void = () => undefined;
const heldBackOnRemoval: Projection[] = projections.map((projection) =>
  projection.name !== 'boards'
    ? projection
    : {
        ...projection,
        apply: async (context) => {
          if (gate && context.commit.operation === 'removeMember') await gate;
          return projection.apply(context);
        },
      },
);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  openGate();
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** `boardChanges` over the SDK's websocket, recorded in the background. */
function followWs(s: TestServer, token: string, boardId: string, after?: string): Feed {
  const feed: Feed = { changes: [], errors: [], completed: false };
  const abort = new AbortController();
  const client = createCorkboardClient({
    url: `${s.url}/graphql`,
    token,
    webSocketImpl: WebSocket,
    reconnect: { maxAttempts: 0 },
  });
  void (async () => {
    try {
      for await (const change of client.boardChanges(boardId, { after, signal: abort.signal })) {
        feed.changes.push({ cursor: change.cursor, operation: change.operation });
      }
    } catch (error) {
      feed.errors.push(
        ...(error instanceof CorkboardRequestError ? error.errors : [{ message: String(error) }]),
      );
    } finally {
      feed.completed = true;
    }
  })();
  cleanups.push(() => abort.abort());
  return feed;
}

/** `boardChanges` over SSE, every `next` event recorded until the stream completes. */
async function followSse(s: TestServer, token: string, boardId: string): Promise<Feed> {
  const feed: Feed = { changes: [], errors: [], completed: false };
  const abort = new AbortController();
  cleanups.push(() => abort.abort());
  const response = await fetch(`${s.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query: CHANGES, variables: { boardId } }),
    signal: abort.signal,
  });
  void (async () => {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          const data = /^data: (.*)$/m.exec(event)?.[1];
          if (/^event: complete$/m.test(event)) feed.completed = true;
          if (!data || !/^event: next$/m.test(event)) continue;
          const result = JSON.parse(data) as {
            data?: { boardChanges: Feed['changes'][number] } | null;
            errors?: Feed['errors'];
          };
          if (result.errors) feed.errors.push(...result.errors);
          if (result.data?.boardChanges) feed.changes.push(result.data.boardChanges);
        }
      }
    } catch {
      // Aborted by the cleanup.
    } finally {
      feed.completed = true;
    }
  })();
  return feed;
}

const stores = serverStorages('corkboard_cutoff');

describe.each(stores)('access ends at once, on every path ($name)', ({ open }) => {
  let s: TestServer;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const opened = await open();
    close = opened.close;
    s = await startTestServer({
      storage: opened.storage,
      projections: heldBackOnRemoval,
      env: { READ_YOUR_WRITES_TIMEOUT_MS: '100', ...NO_CLIENT_LIMITS },
    });
  }, 120_000);

  afterAll(async () => {
    await s?.close();
    await close?.();
  });

  it(`lets none of ${RACERS} writes and ${RACERS} reads racing a removal through after its commit, and ends the member's subscriptions`, async () => {
    const alice = await s.register('alice');
    const bob = await s.register('bob');
    const carol = await s.register('carol');
    const created = await s.gql(CREATE_BOARD, { input: { name: 'Team' } }, alice.token);
    let board = created.data!.createBoard.board as { id: string; version: number };
    for (const username of ['bob', 'carol']) {
      const added = await s.gql(
        ADD_MEMBER,
        { input: { boardId: board.id, username, expectedVersion: board.version } },
        alice.token,
      );
      board = added.data!.addMember.board;
    }
    const addedColumn = await s.gql(
      ADD_COLUMN,
      { input: { boardId: board.id, name: 'Todo', expectedVersion: board.version } },
      alice.token,
    );
    const column = addedColumn.data!.addColumn.column as { id: string };
    board = addedColumn.data!.addColumn.board;

    // Bob's live feeds, and a witness's (carol stays a member) to learn the removal's cursor.
    const bobWs = followWs(s, bob.token, board.id);
    const bobSse = await followSse(s, bob.token, board.id);
    const witness = followWs(s, carol.token, board.id);
    await until(() => s.app.live.stats().subscribers >= 3, 20_000, 'three subscribers');

    gate = new Promise((resolve) => (openGate = resolve));
    const write = (i: number) =>
      s.gql(ADD_CARD, { input: { columnId: column.id, title: `race ${i}` } }, bob.token);
    const read = () => s.gql(BOARD, { id: board.id }, bob.token);
    // Everything in flight at once: half of bob's requests sent before the removal, half after.
    const writes: ReturnType<typeof write>[] = [];
    const reads: ReturnType<typeof read>[] = [];
    for (let i = 0; i < RACERS / 2; i++) {
      writes.push(write(i));
      reads.push(read());
    }
    const removal = s.gql(
      REMOVE_MEMBER,
      { input: { boardId: board.id, userId: bob.id, expectedVersion: board.version } },
      alice.token,
    );
    for (let i = RACERS / 2; i < RACERS; i++) {
      writes.push(write(i));
      reads.push(read());
    }
    const removed = await removal;
    expect(removed.data!.removeMember.__typename).toBe('RemoveMemberSuccess');
    // The read model has not applied the removal (it answered before its projection).
    expect(removed.extensions?.readModelBehind).toBeDefined();

    // Reads started after the removal's response returned: every one refused, although the
    // read model still lists bob as a member.
    const after = await Promise.all(Array.from({ length: RACERS }, read));
    for (const answer of after) expect(answer).toMatchObject({ data: { board: null } });
    const cardRead = await s.gql(
      `query ($id: ID!) { node(id: $id) { id } }`,
      { id: column.id },
      bob.token,
    );
    expect(cardRead).toMatchObject({ data: { node: null } });

    // Writes: each committed before the removal's commit, or refused.
    const answers = await Promise.all(writes);
    const outcomes = answers.map((a) => a.data!.addCard.__typename as string);
    for (const outcome of outcomes) expect(['AddCardSuccess', 'NotFoundError']).toContain(outcome);
    const commits = [];
    for (let position = 0; ;) {
      const page = await s.storage.store.readAll({ after: position });
      if (page.length === 0) break;
      commits.push(...page);
      position = page.at(-1)!.position;
    }
    const removalCommit = commits.find((c) => c.operation === 'removeMember')!;
    const boardStream = `board-${rawIdOf(board.id, 'Board')}`;
    const removedVersion = removalCommit.events.find((e) => e.stream === boardStream)!.version;

    // Reads in flight with it: data only as of before the removal (the board's version then).
    for (const answer of await Promise.all(reads)) {
      expect(answer.errors).toBeUndefined();
      const shown = answer.data!.board as { version: number } | null;
      if (shown) expect(shown.version).toBeLessThan(removedVersion);
    }
    const bobId = rawIdOf(bob.id, 'User');
    const bobsCards = commits.filter((c) => c.operation === 'addCard' && c.actor === bobId);
    // No committed write is reported as a failure, none lands after the removal.
    expect(bobsCards).toHaveLength(outcomes.filter((o) => o === 'AddCardSuccess').length);
    for (const c of bobsCards) expect(c.position).toBeLessThan(removalCommit.position);

    // A replay from an old cursor is refused, with nothing delivered (the read model, and
    // the change log, still hold bob as a member), saying he was removed.
    const replay = followWs(s, bob.token, board.id, '0');
    await until(() => replay.completed || replay.changes.length > 0, 20_000, 'the replay refusal');
    expect(replay.changes).toEqual([]);
    expect(replay.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND', reason: 'REMOVED' } }]);

    // Live: once the removal reaches the change log, bob's subscriptions end with NOT_FOUND,
    // having delivered nothing from the removal on.
    openGate();
    gate = null;
    await until(
      () => witness.changes.some((c) => c.operation === 'removeMember'),
      20_000,
      'the removal',
    );
    const removalCursor = Number(
      witness.changes.find((c) => c.operation === 'removeMember')!.cursor,
    );
    for (const feed of [bobWs, bobSse]) {
      await until(() => feed.completed, 20_000, 'the end of a removed member subscription');
      expect(feed.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
      for (const change of feed.changes) expect(Number(change.cursor)).toBeLessThan(removalCursor);
    }
  }, 120_000);
});

describe('access ends on every instance, for every way of losing it (memory)', () => {
  it('ends the subscription of a member removed through another instance, and refuses their reads there', async () => {
    const storage = openMemoryStorage({});
    const a = await startTestServer({ storage });
    const b = await startTestServer({ storage });
    cleanups.push(async () => {
      await a.close();
      await b.close();
      await storage.close();
    });
    const alice = await a.register('alice');
    const bob = await a.register('bob');
    let board = (await a.gql(CREATE_BOARD, { input: { name: 'Shared' } }, alice.token)).data!
      .createBoard.board as { id: string; version: number };
    board = (
      await a.gql(
        ADD_MEMBER,
        { input: { boardId: board.id, username: 'bob', expectedVersion: board.version } },
        alice.token,
      )
    ).data!.addMember.board;
    // Instance B knows bob as a member: it answered his read and his subscribe.
    await until(
      async () => (await b.gql(BOARD, { id: board.id }, bob.token)).data?.board != null,
      20_000,
      'bob reading the board on B',
    );
    const feed = followWs(b, bob.token, board.id);
    await until(() => b.app.live.stats().subscribers >= 1, 20_000, 'bob subscribed on B');
    const removed = await a.gql(
      REMOVE_MEMBER,
      { input: { boardId: board.id, userId: bob.id, expectedVersion: board.version } },
      alice.token,
    );
    expect(removed.data!.removeMember.__typename).toBe('RemoveMemberSuccess');
    await until(() => feed.completed, 20_000, "the end of bob's subscription on B");
    expect(feed.changes).toEqual([]);
    expect(feed.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
    expect(await b.gql(BOARD, { id: board.id }, bob.token)).toMatchObject({
      data: { board: null },
    });
  });

  it('ends the subscription of a member who leaves; one demoted to VIEWER keeps reading and following, and may not write', async () => {
    const s = await startTestServer();
    cleanups.push(() => s.close());
    const alice = await s.register('alice');
    const bob = await s.register('bob');
    const carol = await s.register('carol');
    let board = (await s.gql(CREATE_BOARD, { input: { name: 'Team' } }, alice.token)).data!
      .createBoard.board as { id: string; version: number };
    for (const username of ['bob', 'carol']) {
      board = (
        await s.gql(
          ADD_MEMBER,
          { input: { boardId: board.id, username, expectedVersion: board.version } },
          alice.token,
        )
      ).data!.addMember.board;
    }
    const bobFeed = followWs(s, bob.token, board.id);
    const carolFeed = followWs(s, carol.token, board.id);
    await until(() => s.app.live.stats().subscribers >= 2, 20_000, 'two subscribers');

    const demoted = await s.gql(
      MUTATION('setMemberRole', 'SetMemberRoleSuccess', 'board { id version }'),
      {
        input: {
          boardId: board.id,
          userId: carol.id,
          role: 'VIEWER',
          expectedVersion: board.version,
        },
      },
      alice.token,
    );
    board = demoted.data!.setMemberRole.board;
    const left = await s.gql(
      REMOVE_MEMBER,
      { input: { boardId: board.id, userId: bob.id, expectedVersion: board.version } },
      bob.token,
    );
    expect(left.data!.removeMember).toMatchObject({
      __typename: 'RemoveMemberSuccess',
      board: null,
    });
    await until(() => bobFeed.completed, 20_000, "the end of bob's subscription");
    expect(bobFeed.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
    expect(bobFeed.changes.map((c) => c.operation)).toEqual(['setMemberRole']);
    expect(await s.gql(BOARD, { id: board.id }, bob.token)).toMatchObject({
      data: { board: null },
    });
    // Subscribing again (a resume from the last cursor) is refused, saying he left; a user
    // who never was a member is refused with no reason.
    const resumed = followWs(s, bob.token, board.id, bobFeed.changes.at(-1)!.cursor);
    const stranger = await s.register('dave');
    const probe = followWs(s, stranger.token, board.id, '0');
    await until(() => resumed.completed && probe.completed, 20_000, 'the two refusals');
    expect(resumed.changes).toEqual([]);
    expect(resumed.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND', reason: 'LEFT' } }]);
    expect(probe.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
    expect(probe.errors[0]!.extensions).not.toHaveProperty('reason');

    // The viewer still reads and follows the board, and every write of theirs is refused.
    await until(
      () => carolFeed.changes.some((c) => c.operation === 'removeMember'),
      20_000,
      'the leave reaching the viewer',
    );
    expect(carolFeed.completed).toBe(false);
    const seen = await s.gql(
      `query ($id: ID!) { board(id: $id) { id viewerRole } }`,
      { id: board.id },
      carol.token,
    );
    expect(seen).toMatchObject({ data: { board: { viewerRole: 'VIEWER' } } });
    const refused = await s.gql(
      ADD_COLUMN,
      { input: { boardId: board.id, name: 'Mine', expectedVersion: board.version + 1 } },
      carol.token,
    );
    expect(refused.data!.addColumn.__typename).toBe('ForbiddenError');
  });
});
