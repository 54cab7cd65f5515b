/**
 * The mongo adapters' safety guards on the simulator, one behaviour each, where only a
 * server that evaluates filters, updates and read concerns can show what a guard does
 * (the wire tier pins what is sent). `npm run test:guards` removes each guard and names
 * the test that then fails; the ones here are the semantic half of that table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import {
  CollectionName,
  IndexName,
  POSITION_COUNTER_ID,
  type CommitDoc,
} from '../../src/eventstore/mongo/documents.js';
import type { FeedItem } from '../../src/eventstore/types.js';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import {
  FencedOut,
  StaleWrite,
  type Fence,
  type ProjectorStorage,
  type ReadDoc,
} from '../../src/projector/types.js';
import type { MongoSim } from './MongoSim.js';
import { startSimAndClient, stopSimAndClient } from './simClient.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;
const freshDbName = () => `guards_${++dbCount}`;

beforeAll(
  async () =>
    ({ sim, client } = await startSimAndClient({
      serverSelectionTimeoutMS: 10_000,
      monitorCommands: true,
    })),
);
afterAll(() => stopSimAndClient({ sim, client }));

const fence = (epoch: number): Fence => ({ lease: 'projector', owner: `p${epoch}`, epoch });

interface Counter extends ReadDoc {
  n: number;
}

/** A commit document at `position` as the store writes one, outside any append. */
function rawCommit(position: number, stream: string, version: number): CommitDoc {
  return {
    _id: `raw-${position}`,
    position,
    occurredAt: new Date('2026-01-01T00:00:00Z'),
    actor: null,
    operation: null,
    metadata: {},
    idempotencyKey: null,
    events: [
      {
        eventId: `raw-event-${position}`,
        stream,
        version,
        type: 'Raw',
        data: {},
        schemaVersion: 1,
      },
    ],
  };
}

describe('projector storage guards on the simulator', () => {
  let storage: ProjectorStorage;
  beforeAll(async () => {
    storage = await createMongoProjectorStorage({ client, dbName: freshDbName() });
  });
  afterAll(async () => {
    await storage.close();
  });

  it('refuses to replace a read document with one that applied older stream versions', async () => {
    const docs = (await storage.readModels.active()).collection<Counter>('counters');
    await docs.put({ _id: 'c1', n: 2, _applied: { 's-1': 2, 's-2': 1 } });
    // Older on one stream (s-1), newer on the other: a regression all the same.
    await expect(docs.put({ _id: 'c1', n: 1, _applied: { 's-1': 1, 's-2': 5 } })).rejects.toThrow(
      StaleWrite,
    );
    // A stream the new document lacks counts as version 0.
    await expect(docs.put({ _id: 'c1', n: 0, _applied: { 's-2': 9 } })).rejects.toThrow(StaleWrite);
    expect(await docs.get('c1')).toEqual({ _id: 'c1', n: 2, _applied: { 's-1': 2, 's-2': 1 } });
    await docs.put({ _id: 'c1', n: 3, _applied: { 's-1': 3, 's-2': 1 } });
    expect(await docs.get('c1')).toMatchObject({ n: 3 });
  });

  it('refuses a read document write under an older epoch of the lease than the stored one', async () => {
    const generation = (await storage.readModels.active()).generation;
    const newer = storage.readModels.view(generation, { fence: fence(2) });
    const older = storage.readModels.view(generation, { fence: fence(1) });
    await newer.collection<Counter>('fenced').put({ _id: 'd1', n: 1, _applied: { s: 1 } });
    // Not a regression (it applied more), but written by a deposed holder: refused.
    await expect(
      older.collection<Counter>('fenced').put({ _id: 'd1', n: 9, _applied: { s: 9 } }),
    ).rejects.toThrow(FencedOut);
    expect(await newer.collection<Counter>('fenced').get('d1')).toMatchObject({ n: 1 });
  });

  it('writes many read documents as put would, in one bulk update, refusing the regressing and the fenced-out ones', async () => {
    const generation = (await storage.readModels.active()).generation;
    const newer = storage.readModels
      .view(generation, { fence: fence(2) })
      .collection<Counter>('each');
    const older = storage.readModels
      .view(generation, { fence: fence(1) })
      .collection<Counter>('each');
    await newer.put({ _id: 'e1', n: 1, _applied: { s: 5 } });
    await older.put({ _id: 'e2', n: 1, _applied: { s: 5 } });
    const updates: number[] = [];
    const watch = (event: CommandStartedEvent) => {
      if (event.commandName === 'update') updates.push(event.command.updates.length);
    };
    client.on('commandStarted', watch);
    try {
      // e2 regresses (s: 4 < 5); e3 and e4 are new: StaleWrite, and the others written.
      await expect(
        older.putEach([
          { _id: 'e3', n: 3, _applied: { s: 1 } },
          { _id: 'e2', n: 9, _applied: { s: 4 } },
          { _id: 'e4', n: 4, _applied: { s: 1 } },
        ]),
      ).rejects.toThrow(StaleWrite);
      // e1 was written under epoch 2: FencedOut wins over e2's regression; e5 is written.
      await expect(
        older.putEach([
          { _id: 'e2', n: 9, _applied: { s: 4 } },
          { _id: 'e1', n: 9, _applied: { s: 9 } },
          { _id: 'e5', n: 5, _applied: { s: 1 } },
        ]),
      ).rejects.toThrow(FencedOut);
      // Nothing refused: no error; the last document given for an id is the one written.
      await older.putEach([
        { _id: 'e2', n: 6, _applied: { s: 6 } },
        { _id: 'e2', n: 7, _applied: { s: 7 } },
      ]);
    } finally {
      client.off('commandStarted', watch);
    }
    expect(updates).toEqual([3, 3, 1]);
    const stored = await Promise.all(['e1', 'e2', 'e3', 'e4', 'e5'].map((id) => newer.get(id)));
    expect(stored.map((doc) => doc?.n)).toEqual([1, 7, 3, 4, 5]);
  });

  it('never moves a checkpoint back', async () => {
    await storage.checkpoints.save('gnoback', { position: 5 });
    await storage.checkpoints.save('gnoback', { position: 3 });
    expect(await storage.checkpoints.load('gnoback')).toEqual({ position: 5 });
    await storage.checkpoints.save('gnoback', { position: 6 }, fence(1));
    await storage.checkpoints.save('gnoback', { position: 4 }, fence(1));
    expect(await storage.checkpoints.load('gnoback')).toEqual({ position: 6 });
  });

  it('refuses a checkpoint save under an older epoch than the stored one, with FencedOut', async () => {
    await storage.checkpoints.save('gepoch', { position: 5 }, fence(2));
    // Further on, but from a deposed holder: refused, and said so.
    await expect(storage.checkpoints.save('gepoch', { position: 9 }, fence(1))).rejects.toThrow(
      FencedOut,
    );
    expect(await storage.checkpoints.load('gepoch')).toEqual({ position: 5 });
    await storage.checkpoints.save('gepoch', { position: 7 }, fence(2));
    expect(await storage.checkpoints.load('gepoch')).toEqual({ position: 7 });
  });
});

