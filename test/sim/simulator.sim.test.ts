/**
 * The simulator's own semantics, through the real driver: what the adapters' tests on it
 * rely on. Each behaviour is the one the MongoDB manual describes (cited per test).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoClient, MongoServerError, type ChangeStream, type Document } from 'mongodb';
import { MongoSim, SIM_COMMANDS } from './MongoSim.js';

/** A document with a string `_id` (the driver's default schema types `_id` as ObjectId). */
type Loose = Document & { _id: string };

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;
const freshDb = () => client.db(`sim_test_${++dbCount}`);

beforeAll(async () => {
  sim = await MongoSim.start({ transactionLifetimeLimitMs: 1_500 });
  client = await new MongoClient(sim.uri, { serverSelectionTimeoutMS: 10_000 }).connect();
});

afterAll(async () => {
  await client.close();
  await sim.close();
});

async function serverError(promise: Promise<unknown>): Promise<MongoServerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MongoServerError);
  return error as MongoServerError;
}

describe('MongoDB simulator', () => {
  it('lists every command the adapters send, each with the options it honours', () => {
    expect(Object.keys(SIM_COMMANDS)).toEqual(
      expect.arrayContaining([
        'insert',
        'update',
        'delete',
        'findAndModify',
        'find',
        'aggregate',
        'getMore',
        'createIndexes',
        'drop',
        'commitTransaction',
        'abortTransaction',
      ]),
    );
  });

  it('refuses a duplicate on a unique index (compound and multikey too) with E11000 and its key', async () => {
    const db = freshDb();
    const c = db.collection<Loose>('c');
    await c.createIndex({ position: 1 }, { unique: true, name: 'position_1_unique' });
    await c.createIndex({ 'tags.a': 1, 'tags.b': 1 }, { unique: true, name: 'tags' });
    await c.insertOne({ _id: 'a', position: 1, tags: [{ a: 1, b: 1 }] });
    const dup = await serverError(c.insertOne({ _id: 'b', position: 1 }));
    expect(dup.code).toBe(11000);
    expect(dup.message).toContain('index: position_1_unique');
    expect((dup as unknown as { keyPattern: Document }).keyPattern).toEqual({ position: 1 });
    const multikey = await serverError(
      c.insertOne({
        _id: 'c',
        position: 2,
        tags: [
          { a: 9, b: 9 },
          { a: 1, b: 1 },
        ],
      }),
    );
    expect(multikey.code).toBe(11000);
    expect(await c.countDocuments()).toBe(1);
  });

  it('evaluates operators, pipeline updates with $$NOW, upserts and their duplicate key', async () => {
    const c = freshDb().collection<Loose>('c');
    await c.updateOne(
      { _id: 'x' },
      { $setOnInsert: { n: 0 }, $inc: { hits: 1 } },
      { upsert: true },
    );
    await c.updateOne(
      { _id: 'x' },
      { $setOnInsert: { n: 5 }, $inc: { hits: 1 } },
      { upsert: true },
    );
    expect(await c.findOne({ _id: 'x' })).toEqual({ _id: 'x', n: 0, hits: 2 });
    const before = Date.now();
    await c.updateOne({ _id: 'x' }, [
      { $set: { at: '$$NOW', twice: { $multiply: ['$hits', 2] } } },
    ]);
    const doc = await c.findOne({ _id: 'x' });
    expect(doc?.twice).toBe(4);
    expect((doc?.at as Date).getTime()).toBeGreaterThanOrEqual(before - 1_000);
    // An upsert whose filter refuses the existing document collides on _id (manual, "Upsert
    // with Duplicate Values": not retried, the filter is more than equality).
    const dup = await serverError(
      c.updateOne(
        { _id: 'x', $expr: { $gt: ['$hits', 10] } },
        { $set: { y: 1 } },
        { upsert: true },
      ),
    );
    expect(dup.code).toBe(11000);
  });

  it('gives a transaction its snapshot, and WriteConflict (transient) when it writes what changed since', async () => {
    const c = freshDb().collection<Loose>('c');
    await c.insertOne({ _id: 'a', v: 1 });
    const session = client.startSession();
    try {
      session.startTransaction({
        readConcern: { level: 'snapshot' },
        writeConcern: { w: 'majority' },
      });
      expect(await c.findOne({ _id: 'a' }, { session })).toEqual({ _id: 'a', v: 1 });
      await c.updateOne({ _id: 'a' }, { $set: { v: 2 } });
      expect(await c.findOne({ _id: 'a' }, { session })).toEqual({ _id: 'a', v: 1 });
      const conflict = await serverError(
        c.updateOne({ _id: 'a' }, { $set: { v: 3 } }, { session }),
      );
      expect(conflict.code).toBe(112);
      expect(conflict.hasErrorLabel('TransientTransactionError')).toBe(true);
      await session.abortTransaction().catch(() => undefined);
    } finally {
      await session.endSession();
    }
    expect(await c.findOne({ _id: 'a' })).toEqual({ _id: 'a', v: 2 });
  });

  it('lets the first of two transactions writing one document win; the second gets WriteConflict', async () => {
    const c = freshDb().collection<Loose>('c');
    await c.insertOne({ _id: 'a', v: 0 });
    const first = client.startSession();
    const second = client.startSession();
    try {
      first.startTransaction();
      second.startTransaction();
      await c.updateOne({ _id: 'a' }, { $set: { v: 1 } }, { session: first });
      const conflict = await serverError(
        c.updateOne({ _id: 'a' }, { $set: { v: 2 } }, { session: second }),
      );
      expect(conflict.code).toBe(112);
      await second.abortTransaction().catch(() => undefined);
      await first.commitTransaction();
    } finally {
      await first.endSession();
      await second.endSession();
    }
    expect(await c.findOne({ _id: 'a' })).toEqual({ _id: 'a', v: 1 });
  });

  it('makes a write outside a transaction wait for the transaction holding its key, bounded by maxTimeMS', async () => {
    const c = freshDb().collection<Loose>('c');
    await c.createIndex({ position: 1 }, { unique: true });
    const session = client.startSession();
    try {
      session.startTransaction();
      await c.insertOne({ _id: 'commit', position: 7 }, { session });
      const timedOut = await serverError(
        c.insertOne({ _id: 'gap', position: 7 }, { maxTimeMS: 200 }),
      );
      expect(timedOut.code).toBe(50);
      const waiting = c.insertOne({ _id: 'gap', position: 7 }, { maxTimeMS: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await session.commitTransaction();
      // The transaction took the position: the waiting insert is now a duplicate.
      expect((await serverError(waiting)).code).toBe(11000);
    } finally {
      await session.endSession();
    }
  });

  it('aborts a transaction past transactionLifetimeLimitSeconds: NoSuchTransaction, and its keys are free', async () => {
    const c = freshDb().collection<{ _id: string }>('c');
    const session = client.startSession();
    try {
      session.startTransaction();
      await c.insertOne({ _id: 'held' }, { session });
      // Blocks until the lifetime limit (1.5 s here) aborts the transaction.
      await c.insertOne({ _id: 'held' }, { maxTimeMS: 10_000 });
      const gone = await serverError(session.commitTransaction());
      expect(gone.code).toBe(251);
      expect(gone.hasErrorLabel('TransientTransactionError')).toBe(true);
    } finally {
      await session.endSession();
    }
    expect(await c.countDocuments()).toBe(1);
  });

  it("keeps a dead client's transaction open, holding its keys, until killSessions", async () => {
    const db = freshDb();
    const doomed = await new MongoClient(sim.uri, { appName: 'doomed' }).connect();
    const session = doomed.startSession();
    session.startTransaction();
    await doomed
      .db(db.databaseName)
      .collection<{ _id: string }>('c')
      .insertOne({ _id: 'k' }, { session });
    sim.killClient('doomed');
    const blocked = await serverError(
      db.collection<{ _id: string }>('c').insertOne({ _id: 'k' }, { maxTimeMS: 300 }),
    );
    expect(blocked.code).toBe(50);
    await client.db('admin').command({ killSessions: [session.id] });
    await db.collection<{ _id: string }>('c').insertOne({ _id: 'k' }, { maxTimeMS: 5_000 });
    await doomed.close().catch(() => undefined);
  });

  it('reads majority-committed data only at majority; a failover rolls back w:1 writes past the commit point', async () => {
    const c = freshDb().collection<{ _id: string }>('c');
    await c.insertOne({ _id: 'kept' }, { writeConcern: { w: 'majority' } });
    sim.pauseReplication();
    try {
      await c.insertOne({ _id: 'w1' }, { writeConcern: { w: 1 } });
      expect(await c.countDocuments({})).toBe(2);
      const majority = c.find({}, { readConcern: { level: 'majority' } });
      expect(await majority.toArray()).toEqual([{ _id: 'kept' }]);
      const slow = await c
        .insertOne({ _id: 'wtimeout' }, { writeConcern: { w: 'majority', wtimeoutMS: 200 } })
        .then(
          () => undefined,
          (e: unknown) => e as MongoServerError,
        );
      expect(slow?.code).toBe(64);
    } finally {
      await sim.stepDown();
      sim.resumeReplication();
    }
    // The new primary never had them: both writes after the commit point are gone.
    expect(await c.find({}).toArray()).toEqual([{ _id: 'kept' }]);
  });

  it('streams majority-committed changes with resume tokens; an old token fails with 286; a drop invalidates', async () => {
    const db = freshDb();
    const c = db.collection<{ _id: number }>('c');
    await db.createCollection('c');
    const stream: ChangeStream = c.watch([{ $match: { operationType: 'insert' } }]);
    expect(await stream.tryNext()).toBeNull();
    await c.insertOne({ _id: 1 });
    await c.insertOne({ _id: 2 });
    const first = await next(stream);
    expect(first.documentKey).toEqual({ _id: 1 });
    await stream.close();

    const resumed = c.watch([], { startAfter: first._id });
    expect((await next(resumed)).documentKey).toEqual({ _id: 2 });
    await resumed.close();

    sim.truncateOplog();
    const lost = c.watch([], { startAfter: first._id });
    const error = await serverError(lost.tryNext());
    expect(error.code).toBe(286);
    await lost.close();

    const watching = c.watch();
    expect(await watching.tryNext()).toBeNull();
    await c.drop();
    const events: string[] = [];
    for (let i = 0; i < 2; i += 1) events.push(String((await next(watching)).operationType));
    expect(events).toEqual(['drop', 'invalidate']);
    await watching.close();
  });

  it('answers a command it does not model with CommandNotFound, and records it', async () => {
    const error = await serverError(freshDb().command({ collMod: 'c' }));
    expect(error.code).toBe(59);
    expect(sim.unsupported).toContain('collMod');
  });
});

async function next(stream: ChangeStream): Promise<Document> {
  for (let i = 0; i < 50; i += 1) {
    const change = await stream.tryNext();
    if (change) return change;
  }
  throw new Error('no change arrived');
}
