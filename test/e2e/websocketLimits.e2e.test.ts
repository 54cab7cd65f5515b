import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { QUERY_LIMIT_CODES } from '../../src/graphql/queryLimits.js';
import { DEFAULT_LIVE_LIMITS } from '../../src/live/limits.js';
import { LiveErrorCode } from '../../src/sdk/liveErrorCodes.js';
import { openSocket, until } from '../support/rawSocket.js';
import { startTestServer, type TestServer } from '../support/server.js';

// One operation over the websocket that breaks a rule fails alone: the socket and its
// other subscriptions go on.

const CHANGES = `subscription ($boardId: ID!) { boardChanges(boardId: $boardId) { cursor operation } }`;

/**
 * A query nested deeper than the depth limit (12), and within the cost limit: its pages
 * hold one card (a page without `first` is priced at its default size, 100).
 */
const TOO_DEEP = `query { boards { columns { cards(first: 1) { edges { node { column { board { columns {
  cards(first: 1) { edges { node { column { board { id } } } } } } } } } } } } } }`;

describe('websocket operation limits', () => {
  let s: TestServer;
  const logged: Record<string, unknown>[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    s = await startTestServer({ logger: pino({ level: 'info' }, sink) });
  });
  afterAll(async () => {
    await s.close();
  });

  async function boardOf(username: string) {
    const user = await s.register(username);
    const created = await s.gql(
      `mutation { createBoard(input: { name: "Limits" }) { ... on CreateBoardSuccess { board { id version } } } }`,
      {},
      user.token,
    );
    const board = created.data!.createBoard.board as { id: string; version: number };
    const rename = (name: string) =>
      s.gql(
        `mutation ($i: RenameBoardInput!) { renameBoard(input: $i) { __typename } }`,
        { i: { boardId: board.id, name, expectedVersion: board.version++ } },
        user.token,
      );
    return { token: user.token, boardId: board.id, rename };
  }

  it('fails only the over-limit operation, with an error for its id, logged by the logger', async () => {
    const consoleError = vi.spyOn(console, 'error');
    try {
      const { token, boardId, rename } = await boardOf('deep');
      const socket = await openSocket(s, token);
      const live = socket.subscribe('live', CHANGES, { boardId });
      await until(() => s.app.live.stats().subscribers === 1, 'the subscription');
      const rejected = [
        socket.subscribe('deep', TOO_DEEP, {}),
        socket.subscribe(
          'aliases',
          `query { ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ')} }`,
          {},
        ),
        socket.subscribe('tokens', `query { ${'__typename '.repeat(6_000)} }`, {}),
      ];
      await until(() => rejected.every((r) => r.error !== null), 'the rejections');
      expect(rejected[0]!.error).toEqual([
        {
          message: expect.stringContaining('Query depth limit of 12 exceeded'),
          extensions: { code: QUERY_LIMIT_CODES.depth },
        },
      ]);
      expect(rejected[1]!.error).toEqual([
        {
          message: expect.stringContaining('Aliases limit of 30 exceeded'),
          extensions: { code: QUERY_LIMIT_CODES.aliases },
        },
      ]);
      expect(rejected[2]!.error).toMatchObject([
        { message: expect.stringContaining('Token limit of 5000 exceeded') },
      ]);
      // No internal extension leaks out (yoga strips `http` over HTTP too).
      expect(JSON.stringify(rejected)).not.toContain('"http"');
      // The socket and its subscription go on.
      expect(socket.socket.readyState).toBe(socket.socket.OPEN);
      await rename('Still live');
      await until(() => live.next.length === 1, 'the change on the live subscription');
      expect(live.next[0]).toMatchObject({ data: { boardChanges: { operation: 'renameBoard' } } });
      expect(live.error).toBeNull();
      const rejections = logged.filter((l) => l.msg === 'websocket operation rejected');
      expect(rejections).toHaveLength(3);
      expect(consoleError).not.toHaveBeenCalled();
    } finally {
      consoleError.mockRestore();
    }
  });

  it('gives 25 back-to-back subscribes on one socket exactly 20 live subscriptions', async () => {
    const { token, boardId, rename } = await boardOf('burst');
    const socket = await openSocket(s, token);
    const before = s.app.live.stats().subscribers;
    // All 25 in one write burst: none waits for an answer to the one before.
    const all = Array.from({ length: 25 }, (_, i) =>
      socket.subscribe(`b${i}`, CHANGES, { boardId }),
    );
    await until(() => all.filter((r) => r.error !== null).length === 5, 'the refusals');
    await until(() => s.app.live.stats().subscribers === before + 20, '20 subscriptions');
    await rename('Burst');
    const live = all.filter((r) => r.error === null);
    expect(live).toHaveLength(20);
    await until(() => live.every((r) => r.next.length === 1), 'the change everywhere');
    for (const refused of all.filter((r) => r.error !== null)) {
      expect(refused.error).toMatchObject([
        { extensions: { code: LiveErrorCode.TooManySubscriptions } },
      ]);
      expect(refused.next).toEqual([]);
    }
    expect(s.app.live.stats().subscribers).toBe(before + 20);
    // A refused id frees nothing; completing a live one frees its slot.
    socket.complete('b0');
    await until(() => s.app.live.stats().subscribers === before + 19, 'the completion');
    const again = socket.subscribe('again', CHANGES, { boardId });
    const over = socket.subscribe('over', CHANGES, { boardId });
    await until(() => over.error !== null, 'the second refusal');
    await until(() => s.app.live.stats().subscribers === before + 20, 'the freed slot taken');
    expect(again.error).toBeNull();
  });

  it('never runs more subscriptions than the limit when one id is subscribed and completed back to back, 300 times', async () => {
    const { token, boardId, rename } = await boardOf('reuse');
    const socket = await openSocket(s, token);
    const before = s.app.live.stats().subscribers;
    const counted = () => s.app.websockets.subscriptions;
    const countedBefore = counted();
    // Each complete reaches the server while its subscribe is still being prepared: the
    // id is free again at once, and the next subscribe takes it.
    for (let round = 0; round < 300; round += 1) {
      socket.subscribe('x', CHANGES, { boardId });
      socket.complete('x');
      // In several writes, as over a network: some completes arrive after their subscribe
      // was handled, while it is still being prepared.
      if (round % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
    }
    // And the id is left subscribed, as an attacker would.
    socket.subscribe('x', CHANGES, { boardId });
    // A query answered after them: every subscribe before it has been counted or refused.
    socket.subscribe('q', `{ me { id } }`, {});
    await until(() => socket.frames.some((f) => f.startsWith('{"id":"q","type":"next"')), 'q');
    // Then none is being prepared any more: every one counted is running, in the hub.
    await until(
      () => counted() - countedBefore === s.app.live.stats().subscribers - before,
      'the subscribes to settle',
    );
    const probe = socket.subscribe('probe', CHANGES, { boardId });
    const running = counted() - countedBefore;
    await until(() => s.app.live.stats().subscribers - before === running + 1, 'the probe');
    await rename('First');
    await until(() => probe.next.length === 1, 'the first change at the probe');
    // The fan-out of one change ends before the next starts, and the socket keeps order:
    // once the probe has the second change, every frame of the first has arrived.
    await rename('Second');
    await until(() => probe.next.length === 2, 'the second change at the probe');
    const cursor = probe.next[0].data.boardChanges.cursor as string;
    const framesOfFirst = socket.frames.filter(
      (f) => f.includes('"type":"next"') && f.includes(`"cursor":"${cursor}"`),
    );
    const limit = DEFAULT_LIVE_LIMITS.maxSubscriptionsPerConnection;
    expect(framesOfFirst.length).toBeGreaterThanOrEqual(1);
    expect(framesOfFirst.length).toBeLessThanOrEqual(limit);
    expect(s.app.live.stats().subscribers - before).toBeLessThanOrEqual(limit);
    expect(probe.error).toBeNull();
  });

  it('runs mutations sent over the websocket with the same auth and idempotency as over HTTP', async () => {
    const { token, boardId } = await boardOf('ws-mutations');
    const socket = await openSocket(s, token);
    const rename = `mutation ($i: RenameBoardInput!) { renameBoard(input: $i) { __typename ... on RenameBoardSuccess { board { name version } } } }`;
    const input = { boardId, name: 'Over the socket', expectedVersion: 1, idempotencyKey: 'ws-1' };
    const first = socket.subscribe('m1', rename, { i: input });
    await until(() => first.complete || first.error !== null, 'the first answer');
    expect(first.error).toBeNull();
    expect(first.next[0].data.renameBoard).toEqual({
      __typename: 'RenameBoardSuccess',
      board: { name: 'Over the socket', version: 2 },
    });
    // The same key again: the first result, nothing written.
    const again = socket.subscribe('m2', rename, { i: input });
    await until(() => again.complete, 'the replay');
    expect(again.next[0]).toEqual(first.next[0]);
    // An anonymous socket is refused as over HTTP.
    const anonymous = await openSocket(s, 'not-a-token');
    const refused = anonymous.subscribe('m3', rename, {
      i: { ...input, idempotencyKey: 'ws-2', expectedVersion: 2 },
    });
    await until(() => refused.complete || refused.error !== null, 'the refusal');
    expect(JSON.stringify(refused)).not.toContain('RenameBoardSuccess');
    const board = await s.gql(
      `query ($id: ID!) { board(id: $id) { version } }`,
      { id: boardId },
      token,
    );
    expect(board.data!.board.version).toBe(2);
  });
});