describe('read model generation guards on the simulator', () => {
  let dbName: string;
  let storage: ProjectorStorage;
  beforeAll(async () => {
    dbName = freshDbName();
    storage = await createMongoProjectorStorage({ client, dbName, generationDropDelayMs: 0 });
  });
  afterAll(async () => {
    await storage.close();
  });

  it('switches generations only from the expected active one (compare-and-set)', async () => {
    const active = (await storage.readModels.active({ fresh: true })).generation;
    const next = await storage.readModels.createGeneration();
    const other = await storage.readModels.createGeneration();
    // A switch that expected another active generation changes nothing.
    expect(await storage.readModels.activate(next, other)).toBe(false);
    expect((await storage.readModels.active({ fresh: true })).generation).toBe(active);
    expect(await storage.readModels.activate(next, active)).toBe(true);
    expect((await storage.readModels.active({ fresh: true })).generation).toBe(next);
  });

  it('refuses a pointer claim and a switch under an older epoch than the newest claim', async () => {
    const active = (await storage.readModels.active({ fresh: true })).generation;
    const next = await storage.readModels.createGeneration();
    expect((await storage.readModels.active({ fence: fence(7) })).generation).toBe(active);
    await expect(storage.readModels.active({ fence: fence(6) })).rejects.toThrow(FencedOut);
    // A deposed holder's rebuild cannot switch under the holder that claimed the pointer.
    expect(await storage.readModels.activate(next, active, fence(6))).toBe(false);
    expect((await storage.readModels.active({ fresh: true })).generation).toBe(active);
    expect(await storage.readModels.activate(next, active, fence(7))).toBe(true);
  });

  it('never drops the active generation, even one marked for a drop', async () => {
    const active = (await storage.readModels.active({ fresh: true })).generation;
    await expect(storage.readModels.dropGeneration(active)).rejects.toThrow(/active/);
    const docs = storage.readModels.view(active).collection<Counter>('kept');
    await docs.put({ _id: 'k1', n: 1 });
    // Marked due (by a drop that raced a switch back to it), then an instance starts:
    // its start-up drops what is due, except the active generation.
    await client
      .db(dbName)
      .collection<{ _id: string; dropAfter?: Date }>('readmodel_generations')
      .updateOne({ _id: active }, { $set: { dropAfter: new Date(0) } });
    const restarted = await createMongoProjectorStorage({ client, dbName });
    try {
      expect(await restarted.readModels.view(active).collection<Counter>('kept').get('k1')).toEqual(
        { _id: 'k1', n: 1 },
      );
    } finally {
      await restarted.close();
    }
  });
});

