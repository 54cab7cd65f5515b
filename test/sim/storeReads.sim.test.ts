/**
 * The mongo event store's reads on the simulator where commits live in two places
 * (`commits` and the archive), and what closing a store ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MongoClient } from 'mongodb';
import { type Db } from 'mongodb';
import { EventStoreUnavailable, VersionConflict } from '../../src/eventstore/errors.js';
import {
  CollectionName,
  type CommitDoc,
  type StreamHeadDoc,
} from '../../src/eventstore/mongo/documents.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { fingerprintOf } from '../../src/eventstore/idempotency.js';
import { ANY, type AppendRequest, type FeedItem } from '../../src/eventstore/types.js';
import type { MongoSim } from './MongoSim.js';
import { startSimAndClient, stopSimAndClient } from './simClient.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;

beforeAll(
  async () => ({ sim, client } = await startSimAndClient({ serverSelectionTimeoutMS: 10_000 })),
);
afterAll(() => stopSimAndClient({ sim, client }));

async function freshStore(): Promise<{ db: Db; store: MongoEventStore }> {
  const dbName = `store_reads_${++dbCount}`;
  const store = await MongoEventStore.create({ client, dbName, feed: { maxAwaitTimeMS: 100 } });
  return { db: client.db(dbName), store };
}

const appendTo = (store: MongoEventStore, stream: string, n: number) =>
  store.append({
    streams: [{ stream, expected: ANY, events: [{ type: 'E', data: { n } }] }],
  });

describe('event store reads across commits and the archive, on the simulator', () => {
  it('reads a stream whose first commits were archived, forward and backward, in version order', async () => {
    const { store } = await freshStore();
    for (const n of [1, 2, 3]) await appendTo(store, 's', n);
    await appendTo(store, 'other', 0);
    expect(await store.archiveStreams(['s'])).toEqual({ commits: 3 });
    for (const n of [4, 5]) await appendTo(store, 's', n);

    const versions = (events: { version: number }[]) => events.map((e) => e.version);
    expect(versions(await store.readStream('s'))).toEqual([1, 2, 3, 4, 5]);
    expect(versions(await store.readStream('s', { fromVersion: 2 }))).toEqual([2, 3, 4, 5]);
    expect(versions(await store.readStreamBackward('s', { limit: 10 }))).toEqual([5, 4, 3, 2, 1]);
    expect(versions(await store.readStreamBackward('s', { limit: 1 }))).toEqual([5]);
    // A page wholly in the archive, and one across both places.
    expect(versions(await store.readStreamBackward('s', { before: 3, limit: 2 }))).toEqual([2, 1]);
    expect(versions(await store.readStreamBackward('s', { before: 5, limit: 2 }))).toEqual([4, 3]);
    expect(await store.readStreamBackward('s', { before: 1, limit: 2 })).toEqual([]);
  });

  it("reads only the stream's own events in the range asked, from commits shared with another stream", async () => {
    const { store } = await freshStore();
    const events = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'E', data: { i } }));
    await store.append({
      streams: [
        { stream: 'a', expected: 'NO_STREAM', events: events(3) },
        { stream: 'b', expected: 'NO_STREAM', events: events(1) },
      ],
    });
    await appendTo(store, 'a', 4);
    const read = (events: { stream: string; version: number }[]) =>
      events.map((e) => `${e.stream}@${e.version}`);
    expect(read(await store.readStream('a'))).toEqual(['a@1', 'a@2', 'a@3', 'a@4']);
    expect(read(await store.readStream('a', { fromVersion: 2 }))).toEqual(['a@2', 'a@3', 'a@4']);
    expect(read(await store.readStream('b'))).toEqual(['b@1']);
    expect(read(await store.readStreamBackward('a', { before: 3, limit: 1 }))).toEqual(['a@2']);
    expect(read(await store.readStreamBackward('a', { before: 4, limit: 2 }))).toEqual([
      'a@3',
      'a@2',
    ]);
  });

  it('answers the highest position whether it is in commits or in the archive', async () => {
    const { store } = await freshStore();
    for (const n of [1, 2, 3]) await appendTo(store, `a-${n}`, n);
    expect(await store.headPosition()).toBe(3);
    await appendTo(store, 'b', 4);
    await store.archiveStreams(['b']);
    expect(await store.headPosition()).toBe(4);
    await store.archiveStreams(['a-1', 'a-2', 'a-3']);
    expect(await store.headPosition()).toBe(4);
  });

  it("says a stream's events kept moving when its head stays ahead of every commit found", async () => {
    const { db, store } = await freshStore();
    await appendTo(store, 'ghost', 1);
    // The head claims a version no commit holds (as a move racing each read would show).
    await db
      .collection<StreamHeadDoc>(CollectionName.Streams)
      .updateOne({ _id: 'ghost' }, { $set: { version: 2 } });
    for (const [what, read] of [
      ['readStream', () => store.readStream('ghost')],
      ['readStreamBackward', () => store.readStreamBackward('ghost', { before: 3, limit: 2 })],
    ] as const) {
      const error: unknown = await read().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(error).toMatchObject({
        message: `${what} failed: the events of 'ghost' kept moving between the hot store and the archive`,
      });
    }
  });

  it('reads nothing for a readAll limit of 0', async () => {
    const { db, store } = await freshStore();
    await appendTo(store, 's', 1);
    expect(await store.readAll({ limit: 0 })).toEqual([]);
    expect(await store.readAll({ limit: -1 })).toEqual([]);
    expect((await store.readAll()).map((c) => c.position)).toEqual([1]);
    expect(await db.collection<CommitDoc>(CollectionName.Commits).countDocuments()).toBe(1);
  });
});

describe('closing a mongo event store on the simulator', () => {
  it('ends its open feeds, and closes its client only when it owns it', async () => {
    const { store } = await freshStore();
    await appendTo(store, 's', 1);
    const items: FeedItem[] = [];
    const iterated = (async () => {
      for await (const item of store.subscribe({ from: { position: 0 } })) items.push(item);
    })();
    await expect.poll(() => items.some((i) => i.kind === 'commit'), { timeout: 20_000 }).toBe(true);
    await store.close();
    await iterated;
    // A store handed its client leaves it open.
    expect(await client.db('admin').command({ ping: 1 })).toMatchObject({ ok: 1 });

    // One that opened its own closes it.
    const owned = await MongoEventStore.connect(sim.uri, {
      dbName: `store_reads_${++dbCount}`,
      clientOptions: { serverSelectionTimeoutMS: 10_000 },
    });
    await appendTo(owned, 's', 1);
    await owned.close();
    await expect(owned.readAll()).rejects.toThrow(/Client must be connected/);
  });

  it('ends at once a feed opened on a closed store', async () => {
    const { store } = await freshStore();
    await appendTo(store, 's', 1);
    await store.close();
    const items: FeedItem[] = [];
    for await (const item of store.subscribe({ from: { position: 0 } })) items.push(item);
    expect(items).toEqual([]);
  });
});

describe('appends on the simulator', () => {
  it("records the commit's actor, operation, key and each event's schema version, with their defaults", async () => {
    const { store } = await freshStore();
    await store.append({
      streams: [
        {
          stream: 's',
          expected: 'NO_STREAM',
          events: [
            { type: 'E', data: {}, schemaVersion: 2 },
            { type: 'E', data: {} },
          ],
        },
      ],
      metadata: { actor: 'alice', operation: 'renameCard' },
      idempotencyKey: 'key-1',
    });
    await appendTo(store, 't', 1);
    const [first, second] = await store.readAll();
    expect(first).toMatchObject({
      actor: 'alice',
      operation: 'renameCard',
      idempotencyKey: 'key-1',
    });
    expect(first?.events.map((e) => e.schemaVersion)).toEqual([2, 1]);
    expect(second).toMatchObject({ actor: null, operation: null, idempotencyKey: null });
  });

  it('answers a replay within the key lifetime with the first result, and appends again once it expired', async () => {
    const dbName = `store_reads_${++dbCount}`;
    let now = Date.parse('2026-01-01T00:00:00Z');
    const store = await MongoEventStore.create({
      client,
      dbName,
      idempotencyTtlMs: 60_000,
      now: () => new Date(now),
    });
    const request: AppendRequest = {
      streams: [{ stream: 's', expected: ANY, events: [{ type: 'E', data: {} }] }],
      idempotencyKey: 'key-1',
    };
    const first = await store.append(request);
    now += 30_000;
    expect(await store.idempotentResult('key-1', fingerprintOf(request))).toEqual(first);
    expect(await store.append(request)).toEqual(first);
    expect((await store.readAll()).map((c) => c.position)).toEqual([first.position]);
    now += 60_000;
    expect(await store.idempotentResult('key-1', fingerprintOf(request))).toBeUndefined();
    const again = await store.append(request);
    expect(again.commitId).not.toBe(first.commitId);
    expect((await store.readAll()).map((c) => c.commitId)).toEqual([
      first.commitId,
      again.commitId,
    ]);
    // The expired record was replaced: a replay now answers with the new result.
    expect(await store.append(request)).toEqual(again);
  });

  it('refuses STREAM_EXISTS on a stream that has no events yet, writing nothing', async () => {
    const { store } = await freshStore();
    await expect(
      store.append({
        streams: [
          { stream: 'missing', expected: 'STREAM_EXISTS', events: [{ type: 'E', data: {} }] },
        ],
      }),
    ).rejects.toBeInstanceOf(VersionConflict);
    expect(await store.readAll()).toEqual([]);
    expect(await store.streamVersion('missing')).toBe(0);
  });
});
