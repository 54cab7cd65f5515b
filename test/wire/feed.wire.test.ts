import { BSON, type Document } from 'mongodb';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventStoreUnavailable } from '../../src/eventstore/errors.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import type { FeedItem, FeedPosition } from '../../src/eventstore/types.js';
import { ChangeLogFollower } from '../../src/projector/ChangeLogFollower.js';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import { TAIL_REOPEN_MIN_MS } from '../../src/projector/mongo/MongoChangeLogTail.js';
import { ProjectorStorageUnavailable, type ChangeLogEntry } from '../../src/projector/types.js';
import {
  duplicateKeyReply,
  serverError,
  type ScriptedReply,
  type WireCommand,
} from './fakePrimary.js';
import { isCommand, openWire, type Wire } from './harness.js';

const CURSOR_ID = BSON.Long.fromNumber(777);
const token = (n: number) => ({ _data: `82${String(n).padStart(8, '0')}` });

const commitDoc = (position: number) => ({
  _id: `commit-${position}`,
  position,
  occurredAt: new Date('2026-01-01T00:00:00Z'),
  actor: null,
  operation: null,
  metadata: {},
  idempotencyKey: null,
  events: [
    {
      eventId: `event-${position}`,
      stream: 's',
      version: position,
      type: 'E',
      data: {},
      schemaVersion: 1,
    },
  ],
});

/** An insert change event as the server sends it, with the commit's fields the feed keeps. */
const insertChange = (position: number) => ({
  _id: token(position),
  operationType: 'insert',
  fullDocument: { _id: `commit-${position}`, position },
  ns: { db: 'wire', coll: 'commits' },
  documentKey: { _id: `commit-${position}` },
});

const batch = (command: WireCommand, docs: Document[], pbrt: Document, first: boolean) => ({
  cursor: {
    id: CURSOR_ID,
    ns: `${command.db}.commits`,
    [first ? 'firstBatch' : 'nextBatch']: docs,
    postBatchResumeToken: pbrt,
  },
  operationTime: new BSON.Timestamp({ t: 1, i: 1 }),
  ok: 1,
});

/**
 * `commits` holds what `stored` says; `find commits` answers by position range as the
 * feed's catch-up reads ask.
 */
function scriptCommitsCollection(wire: Wire, stored: () => number) {
  wire.fake.script((command) => {
    if (!isCommand('find', 'commits')(command)) return undefined;
    const range = (command.body.filter as { position: { $gt: number; $lt?: number } }).position;
    const docs = [];
    for (let p = range.$gt + 1; p <= stored() && (range.$lt === undefined || p < range.$lt); p++) {
      docs.push(commitDoc(p));
    }
    return {
      cursor: { id: BSON.Long.ZERO, ns: `${command.db}.commits`, firstBatch: docs },
      ok: 1,
    };
  });
}

/** The next `count` items of `kind` (commits unless asked otherwise), skipping the others. */
async function take(
  feed: AsyncIterator<FeedItem>,
  count: number,
  kind: FeedItem['kind'] = 'commit',
): Promise<FeedItem[]> {
  const items: FeedItem[] = [];
  while (items.length < count) {
    const next = await feed.next();
    if (next.done) break;
    if (next.value.kind === kind) items.push(next.value);
  }
  return items;
}

