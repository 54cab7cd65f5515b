/**
 * The commit feed closing a hole on the simulator, where positions are real documents in
 * `commits` and the archive: what it closes, and what it must leave alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MongoClient } from 'mongodb';
import { type Db } from 'mongodb';
import {
  CollectionName,
  POSITION_COUNTER_ID,
  type CommitDoc,
  type CounterDoc,
} from '../../src/eventstore/mongo/documents.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { NO_STREAM, type FeedItem } from '../../src/eventstore/types.js';
import type { MongoSim } from './MongoSim.js';
import { startSimAndClient, stopSimAndClient } from './simClient.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;

beforeAll(async () => ({ sim, client } = await startSimAndClient()));
afterAll(() => stopSimAndClient({ sim, client }));

const append = (store: MongoEventStore, stream: string) =>
  store.append({ streams: [{ stream, expected: NO_STREAM, events: [{ type: 'T', data: {} }] }] });

/** Reserves the next position as an appender that then dies would: nothing is ever written at it. */
async function reserveAndDie(db: Db): Promise<number> {
  const counter = await db
    .collection<CounterDoc>(CollectionName.Counters)
    .findOneAndUpdate(
      { _id: POSITION_COUNTER_ID },
      { $inc: { value: 1 } },
      { returnDocument: 'after' },
    );
  return counter!.value;
}

/** Feed items after `from` until one at `until` (inclusive). */
async function itemsUntil(
  store: MongoEventStore,
  from: number,
  until: number,
): Promise<FeedItem[]> {
  const feed = store.subscribe({ from: { position: from } });
  const items: FeedItem[] = [];
  for await (const item of feed) {
    if (item.kind === 'heartbeat') continue;
    items.push(item);
    if (item.checkpoint.position >= until) break;
  }
  return items;
}

describe('the commit feed closing a hole, on the simulator', () => {
  let db: Db;
  let store: MongoEventStore;
  beforeAll(async () => {
    const dbName = `feed_holes_${++dbCount}`;
    db = client.db(dbName);
    store = await MongoEventStore.create({
      client,
      dbName,
      feed: { maxAwaitTimeMS: 50, gapGraceMs: 300 },
    });
  });
  afterAll(async () => {
    await store.close();
  });

  it('closes only the missing position, never one whose commit was archived meanwhile', async () => {
    const first = await append(store, 'before-hole');
    const hole = await reserveAndDie(db);
    const after = await append(store, 'archived-later');
    expect([hole, after.position]).toEqual([first.position + 1, first.position + 2]);
    // The commit after the hole moves to the archive before the feed gets to it.
    await store.archiveStreams(['archived-later']);

    const items = await itemsUntil(store, first.position, after.position);
    expect(items.map((i) => [i.kind, i.checkpoint.position])).toEqual([
      ['gap', hole],
      ['commit', after.position],
    ]);
    // The hole got a tombstone; the archived commit's position got nothing in `commits`
    // (a tombstone there would hold the position its commit comes back to).
    const hot = await db
      .collection<CommitDoc>(CollectionName.Commits)
      .find({ position: { $gt: first.position } })
      .toArray();
    expect(hot.map((d) => [d.position, d.gap ?? false])).toEqual([[hole, true]]);
    await store.restoreStreams(['archived-later']);
    expect((await store.readAll({ after: first.position })).map((c) => c.position)).toEqual([
      after.position,
    ]);
    expect(await store.readStream('archived-later')).toHaveLength(1);
  });
});