describe('change log guards on the simulator', () => {
  let dbName: string;
  let storage: ProjectorStorage;
  beforeAll(async () => {
    dbName = freshDbName();
    storage = await createMongoProjectorStorage({ client, dbName });
  });
  afterAll(async () => {
    await storage.close();
  });

  const entry = (cursor: number) => ({
    cursor,
    commitId: `c${cursor}`,
    scopes: ['board-1'],
    operation: null,
    actor: null,
    at: new Date('2026-01-01T00:00:00Z'),
    invalidated: [],
  });

  it('refuses to record a cursor past the head + 1 (no gap is ever written)', async () => {
    for (const cursor of [1, 2, 3]) await storage.changeLog.record(entry(cursor));
    await expect(storage.changeLog.record(entry(5))).rejects.toThrow(/gap/);
    expect(await storage.changeLog.head()).toBe(3);
  });

  it('answers expired, never a gap, for a read whose first entries are gone', async () => {
    for (const cursor of [4, 5, 6]) await storage.changeLog.record(entry(cursor));
    // Trimmed by an instance configured with a smaller retention.
    await client
      .db(dbName)
      .collection<{ _id: number }>('changelog')
      .deleteMany({ _id: { $lte: 2 } });
    expect(await storage.changeLog.read(0)).toMatchObject({ kind: 'expired', oldest: 3 });
    const read = await storage.changeLog.read(2);
    expect(read.kind === 'entries' && read.entries.map((e) => e.cursor)).toEqual([3, 4, 5, 6]);
  });
});

describe('event store guards on the simulator', () => {
  let db: Db;
  let store: MongoEventStore;
  beforeAll(async () => {
    const dbName = freshDbName();
    db = client.db(dbName);
    store = await MongoEventStore.create({ client, dbName, feed: { maxAwaitTimeMS: 100 } });
  });
  afterAll(async () => {
    await store.close();
  });

  it('reads the log only up to the first position not there yet', async () => {
    const first = await store.append({
      streams: [{ stream: 'a', expected: 'NO_STREAM', events: [{ type: 'T', data: {} }] }],
    });
    // The next position is reserved by an append still in flight; the one after it has
    // already committed.
    const commits = db.collection<CommitDoc>('commits');
    await commits.insertOne(rawCommit(first.position + 2, 'b', 1));
    const read = await store.readAll({ after: 0 });
    expect(read.map((c) => c.position)).toEqual([first.position]);
    // Once the missing position commits, both are read, in order.
    await commits.insertOne(rawCommit(first.position + 1, 'c', 1));
    expect((await store.readAll({ after: 0 })).map((c) => c.position)).toEqual([
      first.position,
      first.position + 1,
      first.position + 2,
    ]);
    // And never more than the limit asked for.
    expect((await store.readAll({ after: 0, limit: 2 })).map((c) => c.position)).toEqual([
      first.position,
      first.position + 1,
    ]);
  });

  it('feeds nothing a failover could still roll back: a commit shows once a majority has it', async () => {
    const commits = db.collection<CommitDoc>('commits');
    const head = await store.headPosition();
    sim.pauseReplication();
    try {
      // On the primary only (w: 1), not yet majority-committed.
      await commits.insertOne(rawCommit(head + 1, 'd', 1), { writeConcern: { w: 1 } });
      const getMoresBefore = sim.commandCounts.get('getMore') ?? 0;
      const feed = store.subscribe({ from: { position: head } });
      const items: FeedItem[] = [];
      const consumed = (async () => {
        for await (const item of feed) {
          items.push(item);
          if (item.kind === 'commit') return;
        }
      })();
      // The feed has read the collection (catch-up) and gone on to wait on its change
      // stream: anything it read was handed over before it asked for more.
      while ((sim.commandCounts.get('getMore') ?? 0) < getMoresBefore + 2) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(items.filter((i) => i.kind === 'commit')).toEqual([]);
      sim.resumeReplication();
      await consumed;
      expect(items.filter((i) => i.kind === 'commit').map((i) => i.checkpoint.position)).toEqual([
        head + 1,
      ]);
      await feed.close();
    } finally {
      sim.resumeReplication();
    }
  });
});