describe('the commit feed on the wire', () => {
  let wire: Wire;
  let store: MongoEventStore;

  beforeEach(async () => {
    wire = await openWire();
    store = new MongoEventStore({
      client: wire.client,
      dbName: 'wire',
      feed: { maxAwaitTimeMS: 20 },
    });
  });
  afterEach(async () => {
    await store.close();
    await wire.close();
  });

  it('watches commits with the events projected out, and reads each commit by position', async () => {
    let stored = 0;
    scriptCommitsCollection(wire, () => stored);
    let getMores = 0;
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) {
        getMores += 1;
        if (getMores === 2) {
          stored = 1;
          return batch(command, [insertChange(1)], token(1), false);
        }
        return batch(command, [], token(getMores < 2 ? 0 : 1), false);
      }
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await take(feed, 1);
    await feed.return?.();
    expect(items[0]).toMatchObject({ kind: 'commit', commit: { position: 1, events: [{}] } });
    const aggregate = wire.fake.commands.find(isCommand('aggregate', 'commits'))!;
    const pipeline = aggregate.body.pipeline as Document[];
    expect(pipeline.slice(1)).toEqual([
      { $match: { operationType: 'insert' } },
      { $project: { operationType: 1, ns: 1, documentKey: 1, 'fullDocument.position': 1 } },
    ]);
    // What it delivers is read at majority: never a commit a failover could take back.
    const reads = wire.fake.commands.filter(isCommand('find', 'commits'));
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) expect(read.body.readConcern).toEqual({ level: 'majority' });
  });

  it('reads a commit restored from the archive between its two catch-up reads again from commits, at majority, waiting with maxAwaitTimeMS', async () => {
    // Commit 2 was archived when commits was read, and back in commits (restored) when the
    // archive was: neither read had it.
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) return batch(command, [], token(0), false);
      if (isCommand('find', 'commits')(command) || isCommand('find', 'archive_commits')(command)) {
        const filter = (command.body.filter as { position: { $gt?: number; $in?: number[] } })
          .position;
        const archived = command.body.find === 'archive_commits';
        const positions =
          filter.$in ?? (archived ? [] : [1, 3].filter((p) => p > (filter.$gt ?? 0)));
        return {
          cursor: {
            id: BSON.Long.ZERO,
            ns: `${command.db}.${String(command.body.find)}`,
            firstBatch: archived ? [] : positions.map(commitDoc),
          },
          ok: 1,
        };
      }
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await take(feed, 3);
    await feed.return?.();
    expect(items.map((i) => i.kind === 'commit' && i.commit.position)).toEqual([1, 2, 3]);
    const again = wire.fake.commands
      .filter(isCommand('find', 'commits'))
      .find((c) => (c.body.filter as { position: { $in?: number[] } }).position.$in);
    expect(again?.body.filter).toEqual({ position: { $in: [2] } });
    expect(again?.body.readConcern).toEqual({ level: 'majority' });
    for (const getMore of wire.fake.commands.filter(isCommand('getMore'))) {
      expect(getMore.body.maxTimeMS).toBe(20);
    }
  });

  it('closes a feed never iterated at once, twice, sending nothing', async () => {
    const feed = store.subscribe();
    const sent = wire.fake.commands.length;
    await expect(feed.close()).resolves.toBeUndefined();
    await expect(feed.close()).resolves.toBeUndefined();
    expect(await feed[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
    expect(wire.fake.commands.slice(sent).filter((c) => c.name !== 'endSessions')).toEqual([]);
  });

  it('passes on the post-batch resume token of an empty batch as a heartbeat', async () => {
    scriptCommitsCollection(wire, () => 0);
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(5), true);
      if (isCommand('getMore')(command)) return batch(command, [], token(9), false);
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const [heartbeat] = await take(feed, 1, 'heartbeat');
    await feed.return?.();
    expect(heartbeat).toEqual({ kind: 'heartbeat', checkpoint: { position: 0, token: token(9) } });
  });

  it('resumes after NotWritablePrimary on getMore (a stepdown) without losing or repeating a commit', async () => {
    let stored = 0;
    scriptCommitsCollection(wire, () => stored);
    let aggregates = 0;
    let getMores = 0;
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) {
        aggregates += 1;
        if (aggregates === 1) return batch(command, [], token(0), true);
        stored = 2;
        return batch(command, [insertChange(2)], token(2), true);
      }
      if (isCommand('getMore')(command)) {
        getMores += 1;
        if (getMores === 1) {
          stored = 1;
          return batch(command, [insertChange(1)], token(1), false);
        }
        // Servers since 4.4 label the errors a change stream may resume after.
        if (getMores === 2) {
          return serverError(10107, 'NotWritablePrimary', ['ResumableChangeStreamError']);
        }
        return batch(command, [], token(2), false);
      }
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await take(feed, 2);
    await feed.return?.();
    expect(items.map((i) => i.kind === 'commit' && i.commit.position)).toEqual([1, 2]);
    const resumed = wire.fake.commands.filter(isCommand('aggregate', 'commits'))[1]!;
    expect((resumed.body.pipeline as Document[])[0]!.$changeStream).toMatchObject({
      resumeAfter: token(1),
    });
  });

  it.each([
    [286, 'ChangeStreamHistoryLost'],
    [280, 'ChangeStreamFatalError'],
    [260, 'InvalidResumeToken'],
  ])(
    'drops a resume token the server refuses (%i %s) and catches up by position',
    async (code, codeName) => {
      scriptCommitsCollection(wire, () => 3);
      let aggregates = 0;
      wire.fake.script((command) => {
        if (isCommand('aggregate', 'commits')(command)) {
          aggregates += 1;
          if (aggregates === 1) {
            return serverError(code, codeName, ['NonResumableChangeStreamError']);
          }
          return batch(command, [], token(3), true);
        }
        if (isCommand('getMore')(command)) return batch(command, [], token(3), false);
        return undefined;
      });
      const subscription = store.subscribe({ from: { position: 1, token: token(1) } });
      const feed = subscription[Symbol.asyncIterator]();
      const items = await take(feed, 2);
      await feed.return?.();
      expect(items.map((i) => i.kind === 'commit' && i.commit.position)).toEqual([2, 3]);
      const [first, second] = wire.fake.commands.filter(isCommand('aggregate', 'commits'));
      expect((first!.body.pipeline as Document[])[0]!.$changeStream).toMatchObject({
        startAfter: token(1),
      });
      expect((second!.body.pipeline as Document[])[0]!.$changeStream.startAfter).toBeUndefined();
    },
  );

  it('drops a resume token the server refuses on a getMore (286) and catches up by position from a stream without it', async () => {
    let stored = 1;
    scriptCommitsCollection(wire, () => stored);
    let getMores = 0;
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(1), true);
      if (isCommand('getMore')(command)) {
        getMores += 1;
        // The first getMore (the stream's first tryNext) finds nothing; the second fails.
        if (getMores !== 2) return batch(command, [], token(1), false);
        // The oplog moved past the token while the stream waited; 2 and 3 commit meanwhile.
        stored = 3;
        return serverError(286, 'ChangeStreamHistoryLost', ['NonResumableChangeStreamError']);
      }
      return undefined;
    });
    const subscription = store.subscribe({ from: { position: 1, token: token(1) } });
    const feed = subscription[Symbol.asyncIterator]();
    const items = await take(feed, 2);
    await feed.return?.();
    expect(items.map((i) => i.kind === 'commit' && i.commit.position)).toEqual([2, 3]);
    const [first, second] = wire.fake.commands.filter(isCommand('aggregate', 'commits'));
    expect((first!.body.pipeline as Document[])[0]!.$changeStream).toMatchObject({
      startAfter: token(1),
    });
    expect(second).toBeDefined();
    expect((second!.body.pipeline as Document[])[0]!.$changeStream.startAfter).toBeUndefined();
  });

  it('ends with EventStoreUnavailable on an invalidate event (commits dropped or renamed)', async () => {
    scriptCommitsCollection(wire, () => 0);
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) {
        return {
          cursor: {
            id: BSON.Long.ZERO,
            ns: `${command.db}.commits`,
            nextBatch: [{ _id: token(1), operationType: 'invalidate' }],
            postBatchResumeToken: token(1),
          },
          ok: 1,
        };
      }
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const error = await take(feed, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({
      message: "the change stream on commits ended with 'invalidate'",
    });
  });

  it('ends with EventStoreUnavailable when the server closes the change stream without an event', async () => {
    scriptCommitsCollection(wire, () => 0);
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) {
        return {
          cursor: {
            id: BSON.Long.ZERO,
            ns: `${command.db}.commits`,
            nextBatch: [],
            postBatchResumeToken: token(1),
          },
          ok: 1,
        };
      }
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const error = await take(feed, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({
      message: 'the change stream on commits was closed by the server',
    });
  });
});

