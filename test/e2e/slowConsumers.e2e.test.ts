import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import { LiveCloseCode } from '../../src/live/limits.js';
import { ResponseConnection } from '../../src/live/ResponseConnection.js';
import { watchWholeFrameWrites } from '../support/frameWrites.js';
import { openSocket, until } from '../support/rawSocket.js';
import { seedCards } from '../support/seedCards.js';
import { startTestServer, type TestServer } from '../support/server.js';

// A client that stops reading is bounded by the bytes buffered for its connection,
// checked when they are written: one big change (500 cards archived, one invalidation
// each) reaching every subscription of a paused socket at once must not queue more than
// the bound, however many subscriptions pass the check when the change is handed out.

/** Every resource a change names: an archive of 500 cards makes a message of ~55 kB. */
const FULL = `subscription ($boardId: ID!) {
  boardChanges(boardId: $boardId) { cursor operation invalidated { typename id fields version } }
}`;

const MAX_BUFFERED_BYTES = 256 * 1024;

describe('slow consumers, bounded by bytes when written', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      // 200 subscribes from one client in a moment: past the default rate limit.
      env: { SUBSCRIBES_PER_MINUTE: '0' },
      live: {
        maxBufferedBytes: MAX_BUFFERED_BYTES,
        maxSubscriptionsPerConnection: 250,
        // Long enough that the socket is still there when the test resumes reading it.
        slowConsumerCloseGraceMs: 60_000,
      },
    });
  });
  afterAll(async () => {
    await s.close();
  });

  /** A board with one column of `count` done cards, projected. */
  async function doneColumn(username: string, count: number) {
    const user = await s.register(username);
    const created = await s.gql(
      `mutation { createBoard(input: { name: "Slow" }) { ... on CreateBoardSuccess { board { id version } } } }`,
      {},
      user.token,
    );
    const board = created.data!.createBoard.board as { id: string; version: number };
    const added = await s.gql(
      `mutation ($i: AddColumnInput!) { addColumn(input: $i) { ... on AddColumnSuccess { column { id } } } }`,
      { i: { boardId: board.id, name: 'Done', expectedVersion: board.version } },
      user.token,
    );
    const columnId = added.data!.addColumn.column.id as string;
    const { position } = await seedCards(s.storage.store, {
      boardId: rawIdOf(board.id, 'Board')!,
      columnId: rawIdOf(columnId, 'Column')!,
      count,
      done: true,
    });
    await s.app.follower.waitFor(position, { timeoutMs: 60_000 });
    const archive = async () => {
      const result = await s.gql(
        `mutation ($i: ArchiveDoneCardsInput!) { archiveDoneCards(input: $i) { __typename } }`,
        { i: { columnId } },
        user.token,
      );
      expect(result.data?.archiveDoneCards.__typename).toBe('ArchiveDoneCardsSuccess');
    };
    return { token: user.token, boardId: board.id, archive };
  }

  it('closes a paused websocket with 4008 before one change of 500 cards to its 200 subscriptions buffers past the bound', async () => {
    const { token, boardId, archive } = await doneColumn('paused-ws', 500);
    const client = await openSocket(s, token);
    const before = s.app.live.stats();
    const subscriptions = 200;
    for (let i = 0; i < subscriptions; i += 1) client.subscribe(`s${i}`, FULL, { boardId });
    await until(
      () => s.app.live.stats().subscribers === before.subscribers + subscriptions,
      'the subscriptions',
    );
    // Everything the server writes to the socket; what stays buffered after each write.
    let written = 0;
    let peakBuffered = 0;
    const writes = watchWholeFrameWrites((raw, frame) => {
      written += frame.length;
      peakBuffered = Math.max(peakBuffered, raw.writableLength);
    });
    try {
      client.socket.pause();
      const closed = once(client.socket, 'close') as Promise<[number, Buffer]>;
      await archive();
      await until(
        () => s.app.live.stats().slowConsumers > before.slowConsumers,
        'the slow consumer',
        30_000,
      );
      // The kernel took what it could; Node never held more than the bound.
      expect(written).toBeGreaterThan(MAX_BUFFERED_BYTES);
      expect(written).toBeLessThan(subscriptions * 50_000);
      expect(peakBuffered).toBeLessThanOrEqual(MAX_BUFFERED_BYTES);
      await until(
        () => s.app.live.stats().subscribers === before.subscribers,
        'the socket to leave',
      );
      client.socket.resume();
      const [code] = await closed;
      expect(code).toBe(LiveCloseCode.SlowConsumer);
      // What did arrive are whole frames of that change, fewer than one per subscription.
      const delivered = client.frames.filter((f) => f.includes('"type":"next"'));
      expect(delivered.length).toBeLessThan(subscriptions);
    } finally {
      writes.restore();
    }
  });

  it('watches an SSE subscription through its response: past the bound it ends with SLOW_CONSUMER', async () => {
    const { token, boardId, archive } = await doneColumn('paused-sse', 500);
    const before = s.app.live.stats();
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query: FULL, variables: { boardId } }),
    });
    await until(
      () => s.app.live.stats().subscribers === before.subscribers + 1,
      'the SSE subscription',
    );
    // The response holds as much unsent as a client that stopped reading leaves there
    // (a loopback kernel takes megabytes first, too many for a test to fill).
    const held = vi
      .spyOn(ResponseConnection.prototype, 'bufferedAmount', 'get')
      .mockReturnValue(MAX_BUFFERED_BYTES + 1);
    try {
      await archive();
      const text = await response.text();
      expect(text).toContain('"code":"SLOW_CONSUMER"');
      expect(text).not.toContain('"operation":"archiveDoneCards"');
      expect(s.app.live.stats().slowConsumers).toBe(before.slowConsumers + 1);
    } finally {
      held.mockRestore();
    }
  });
});
