import { setImmediate as nextTurn } from 'node:timers/promises';
import { BSON, type Document, type MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { VersionConflict } from '../../src/eventstore/errors.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import {
  WRITE_BSON_OPTIONS,
  fromCommitDoc,
  type CommitDoc,
} from '../../src/eventstore/mongo/documents.js';
import { ANY, NO_STREAM } from '../../src/eventstore/types.js';

/**
 * Just enough of a client for `append` without an idempotency key: one head per stream,
 * the counter, and a record of every insert and its options. Each call yields to the event
 * loop first, so concurrent appends would interleave as they do against a server.
 */
function fakeClient() {
  const heads = new Map<string, number>();
  let counter = 0;
  let inTransaction = 0;
  const seen = {
    maxConcurrentTransactions: 0,
    inserts: [] as { docs: Document[]; options: Document }[],
  };
  const collection = (name: string) => ({
    find: (filter: { _id: { $in: string[] } }) => ({
      toArray: async () => {
        await nextTurn();
        return filter._id.$in.flatMap((id) => {
          const version = heads.get(id);
          return version === undefined ? [] : [{ _id: id, version }];
        });
      },
    }),
    findOneAndUpdate: async () => {
      await nextTurn();
      return { _id: 'position', value: ++counter };
    },
    bulkWrite: async (ops: Document[]) => {
      await nextTurn();
      let matchedCount = 0;
      for (const op of ops) {
        if (op.insertOne) heads.set(op.insertOne.document._id, op.insertOne.document.version);
        else if (heads.get(op.updateOne.filter._id) === op.updateOne.filter.version) {
          heads.set(op.updateOne.filter._id, op.updateOne.update.$set.version);
          matchedCount++;
        }
      }
      return { matchedCount };
    },
    insertMany: async (docs: Document[], options: Document) => {
      await nextTurn();
      if (name === 'streams') {
        for (const d of docs) {
          if (heads.has(d._id)) throw Object.assign(new Error('E11000'), { code: 11000 });
          heads.set(d._id, d.version);
        }
        return;
      }
      seen.inserts.push({ docs: [...docs], options: { ...options, session: undefined } });
    },
    insertOne: async (doc: Document, options: Document) => {
      await nextTurn();
      seen.inserts.push({ docs: [doc], options: { ...options, session: undefined, name } });
    },
  });
  const session = {
    startTransaction() {
      inTransaction++;
      seen.maxConcurrentTransactions = Math.max(seen.maxConcurrentTransactions, inTransaction);
    },
    async commitTransaction() {
      await nextTurn();
      inTransaction--;
    },
    async abortTransaction() {
      inTransaction--;
    },
    async endSession() {},
  };
  const client = {
    db: () => ({ collection }),
    startSession: () => session,
  } as unknown as MongoClient;
  return { client, seen };
}

describe('MongoEventStore.append (driver faked)', () => {
  it("runs one instance's transactions on distinct streams at the same time", async () => {
    const { client, seen } = fakeClient();
    const store = new MongoEventStore({ client, dbName: 'test' });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.append({
          streams: [{ stream: `s-${i}`, expected: ANY, events: [{ type: 'E', data: {} }] }],
        }),
      ),
    );
    expect(seen.maxConcurrentTransactions).toBeGreaterThan(1);
    expect(results.map((r) => r.position).sort((a, b) => a - b)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
  });

  it('lets an append run while another one on its stream fails', async () => {
    const { client } = fakeClient();
    const store = new MongoEventStore({ client, dbName: 'test' });
    const append = (expected: number | typeof NO_STREAM) =>
      store.append({ streams: [{ stream: 's', expected, events: [{ type: 'E', data: {} }] }] });
    const [stale, fresh] = await Promise.allSettled([append(5), append(NO_STREAM)]);
    expect(stale.status === 'rejected' && stale.reason).toBeInstanceOf(VersionConflict);
    expect(fresh).toMatchObject({
      status: 'fulfilled',
      value: { streams: [{ stream: 's', version: 1 }] },
    });
  });

  it('writes events and commits leaving undefined fields out rather than storing null', async () => {
    const { client, seen } = fakeClient();
    const store = new MongoEventStore({ client, dbName: 'test' });
    await store.append({
      streams: [
        { stream: 's', expected: ANY, events: [{ type: 'E', data: { a: 1, b: undefined } }] },
      ],
      metadata: { operation: 'op', note: undefined },
    });
    // One write of event data: the commit document (events are stored once, in it).
    expect(seen.inserts).toHaveLength(1);
    for (const { options } of seen.inserts) expect(options).toMatchObject(WRITE_BSON_OPTIONS);

    const commit = seen.inserts[0]!.docs[0] as CommitDoc;
    const stored = BSON.deserialize(BSON.serialize(commit, WRITE_BSON_OPTIONS)) as CommitDoc;
    const read = fromCommitDoc(stored);
    expect(read.events[0]!.data).toStrictEqual({ a: 1 });
    expect(read.metadata).toStrictEqual({ operation: 'op' });
    // What the driver's default would have stored instead: it resolves `ignoreUndefined` to
    // false when no option sets it (driver `resolveBSONOptions`; js-bson's own default differs).
    const byDefault = BSON.deserialize(
      BSON.serialize(commit, { ignoreUndefined: false }),
    ) as CommitDoc;
    expect(byDefault.events[0]!.data).toStrictEqual({ a: 1, b: null });
  });
});