describe("the commit feed's checkpoints and heartbeats on the wire", () => {
  let wire: Wire;
  let store: MongoEventStore;

  beforeEach(async () => {
    wire = await openWire();
    store = new MongoEventStore({
      client: wire.client,
      dbName: 'wire',
      feed: { maxAwaitTimeMS: 20 },
    });
  });
  afterEach(async () => {
    await store.close();
    await wire.close();
  });

  /** The next `count` items of any kind, as `kind position token`. */
  async function described(feed: AsyncIterator<FeedItem>, count: number): Promise<string[]> {
    const items: string[] = [];
    while (items.length < count) {
      const next = await feed.next();
      if (next.done) break;
      const { kind, checkpoint } = next.value;
      const tokenText = checkpoint.token === undefined ? '-' : JSON.stringify(checkpoint.token);
      items.push(`${kind} ${checkpoint.position} ${tokenText}`);
    }
    return items;
  }
  const t = (n: number) => JSON.stringify(token(n));

  it('sends a heartbeat only when the resume token moved past the last checkpoint given', async () => {
    let stored = 0;
    scriptCommitsCollection(wire, () => stored);
    let getMores = 0;
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (!isCommand('getMore')(command)) return undefined;
      getMores += 1;
      if (getMores <= 3) return batch(command, [], token(0), false);
      if (getMores === 4) {
        stored = 1;
        return batch(command, [insertChange(1)], token(1), false);
      }
      // Quiet batches whose token is the commit's own, then one that moved on.
      return batch(command, [], token(getMores <= 7 ? 1 : 2), false);
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await described(feed, 3);
    await feed.return?.();
    expect(items).toEqual([`heartbeat 0 ${t(0)}`, `commit 1 ${t(1)}`, `heartbeat 1 ${t(2)}`]);
    expect(getMores).toBeGreaterThanOrEqual(8);
  });

  it('resumes from a checkpoint with its token: the change stream starts after it, and no heartbeat repeats it', async () => {
    let stored = 1;
    scriptCommitsCollection(wire, () => stored);
    let getMores = 0;
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(1), true);
      if (!isCommand('getMore')(command)) return undefined;
      getMores += 1;
      if (getMores < 4) return batch(command, [], token(1), false);
      stored = 2;
      return batch(command, [insertChange(2)], token(2), false);
    });
    const subscription = store.subscribe({ from: { position: 1, token: token(1) } });
    const feed = subscription[Symbol.asyncIterator]();
    const items = await described(feed, 1);
    await feed.return?.();
    expect(items).toEqual([`commit 2 ${t(2)}`]);
    const [aggregate] = wire.fake.commands.filter(isCommand('aggregate', 'commits'));
    expect((aggregate!.body.pipeline as Document[])[0]!.$changeStream).toMatchObject({
      startAfter: token(1),
    });
  });

  it('catches a backlog up in reads of catchUpBatchSize commits, all of it before it waits on the change stream', async () => {
    await store.close();
    store = new MongoEventStore({
      client: wire.client,
      dbName: 'wire',
      feed: { maxAwaitTimeMS: 20, catchUpBatchSize: 2 },
    });
    wire.fake.script((command) => {
      if (!isCommand('find', 'commits')(command)) return undefined;
      const after = (command.body.filter as { position: { $gt: number } }).position.$gt;
      const limit = command.body.limit as number;
      const docs = [1, 2, 3, 4, 5]
        .filter((p) => p > after)
        .slice(0, limit)
        .map(commitDoc);
      return {
        cursor: { id: BSON.Long.ZERO, ns: `${command.db}.commits`, firstBatch: docs },
        ok: 1,
      };
    });
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) return batch(command, [], token(0), false);
      return undefined;
    });
    const getMores = () => wire.fake.commands.filter(isCommand('getMore')).length;
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await take(feed, 1);
    const atFirst = getMores();
    items.push(...(await take(feed, 4)));
    const atLast = getMores();
    await feed.return?.();
    expect(items.map((i) => i.kind === 'commit' && i.commit.position)).toEqual([1, 2, 3, 4, 5]);
    // No wait on the stream (a getMore, up to maxAwaitTimeMS on a server) between them.
    expect(atLast).toBe(atFirst);
    const reads = wire.fake.commands.filter(isCommand('find', 'commits'));
    expect(reads.length).toBeGreaterThanOrEqual(3);
    for (const read of reads) expect(read.body.limit).toBe(2);
  });

  it('yields nothing more once closed, even with commits of a read batch not delivered yet', async () => {
    scriptCommitsCollection(wire, () => 5);
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) return batch(command, [], token(0), false);
      return undefined;
    });
    const subscription = store.subscribe();
    const feed = subscription[Symbol.asyncIterator]();
    const [first] = await take(feed, 1);
    expect(first).toMatchObject({ kind: 'commit', commit: { position: 1 } });
    await subscription.close();
    expect(await feed.next()).toEqual({ done: true, value: undefined });
  });

  it('fails with EventStoreUnavailable, opening nothing more, when the change stream is refused and it gave no token', async () => {
    scriptCommitsCollection(wire, () => 1);
    let aggregates = 0;
    wire.fake.script((command) => {
      if (!isCommand('aggregate', 'commits')(command)) return undefined;
      aggregates += 1;
      return aggregates <= 3
        ? serverError(280, 'ChangeStreamFatalError', ['NonResumableChangeStreamError'])
        : batch(command, [], token(1), true);
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const error = await feed.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({ message: 'the commit feed failed' });
    expect((error as Error).cause).toMatchObject({ code: 280 });
    expect(aggregates).toBe(1);
  });

  it('fails with EventStoreUnavailable, carrying the cause, on a getMore error a resume cannot fix', async () => {
    scriptCommitsCollection(wire, () => 0);
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) return serverError(2, 'BadValue');
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const error = await take(feed, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({ message: 'the commit feed failed' });
    expect((error as Error).cause).toMatchObject({ code: 2 });
  });
});