describe('event store condition guard on the simulator', () => {
  it('stops a commit to a stream asserted by another transaction that is still open, though that one writes no event there', async () => {
    const dbName = freshDbName();
    // Two instances, each with a client of its own: A asserts `s`, B appends to it.
    const clientA = await new MongoClient(sim.uri, { appName: 'asserting' }).connect();
    const clientB = await new MongoClient(sim.uri, { monitorCommands: true }).connect();
    const storeA = await MongoEventStore.create({ client: clientA, dbName });
    const storeB = await MongoEventStore.create({ client: clientB, dbName });
    try {
      const event = { type: 'T', data: {} };
      await storeB.append({ streams: [{ stream: 's', expected: 'NO_STREAM', events: [event] }] });
      // A's transaction has written its heads (its condition on `s` included) and is held
      // before its commit document.
      let release!: () => void;
      const held = sim.hold(
        (c) =>
          c.appName === 'asserting' &&
          c.inTransaction &&
          c.name === 'insert' &&
          c.body.insert === 'commits',
        new Promise<void>((resolve) => (release = resolve)),
      );
      const asserting = storeA.append({
        streams: [
          { stream: 'x', expected: 'NO_STREAM', events: [event] },
          { stream: 's', expected: 1, events: [] },
        ],
      });
      await held;
      const conflicted = new Promise<'conflicted'>((resolve) =>
        clientB.on('commandFailed', (failed) => {
          if ((failed.failure as { code?: number }).code === 112) resolve('conflicted');
        }),
      );
      const writing = storeB.append({
        streams: [{ stream: 's', expected: 1, events: [event] }],
      });
      // Either B's write to `s` meets A's open transaction (a write conflict), or it commits
      // although A, which asserts `s` at version 1, is about to commit.
      const first = await Promise.race([writing.then(() => 'committed' as const), conflicted]);
      release();
      expect(first).toBe('conflicted');
      await asserting;
      // B's append retried after A committed and then went ahead: `s` is at 2.
      expect((await writing).streams).toEqual([{ stream: 's', version: 2 }]);
      expect(await storeA.streamVersion('s')).toBe(2);
    } finally {
      await storeA.close();
      await storeB.close();
      await clientA.close();
      await clientB.close();
    }
  });
});

describe('the event store schema on the simulator', () => {
  it('creates every collection, index and the position counter, from two instances at once, and again without resetting the counter', async () => {
    const dbName = `schema_${++dbCount}`;
    const open = () => MongoEventStore.create({ client, dbName });
    // Two instances starting together: one of them meets NamespaceExists (48) and goes on.
    const [first, second] = await Promise.all([open(), open()]);
    await first.close();
    await second.close();
    const db = client.db(dbName);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    for (const name of Object.values(CollectionName)) expect(names).toContain(name);
    const indexes = async (name: string) =>
      (await db.collection(name).indexes()).map(({ key, name, unique, expireAfterSeconds }) => ({
        key,
        name,
        ...(unique === undefined ? {} : { unique }),
        ...(expireAfterSeconds === undefined ? {} : { expireAfterSeconds }),
      }));
    expect(await indexes(CollectionName.Commits)).toEqual(
      expect.arrayContaining([
        {
          key: { 'events.stream': 1, 'events.version': 1 },
          name: IndexName.CommitsEventsStreamVersion,
        },
        { key: { position: 1 }, name: IndexName.CommitsPosition, unique: true },
      ]),
    );
    expect(await indexes(CollectionName.Idempotency)).toContainEqual({
      key: { expiresAt: 1 },
      name: IndexName.IdempotencyExpiry,
      expireAfterSeconds: 0,
    });
    expect(await indexes(CollectionName.Reservations)).toContainEqual({
      key: { expiresAt: 1 },
      name: IndexName.ReservationsExpiry,
      expireAfterSeconds: 0,
    });
    const counter = () =>
      db.collection<{ _id: string; value: number }>(CollectionName.Counters).findOne({
        _id: POSITION_COUNTER_ID,
      });
    expect(await counter()).toEqual({ _id: POSITION_COUNTER_ID, value: 0 });
    await db
      .collection<{ _id: string; value: number }>(CollectionName.Counters)
      .updateOne({ _id: POSITION_COUNTER_ID }, { $set: { value: 7 } });
    await (await open()).close();
    expect(await counter()).toEqual({ _id: POSITION_COUNTER_ID, value: 7 });
  });
});
