import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import {
  BoardChangeHub,
  type BoardChangeMessage,
  type LiveConnection,
} from '../../src/live/BoardChangeHub.js';
import { AccessRevokedError, ReplayLimitError, SlowConsumerError } from '../../src/live/errors.js';
import { DEFAULT_LIVE_LIMITS, LiveCloseCode } from '../../src/live/limits.js';
import type { SharedResult } from '../../src/live/SubscriptionGroups.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import type { ChangeLogEntry } from '../../src/projector/types.js';

/** Stands in for the ChangeLogFollower: the test decides when entries are delivered. */
class FakeFollower {
  readonly #listeners = new Set<(entry: ChangeLogEntry) => void>();
  onEntry(listener: (entry: ChangeLogEntry) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  deliver(...entries: ChangeLogEntry[]) {
    for (const entry of entries) for (const listener of this.#listeners) listener(entry);
  }
}

const entry = (cursor: number, boardId = 'b1', members = false): ChangeLogEntry => ({
  cursor,
  commitId: `commit-${cursor}`,
  scopes: [boardId],
  operation: members ? 'addMember' : 'editCard',
  actor: 'u1',
  at: new Date(1_000 * cursor),
  invalidated: members
    ? [{ typename: 'Board', id: boardId, fields: ['members'], version: cursor }]
    : [{ typename: 'Card', id: `card-${cursor}`, fields: ['title'], version: cursor }],
});

function setUp(limits: Partial<typeof DEFAULT_LIVE_LIMITS> = {}, retention = 1_000) {
  const { changeLog } = createMemoryProjectorStorage({ changeLogRetention: retention });
  const follower = new FakeFollower();
  const hub = new BoardChangeHub({
    changeLog,
    follower,
    logger: pino({ level: 'silent' }),
    limits: { ...DEFAULT_LIVE_LIMITS, ...limits },
    now: () => new Date(0),
  });
  hub.start();
  /** Records entries in the change log without the follower delivering them yet. */
  const record = async (...entries: ChangeLogEntry[]) => {
    for (const e of entries) await changeLog.record(e);
  };
  return { hub, follower, record, changeLog };
}

const allowed = async () => true;

async function take(stream: AsyncIterator<BoardChangeMessage>, n: number) {
  const got: BoardChangeMessage[] = [];
  while (got.length < n) {
    const next = await stream.next();
    if (next.done) break;
    got.push(next.value);
  }
  return got;
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('BoardChangeHub', () => {
  it('hands each of several quick changes to hundreds of subscribers in cursor order', async () => {
    const { hub, follower, record } = setUp();
    const streams = Array.from({ length: 300 }, () =>
      hub.subscribe({ boardId: 'b1', authorize: allowed }),
    );
    const entries = range(1, 5).map((c) => entry(c));
    await record(...entries);
    // All five arrive before the hub has finished handing out the first.
    follower.deliver(...entries);
    const received = await Promise.all(streams.map((s) => take(s, 5)));
    for (const messages of received) expect(messages.map((m) => m.cursor)).toEqual([1, 2, 3, 4, 5]);
    hub.stop();
  });

  it('replays after a cursor, then goes live, with no gap and no duplicate while live entries race the replay', async () => {
    const { hub, follower, record } = setUp({ replayPageSize: 2 });
    // Entries 1..10 are recorded; the follower has delivered only up to 4.
    const early = range(1, 10).map((c) => entry(c, c % 3 === 0 ? 'other' : 'b1'));
    await record(...early);
    const stream = hub.subscribe({ boardId: 'b1', after: 3, authorize: allowed });
    // The follower catches up after the subscription registered, then more commits come.
    follower.deliver(...early.slice(4));
    const late = range(11, 14).map((c) => entry(c));
    await record(...late.slice(0, 2));
    follower.deliver(...late.slice(0, 2));
    const first = await take(stream, 7);
    await record(...late.slice(2));
    follower.deliver(...late.slice(2));
    const rest = await take(stream, 2);
    const cursors = [...first, ...rest].map((m) => m.cursor);
    expect(cursors).toEqual([4, 5, 7, 8, 10, 11, 12, 13, 14]);
    expect(first[0]).toEqual({
      cursor: 4,
      boardId: 'b1',
      operation: 'editCard',
      actor: 'u1',
      at: new Date(4_000),
      invalidated: [{ typename: 'Card', id: 'card-4', fields: ['title'], version: 4 }],
      changed: [],
      resyncRequired: false,
    });
    await stream.return!();
    expect(hub.stats()).toMatchObject({ subscribers: 0, boards: 0 });
  });

  it('drops live entries past its bound while replaying and reads them again from the change log', async () => {
    const { hub, follower, record } = setUp({ maxQueuedMessages: 2, replayPageSize: 2 });
    await record(...range(1, 3).map((c) => entry(c)));
    const stream = hub.subscribe({ boardId: 'b1', after: 0, authorize: allowed });
    const live = range(4, 12).map((c) => entry(c));
    await record(...live);
    follower.deliver(...live);
    expect(hub.stats().queued).toBe(2);
    const got = await take(stream, 12);
    expect(got.map((m) => m.cursor)).toEqual(range(1, 12));
    await record(entry(13));
    follower.deliver(entry(13));
    expect((await take(stream, 1)).map((m) => m.cursor)).toEqual([13]);
    expect(hub.stats()).toMatchObject({ peakQueued: 2, slowConsumers: 0 });
  });

  it('ends a live subscriber past its queue bound as a slow consumer and disconnects its connection', async () => {
    const { hub, follower } = setUp({ maxQueuedMessages: 3 });
    const disconnect = vi.fn<LiveConnection['disconnect']>();
    const connection: LiveConnection = { bufferedAmount: 0, disconnect, send: vi.fn(() => true) };
    const stream = hub.subscribe({ boardId: 'b1', authorize: allowed, connection });
    const other = hub.subscribe({ boardId: 'b1', authorize: allowed });
    follower.deliver(...range(1, 4).map((c) => entry(c)));
    expect(disconnect).toHaveBeenCalledExactlyOnceWith(LiveCloseCode.SlowConsumer, 'slow consumer');
    await expect(stream.next()).rejects.toBeInstanceOf(SlowConsumerError);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    // The queue was released at once; the other subscriber was a slow consumer too.
    expect(hub.stats()).toMatchObject({ subscribers: 0, queued: 0, peakQueued: 3 });
    await expect(other.next()).rejects.toBeInstanceOf(SlowConsumerError);
    expect(hub.stats().slowConsumers).toBe(2);
  });

  it("ends a subscriber whose socket's send buffer passed its bound", async () => {
    const { hub, follower } = setUp({ maxBufferedBytes: 1_000 });
    const connection = { bufferedAmount: 0, disconnect: vi.fn(), send: vi.fn(() => true) };
    const stream = hub.subscribe({ boardId: 'b1', authorize: allowed, connection });
    follower.deliver(entry(1));
    expect(await take(stream, 1)).toHaveLength(1);
    connection.bufferedAmount = 1_001;
    follower.deliver(entry(2));
    expect(connection.disconnect).toHaveBeenCalledWith(LiveCloseCode.SlowConsumer, 'slow consumer');
    await expect(stream.next()).rejects.toThrow(/not reading fast enough/);
  });

  it('bounds what waits for a reader that takes nothing (an SSE response not drained) by bytes, not by a count', async () => {
    const { hub, follower } = setUp({ maxBufferedBytes: 150_000 });
    /** One change archiving 500 cards: about 40 kB of invalidations. */
    const big = (cursor: number): ChangeLogEntry => ({
      ...entry(cursor),
      operation: 'archiveDoneCards',
      invalidated: Array.from({ length: 500 }, (_, i) => ({
        typename: 'Card',
        id: `card-${cursor}-${i}`,
        fields: ['archived'],
        version: 2,
      })),
    });
    const connection = { bufferedAmount: 20_000, disconnect: vi.fn(), send: vi.fn(() => true) };
    const stream = hub.subscribe({ boardId: 'b1', authorize: allowed, connection });
    follower.deliver(...range(1, 10).map((c) => big(c)));
    // Three of them fit beside what the response holds; the fourth would pass the bound
    // (the count bound, 1,000, is nowhere near).
    expect(connection.disconnect).toHaveBeenCalledWith(LiveCloseCode.SlowConsumer, 'slow consumer');
    expect(hub.stats()).toMatchObject({ slowConsumers: 1, peakQueued: 3, queued: 0 });
    await expect(stream.next()).rejects.toBeInstanceOf(SlowConsumerError);
  });

  it("replays from an old cursor at the cost of the board's own changes, in a log of 42,000 entries of other boards", async () => {
    const { hub, changeLog, record } = setUp({}, 100_000);
    const others = Array.from({ length: 42_000 }, (_, i) => entry(i + 1, `other-${i % 50}`));
    await record(...others.slice(0, 30_000), entry(30_001), ...others.slice(30_001));
    const reads = vi.spyOn(changeLog, 'read');
    const stream = hub.subscribe({ boardId: 'b1', after: 0, authorize: allowed });
    expect((await take(stream, 1)).map((m) => m.cursor)).toEqual([30_001]);
    await stream.return?.();
    // One page of this board's entries, not 84 pages of everyone's.
    const returned = await Promise.all(reads.mock.results.map((r) => r.value as Promise<any>));
    expect(returned.reduce((sum, read) => sum + read.entries.length, 0)).toBe(1);
    expect(reads.mock.calls.every(([, options]) => options?.scope === 'b1')).toBe(true);
  });

  it('bounds replays running at once per connection and per server, freeing a slot when a replay catches up or ends', async () => {
    const { hub, record } = setUp({ maxConcurrentReplays: 3, maxReplaysPerConnection: 2 });
    await record(...range(1, 5).map((c) => entry(c)));
    const connection = () => ({ bufferedAmount: 0, disconnect: vi.fn(), send: vi.fn(() => true) });
    const [a, b, c] = [connection(), connection(), connection()];
    const replay = (on: LiveConnection) =>
      hub.subscribe({ boardId: 'b1', after: 1, authorize: allowed, connection: on });
    const a1 = replay(a);
    const a2 = replay(a);
    expect(() => replay(a)).toThrow(new ReplayLimitError('connection', 2));
    // Live subscriptions (no `after`) are not replays.
    hub.subscribe({ boardId: 'b1', authorize: allowed, connection: a });
    const b1 = replay(b);
    expect(() => replay(c)).toThrow(new ReplayLimitError('server', 3));
    // Caught up: a1's slot is free (for any connection); an ended one frees its slot too.
    expect((await take(a1, 4)).map((m) => m.cursor)).toEqual([2, 3, 4, 5]);
    const c1 = replay(c);
    expect(() => replay(c)).toThrow(ReplayLimitError);
    await b1.return?.();
    replay(c);
    expect((await take(a2, 1)).map((m) => m.cursor)).toEqual([2]);
    await c1.return?.();
  });

  it('stops a subscriber whose access a members change revoked, before delivering that change', async () => {
    const { hub, follower } = setUp();
    const membership = { b1: true, b2: true };
    const authorize = vi.fn(async () => membership.b1);
    const revoked = hub.subscribe({ boardId: 'b1', authorize });
    const kept = hub.subscribe({ boardId: 'b2', authorize: async () => membership.b2 });
    follower.deliver(entry(1), entry(2, 'b1', true));
    // A members change that keeps the subscriber in is delivered after the check.
    expect((await take(revoked, 2)).map((m) => m.cursor)).toEqual([1, 2]);
    expect(authorize).toHaveBeenCalledTimes(1);
    membership.b1 = false;
    follower.deliver(entry(3, 'b1', true), entry(4), entry(5, 'b2', true));
    await expect(revoked.next()).rejects.toBeInstanceOf(AccessRevokedError);
    expect(await revoked.next()).toEqual({ done: true, value: undefined });
    expect((await take(kept, 1)).map((m) => m.cursor)).toEqual([5]);
    expect(hub.stats()).toMatchObject({ revoked: 1, subscribers: 1 });
  });

  it('answers a cursor older than the retention with one resync message carrying the head, then goes on', async () => {
    const { hub, follower, record } = setUp({}, 3);
    await record(...range(1, 6).map((c) => entry(c)));
    const stream = hub.subscribe({ boardId: 'b1', after: 1, authorize: allowed });
    follower.deliver(...range(4, 6).map((c) => entry(c)));
    expect(await take(stream, 1)).toEqual([
      {
        cursor: 6,
        boardId: 'b1',
        operation: 'resync',
        actor: null,
        at: new Date(0),
        invalidated: [],
        changed: [],
        resyncRequired: true,
      },
    ]);
    await record(entry(7));
    follower.deliver(entry(7));
    expect(await take(stream, 1)).toMatchObject([{ cursor: 7, resyncRequired: false }]);
  });

  it('answers a cursor newer than the head (another store) with a resync too', async () => {
    const { hub, record } = setUp();
    await record(entry(1), entry(2));
    const stream = hub.subscribe({ boardId: 'b1', after: 99, authorize: allowed });
    expect(await take(stream, 1)).toMatchObject([{ cursor: 2, resyncRequired: true }]);
  });

  it('ends a next() that waits for a change as soon as the subscriber leaves', async () => {
    const { hub } = setUp();
    const stream = hub.subscribe({ boardId: 'b1', authorize: allowed });
    const waiting = stream.next();
    await stream.return!();
    expect(await waiting).toEqual({ done: true, value: undefined });

    const abort = new AbortController();
    const aborted = hub.subscribe({ boardId: 'b1', authorize: allowed, signal: abort.signal });
    const pending = aborted.next();
    abort.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(hub.stats().subscribers).toBe(0);
  });

  it('completes every subscription when it stops', async () => {
    const { hub, follower } = setUp();
    const stream = hub.subscribe({ boardId: 'b1', authorize: allowed });
    const waiting = stream.next();
    hub.stop();
    expect(await waiting).toEqual({ done: true, value: undefined });
    follower.deliver(entry(1));
    expect(hub.stats()).toMatchObject({ subscribers: 0, queued: 0 });
  });

  it('delivers directly once caught up, one execution per group, in change order whatever each takes', async () => {
    const { hub, follower } = setUp();
    const delays = new Map([
      [1, 30],
      [2, 0],
      [3, 10],
    ]);
    const member = hub.groups.join('shared');
    expect(member).toBeNull();
    const execute = vi.fn(async (event: unknown) => {
      const { cursor } = event as BoardChangeMessage;
      await new Promise((resolve) => setTimeout(resolve, delays.get(cursor) ?? 0));
      return { data: { cursor } };
    });
    const sent = Array.from({ length: 3 }, () => [] as number[]);
    const streams = sent.map((into, i) => {
      const membership =
        i === 0 ? hub.groups.create('shared', execute) : hub.groups.join('shared')!;
      const stream = hub.subscribe({ boardId: 'b1', authorize: allowed });
      stream.deliverDirectly<SharedResult>({
        resultFor: (message) =>
          membership.resultFor(message, (event) => String((event as BoardChangeMessage).cursor)),
        send: (result) => into.push((result.data as { cursor: number }).cursor) > 0,
      });
      return { stream, membership };
    });
    // Caught up: each parks in next(), and pushes write by themselves from then on.
    const ends = streams.map(({ stream }) => stream.next());
    follower.deliver(entry(1), entry(2), entry(3));
    await vi.waitFor(() => expect(sent.every((s) => s.length === 3)).toBe(true));
    expect(sent).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ]);
    expect(execute).toHaveBeenCalledTimes(3);
    expect(hub.stats()).toMatchObject({ groups: 1, executions: 3 });
    // A members change goes through the iterator (access is checked per subscriber),
    // after whatever was delivered directly before it.
    delays.set(4, 20);
    follower.deliver(entry(4), entry(5, 'b1', true));
    const next = await Promise.all(ends);
    expect(next.map((n) => n.value?.cursor)).toEqual([5, 5, 5]);
    expect(sent.map((s) => s.at(-1))).toEqual([4, 4, 4]);
    for (const { stream, membership } of streams) {
      await stream.return?.();
      membership.leave();
    }
    expect(hub.stats()).toMatchObject({ subscribers: 0, groups: 0 });
  });
});