describe('the change log follower on the wire', () => {
  it('recovers from a server selection timeout and delivers what was recorded meanwhile', async () => {
    const wire = await openWire({
      clientOptions: { serverSelectionTimeoutMS: 300, heartbeatFrequencyMS: 500 },
    });
    let head = 0;
    wire.fake.script((command) => {
      if (isCommand('find', 'readmodel_meta')(command)) {
        return {
          cursor: {
            id: BSON.Long.ZERO,
            ns: `${command.db}.readmodel_meta`,
            firstBatch: [{ _id: 'active', generation: 'g1' }],
          },
          ok: 1,
        };
      }
      if (isCommand('find', 'changelog')(command)) {
        const filter = command.body.filter as { _id?: { $gt: number } };
        const after = filter._id?.$gt;
        const entries = [];
        // The head read sorts by _id descending with limit 1; the catch-up asks for _id > after.
        const from = after === undefined ? head : after + 1;
        for (let c = from; c >= 1 && c <= head; c++) {
          entries.push({
            _id: c,
            commitId: `commit-${c}`,
            scopes: [],
            operation: null,
            actor: null,
            at: new Date(0),
            invalidated: [],
          });
        }
        return {
          cursor: { id: BSON.Long.ZERO, ns: `${command.db}.changelog`, firstBatch: entries },
          ok: 1,
        };
      }
      // No change streams here: the tail polls.
      if (isCommand('aggregate', 'changelog')(command)) {
        return serverError(40573, 'Location40573');
      }
      return undefined;
    });
    const storage = await createMongoProjectorStorage({
      client: wire.client,
      dbName: 'wire',
      tailPollIntervalMs: 20,
    });
    const follower = new ChangeLogFollower(storage.changeLog, pino({ level: 'silent' }), {
      initialMs: 50,
      maxMs: 200,
    });
    try {
      await follower.start();
      wire.fake.unavailable = true; // every connection is refused or cut
      const deadline = Date.now() + 5_000;
      while (follower.status().restarts === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(follower.status().lastError?.message).toMatch(/selection|connect|closed/i);
      head = 1;
      wire.fake.unavailable = false;
      await follower.waitFor(1, { timeoutMs: 20_000 });
      expect(follower.seen).toBe(1);
    } finally {
      await follower.stop();
      await storage.close();
      await wire.close();
    }
  });
});

describe('a change log tail on the wire', () => {
  it('goes back to a change stream after one failed, instead of polling for good', async () => {
    const wire = await openWire();
    let aggregates = 0;
    wire.fake.script((command) => {
      if (isCommand('find', 'readmodel_meta')(command)) {
        return {
          cursor: {
            id: BSON.Long.ZERO,
            ns: `${command.db}.readmodel_meta`,
            firstBatch: [{ _id: 'active', generation: 'g1' }],
          },
          ok: 1,
        };
      }
      if (isCommand('aggregate', 'changelog')(command)) {
        aggregates += 1;
        // The first change stream cannot open (an error the driver does not retry itself).
        if (aggregates === 1) return serverError(40573, 'Location40573');
        return {
          cursor: {
            id: CURSOR_ID,
            ns: `${command.db}.changelog`,
            firstBatch: [],
            postBatchResumeToken: token(1),
          },
          ok: 1,
        };
      }
      if (isCommand('getMore')(command)) {
        return {
          $delayMs: 20,
          reply: {
            cursor: {
              id: CURSOR_ID,
              ns: `${command.db}.changelog`,
              nextBatch: [],
              postBatchResumeToken: token(1),
            },
            ok: 1,
          },
        };
      }
      return undefined;
    });
    const storage = await createMongoProjectorStorage({
      client: wire.client,
      dbName: 'wire',
      tailPollIntervalMs: 20,
    });
    const tail = storage.changeLog.tail(0);
    const iterating = (async () => {
      for await (const entry of tail) void entry;
    })();
    try {
      const deadline = Date.now() + 10_000;
      while (wire.fake.commands.filter(isCommand('aggregate', 'changelog')).length < 2) {
        if (Date.now() > deadline) throw new Error('the tail never reopened its change stream');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Back on the stream: it waits on getMore, no longer polling the collection.
      const reopened = wire.fake.commands.length;
      while (wire.fake.commands.slice(reopened).filter(isCommand('getMore')).length < 5) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const since = wire.fake.commands.slice(reopened);
      expect(since.filter(isCommand('find', 'changelog')).length).toBeLessThanOrEqual(2);
    } finally {
      await tail.close();
      await iterating;
      await storage.close();
      await wire.close();
    }
  });
});

/**
 * The change log on a scripted primary: `changelog` holds the cursors of `stored`, its
 * change streams answer as `aggregate` and `getMore` say, and every command's time is kept.
 */
interface ChangeLogScript {
  stored: number[];
  /** The n-th (from 1) `aggregate` on `changelog`: its reply. */
  aggregate?: (n: number, command: WireCommand) => Document;
  /** A `getMore` on the change stream: its reply. */
  getMore?: (command: WireCommand) => ScriptedReply;
  /** A write to `changelog`: its reply (default: refused, BadValue). */
  insert?: (command: WireCommand) => Document;
}

const entryAt = (cursor: number): ChangeLogEntry => ({
  cursor,
  commitId: `commit-${cursor}`,
  scopes: [],
  operation: null,
  actor: null,
  at: new Date(0),
  invalidated: [],
});

const changeLogDoc = (cursor: number) => ({
  _id: cursor,
  commitId: `commit-${cursor}`,
  scopes: [],
  operation: null,
  actor: null,
  at: new Date(0),
  invalidated: [],
});

/** An insert change event of `changelog`, as a change stream sends it. */
const changeLogInsert = (cursor: number) => ({
  _id: token(cursor),
  operationType: 'insert',
  fullDocument: changeLogDoc(cursor),
  ns: { db: 'wire', coll: 'changelog' },
  documentKey: { _id: cursor },
});

const changeStreamBatch = (command: WireCommand, docs: Document[], first: boolean) => ({
  cursor: {
    id: CURSOR_ID,
    ns: `${command.db}.changelog`,
    [first ? 'firstBatch' : 'nextBatch']: docs,
    postBatchResumeToken: token(0),
  },
  ok: 1,
});

async function openChangeLogWire(script: ChangeLogScript, tailPollIntervalMs = 20) {
  const wire = await openWire();
  const at = new Map<WireCommand, number>();
  let aggregates = 0;
  wire.fake.script((command) => {
    at.set(command, performance.now());
    if (isCommand('find', 'readmodel_meta')(command)) {
      return {
        cursor: {
          id: BSON.Long.ZERO,
          ns: `${command.db}.readmodel_meta`,
          firstBatch: [{ _id: 'active', generation: 'g1' }],
        },
        ok: 1,
      };
    }
    if (isCommand('find', 'changelog')(command)) {
      const after = (command.body.filter as { _id?: { $gt: number } })._id?.$gt;
      const limit = (command.body.limit as number | undefined) ?? Infinity;
      const sorted = [...script.stored].sort((a, b) => a - b);
      // The head read sorts by _id descending with limit 1; the others ask for _id > after.
      const docs =
        after === undefined ? sorted.slice(-1) : sorted.filter((c) => c > after).slice(0, limit);
      return {
        cursor: {
          id: BSON.Long.ZERO,
          ns: `${command.db}.changelog`,
          firstBatch: docs.map(changeLogDoc),
        },
        ok: 1,
      };
    }
    if (isCommand('aggregate', 'changelog')(command)) {
      aggregates += 1;
      return script.aggregate?.(aggregates, command) ?? changeStreamBatch(command, [], true);
    }
    if (isCommand('getMore')(command)) {
      return (
        script.getMore?.(command) ?? { $delayMs: 20, reply: changeStreamBatch(command, [], false) }
      );
    }
    if (isCommand('insert', 'changelog')(command)) {
      return script.insert?.(command) ?? serverError(2, 'BadValue');
    }
    return undefined;
  });
  const storage = await createMongoProjectorStorage({
    client: wire.client,
    dbName: 'wire',
    tailPollIntervalMs,
  });
  const times = (name: string, target?: string) =>
    wire.fake.commands.filter(isCommand(name, target)).map((c) => at.get(c)!);
  return {
    wire,
    storage,
    times,
    async close() {
      await storage.close();
      await wire.close();
    },
  };
}

/** Waits until `done()`, failing after `ms`. */
async function until(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What `promise` settles to, or 'still waiting' after `ms`. */
const within = <T>(promise: Promise<T>, ms = 5_000) =>
  Promise.race([
    promise,
    new Promise<'still waiting'>((resolve) =>
      setTimeout(() => resolve('still waiting'), ms).unref(),
    ),
  ]);

describe('a change log tail on the wire, when its change stream fails or jumps', () => {
  it('tries a change stream again after 1 s, then 2 s, polling meanwhile, and delivers what was recorded', async () => {
    const script: ChangeLogScript = {
      stored: [],
      // The first two change streams cannot open (an error the driver does not retry).
      aggregate: (n, command) =>
        n <= 2 ? serverError(40573, 'Location40573') : changeStreamBatch(command, [], true),
    };
    const on = await openChangeLogWire(script);
    const tail = on.storage.changeLog.tail(0);
    const iterator = tail[Symbol.asyncIterator]();
    try {
      const first = iterator.next();
      await until(() => on.times('aggregate', 'changelog').length === 1, 'the first change stream');
      // Polling: an entry recorded while change streams fail still comes.
      script.stored.push(1);
      expect(await within(first)).toMatchObject({ value: { cursor: 1 } });
      const pending = iterator.next();
      await until(
        () => on.times('aggregate', 'changelog').length === 3,
        'the third change stream',
        15_000,
      );
      const [a1, a2, a3] = on.times('aggregate', 'changelog') as [number, number, number];
      expect(a2 - a1).toBeGreaterThanOrEqual(TAIL_REOPEN_MIN_MS - 1);
      expect(a3 - a2).toBeGreaterThanOrEqual(2 * TAIL_REOPEN_MIN_MS - 1);
      // Polled meanwhile, every 20 ms.
      expect(on.times('find', 'changelog').filter((t) => t > a1 && t < a2).length).toBeGreaterThan(
        2,
      );
      await tail.close();
      expect(await within(pending)).toEqual({ done: true, value: undefined });
    } finally {
      await tail.close();
      await on.close();
    }
  });

  it('ends at once when closed while it polls, however long its interval', async () => {
    const on = await openChangeLogWire(
      { stored: [], aggregate: () => serverError(40573, 'Location40573') },
      60_000,
    );
    const tail = on.storage.changeLog.tail(0);
    const pending = tail[Symbol.asyncIterator]().next();
    try {
      await until(() => on.times('find', 'changelog').length >= 2, 'the catch-up read');
      await new Promise((resolve) => setTimeout(resolve, 50));
      await tail.close();
      expect(await within(pending)).toEqual({ done: true, value: undefined });
    } finally {
      await tail.close();
      await on.close();
    }
  });

  it('ends at once when closed while a getMore of its change stream is pending', async () => {
    let getMores = 0;
    const on = await openChangeLogWire({
      stored: [],
      getMore: (command) => {
        getMores += 1;
        return { $delayMs: 30_000, reply: changeStreamBatch(command, [], false) };
      },
    });
    const tail = on.storage.changeLog.tail(0);
    const pending = tail[Symbol.asyncIterator]().next();
    try {
      await until(() => getMores === 1, 'the getMore');
      await tail.close();
      expect(await within(pending)).toEqual({ done: true, value: undefined });
    } finally {
      await tail.close();
      await on.close();
    }
  });

  it('reads the cursors it missed from the collection when its change stream jumps past them', async () => {
    const script: ChangeLogScript = { stored: [1] };
    const changes: number[] = [];
    script.getMore = (command) => {
      const next = changes.shift();
      return next === undefined
        ? { $delayMs: 20, reply: changeStreamBatch(command, [], false) }
        : changeStreamBatch(command, [changeLogInsert(next)], false);
    };
    const on = await openChangeLogWire(script, 60_000);
    const tail = on.storage.changeLog.tail(0);
    const iterator = tail[Symbol.asyncIterator]();
    try {
      expect(await within(iterator.next())).toMatchObject({ value: { cursor: 1 } });
      // 2 and 3 are stored, the stream shows 3 only: 2 is read, then 3.
      script.stored.push(2, 3);
      changes.push(3);
      expect(await within(iterator.next())).toMatchObject({ value: { cursor: 2 } });
      expect(await within(iterator.next())).toMatchObject({ value: { cursor: 3 } });
      // The stream shows 2 and 3 again, then 4: only 4 is new.
      script.stored.push(4);
      changes.push(2, 3, 4);
      expect(await within(iterator.next())).toMatchObject({ value: { cursor: 4 } });
    } finally {
      await tail.close();
      await on.close();
    }
  });
});

describe('the change log on the wire, when the server refuses', () => {
  it('reports a failed record, batch or head read as ProjectorStorageUnavailable naming it, trying a refused batch once', async () => {
    const script: ChangeLogScript = { stored: [] };
    const on = await openChangeLogWire(script);
    try {
      const { changeLog } = on.storage;
      const inserts = () => on.times('insert', 'changelog').length;
      const refused = await changeLog.record(entryAt(1)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ProjectorStorageUnavailable);
      expect((refused as Error).message).toMatch(/^change log record failed/);
      const before = inserts();
      await expect(changeLog.recordMany([entryAt(1), entryAt(2)])).rejects.toThrow(
        /^change log record failed/,
      );
      expect(inserts() - before).toBe(1);
      on.wire.fake.failNext(isCommand('find', 'changelog'), serverError(2, 'BadValue'));
      await expect(changeLog.head()).rejects.toThrow(/^change log head failed/);
    } finally {
      await on.close();
    }
  });
});

describe('the commit feed on the wire, with positions settling out of order', () => {
  let wire: Wire;
  let store: MongoEventStore;
  /** What `commits` holds, by position: a commit, or a tombstone once one is inserted. */
  const held = new Map<number, Document>();
  let changes: number[] = [];

  const openStore = (gapGraceMs: number) => {
    store = new MongoEventStore({
      client: wire.client,
      dbName: 'wire',
      feed: { maxAwaitTimeMS: 20, gapGraceMs },
    });
  };

  beforeEach(async () => {
    wire = await openWire();
    held.clear();
    changes = [];
    wire.fake.script((command) => {
      if (isCommand('aggregate', 'commits')(command)) return batch(command, [], token(0), true);
      if (isCommand('getMore')(command)) {
        const next = changes.shift();
        return next === undefined
          ? batch(command, [], token(0), false)
          : batch(command, [insertChange(next)], token(next), false);
      }
      if (isCommand('find', 'commits')(command)) {
        const filter = (
          command.body.filter as { position: number | { $gt: number; $lte?: number } }
        ).position;
        const range = typeof filter === 'number' ? { $gt: filter - 1, $lte: filter } : filter;
        const docs = [...held.entries()]
          .filter(([p]) => p > range.$gt && (range.$lte === undefined || p <= range.$lte))
          .sort(([a], [b]) => a - b)
          .map(([, doc]) => doc);
        return {
          cursor: { id: BSON.Long.ZERO, ns: `${command.db}.commits`, firstBatch: docs },
          ok: 1,
        };
      }
      if (isCommand('insert', 'commits')(command) && command.body.autocommit === undefined) {
        const [doc] = command.body.documents as Document[];
        if (held.has(doc!.position as number)) {
          return duplicateKeyReply('wire.commits', String(doc!._id), 'position_1_unique');
        }
        held.set(doc!.position as number, doc!);
        return { n: 1, ok: 1 };
      }
      return undefined;
    });
  });
  afterEach(async () => {
    await store.close();
    await wire.close();
  });

  /** The next `count` commit and gap items, as `commit 1` / `gap 2`, pushed into `seen`. */
  async function settled(
    feed: AsyncIterator<FeedItem>,
    count: number,
    seen: string[] = [],
  ): Promise<string[]> {
    while (seen.length < count) {
      const next = await feed.next();
      if (next.done) break;
      if (next.value.kind === 'commit') seen.push(`commit ${next.value.commit.position}`);
      if (next.value.kind === 'gap') seen.push(`gap ${next.value.position}`);
    }
    return seen;
  }

  it('holds a position back until the one before it commits, then delivers both in order', async () => {
    openStore(60_000);
    // Position 2 commits first (its transaction reserved later but committed sooner).
    held.set(2, commitDoc(2));
    changes.push(2);
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const seen: string[] = [];
    const done = settled(feed, 2, seen);
    // Several probes of the missing position later, nothing is delivered; then 1 commits.
    const probesOfOne = () =>
      wire.fake.commands
        .filter(isCommand('find', 'commits'))
        .filter((c) => (c.body.filter as Document).position === 1).length;
    await until(() => probesOfOne() >= 3, 'three probes of position 1');
    expect(seen).toEqual([]);
    // While 1 is missing, each probe reads position 1 alone: the batch after it is read
    // once (the first catch-up), not again on every change and quiet batch.
    const batchReads = wire.fake.commands
      .filter(isCommand('find', 'commits'))
      .filter((c) => (c.body.filter as { position: { $gt?: number } }).position.$gt !== undefined);
    expect(batchReads).toHaveLength(1);
    held.set(1, commitDoc(1));
    changes.push(1);
    expect(await done).toEqual(['commit 1', 'commit 2']);
    await feed.return?.();
    // A live appender is never overtaken: no tombstone within the grace period.
    expect(wire.fake.commands.filter(isCommand('insert', 'commits'))).toHaveLength(0);
    // While 1 was missing, the feed asked for it alone, not for a batch of what follows.
    const reads = wire.fake.commands.filter(isCommand('find', 'commits'));
    const probes = reads.filter((c) => (c.body.filter as Document).position === 1);
    expect(probes.length).toBeGreaterThan(1);
    expect(probes[0]!.body).toMatchObject({ limit: 1, projection: { _id: 1 } });
  });

  it("gives the resume token only to the checkpoint of the change's own commit, not to those read with it", async () => {
    openStore(60_000);
    held.set(1, commitDoc(1));
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const checkpoints: FeedPosition[] = [];
    const next = async () => {
      for (;;) {
        const item = await feed.next();
        if (item.done) throw new Error('the feed ended');
        if (item.value.kind !== 'heartbeat') return checkpoints.push(item.value.checkpoint);
      }
    };
    await next();
    // 2 and 3 commit between two getMores; only the change of 3 is seen first: 2 is read
    // with it.
    let committed = false;
    wire.fake.script((command) => {
      if (!isCommand('getMore')(command) || committed) return undefined;
      committed = true;
      held.set(2, commitDoc(2));
      held.set(3, commitDoc(3));
      changes.push(2);
      return batch(command, [insertChange(3)], token(3), false);
    });
    await next();
    await next();
    await feed.return?.();
    expect(checkpoints).toEqual([
      { position: 1 },
      { position: 2 },
      { position: 3, token: token(3) },
    ]);
  });

  it('closes a position whose appender died with a tombstone after the grace period, and yields a gap', async () => {
    openStore(150);
    held.set(3, commitDoc(3));
    changes.push(3);
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await settled(feed, 3);
    await feed.return?.();
    expect(items).toEqual(['gap 1', 'gap 2', 'commit 3']);
    const tombstones = wire.fake.commands.filter(isCommand('insert', 'commits'));
    expect(tombstones.map((c) => (c.body.documents as Document[])[0])).toEqual([
      expect.objectContaining({ _id: 'gap-1', position: 1, gap: true }),
      expect.objectContaining({ _id: 'gap-2', position: 2, gap: true }),
    ]);
    for (const c of tombstones) {
      expect(c.body.autocommit).toBeUndefined();
      expect(c.body.writeConcern).toMatchObject({ w: 'majority' });
    }
    // No reservation names a session: none is ended (an empty killSessions would end
    // every session of the user, live appenders' too).
    expect(wire.fake.commands.filter(isCommand('killSessions'))).toEqual([]);
  });

  it("ends the dead appender's session, found by its reservation, before closing its position", async () => {
    openStore(150);
    held.set(2, commitDoc(2));
    changes.push(2);
    // The appender of position 1 died with its commit document inserted and its transaction
    // open: the tombstone waits behind that uncommitted key (here, until maxTimeMS runs out)
    // for as long as the server keeps the transaction, unless the session is ended.
    const lsid = { id: new BSON.Binary(Buffer.alloc(16, 7), BSON.Binary.SUBTYPE_UUID) };
    let ended = false;
    wire.fake.script((command) => {
      if (isCommand('find', 'reservations')(command)) {
        return {
          cursor: {
            id: BSON.Long.ZERO,
            ns: 'wire.reservations',
            firstBatch: [{ _id: 1, lsid }],
          },
          ok: 1,
        };
      }
      if (isCommand('killSessions')(command)) {
        ended = BSON.EJSON.stringify(command.body.killSessions) === BSON.EJSON.stringify([lsid]);
        return { ok: 1 };
      }
      if (isCommand('insert', 'commits')(command) && !ended) {
        return { $delayMs: 20, reply: serverError(50, 'MaxTimeMSExpired') };
      }
      return undefined;
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await Promise.race([
      settled(feed, 2),
      new Promise<string[]>((resolve) => setTimeout(() => resolve(['still held']), 10_000)),
    ]);
    await store.close();
    expect(items).toEqual(['gap 1', 'commit 2']);
    const lookup = wire.fake.commands.find(isCommand('find', 'reservations'))!;
    expect(lookup.body.filter).toEqual({ _id: { $in: [1] } });
    const kill = wire.fake.commands.findIndex(isCommand('killSessions'));
    expect(wire.fake.commands[kill]!.db).toBe('admin');
  });

  it('delivers the commit when it wins the race with the tombstone on the position index', async () => {
    openStore(150);
    held.set(2, commitDoc(2));
    changes.push(2);
    // The late transaction inserts position 1 just as the feed closes it: the tombstone is
    // the duplicate.
    wire.fake.script((command) => {
      if (!(isCommand('insert', 'commits')(command) && command.body.autocommit === undefined))
        return undefined;
      held.set(1, commitDoc(1));
      return duplicateKeyReply('wire.commits', 'gap-1', 'position_1_unique');
    });
    const feed = store.subscribe()[Symbol.asyncIterator]();
    const items = await settled(feed, 2);
    await feed.return?.();
    expect(items).toEqual(['commit 1', 'commit 2']);
  });
});
