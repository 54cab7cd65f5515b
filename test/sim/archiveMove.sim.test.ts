/**
 * Moving streams to the archive on the simulator, with the mover cut off mid-move: every
 * commit stays in exactly one place (hot or archive), and moving again finishes the job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoClient } from 'mongodb';
import { EventStoreUnavailable } from '../../src/eventstore/errors.js';
import { ARCHIVE_MOVE_BATCH } from '../../src/eventstore/mongo/archive.js';
import { CollectionName } from '../../src/eventstore/mongo/documents.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { ANY } from '../../src/eventstore/types.js';
import { MongoSim } from './MongoSim.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;

beforeAll(async () => {
  // A dead client's open transaction is ended by the server after this long, as
  // transactionLifetimeLimitSeconds does (60 s on a server).
  sim = await MongoSim.start({ transactionLifetimeLimitMs: 1_500 });
  client = await new MongoClient(sim.uri).connect();
});

afterAll(async () => {
  await client.close();
  await sim.close();
});

/** Commits `old` (2.5 move batches of them, every fifth followed by one of `live`). */
async function seeded(): Promise<{ dbName: string; store: MongoEventStore }> {
  const dbName = `archive_move_${++dbCount}`;
  const store = await MongoEventStore.create({ client, dbName });
  const count = ARCHIVE_MOVE_BATCH * 2.5;
  for (let i = 1; i <= count; i += 1) {
    await store.append({
      streams: [{ stream: 'old', expected: ANY, events: [{ type: 'O', data: { i } }] }],
    });
    if (i % 5 === 0) {
      await store.append({
        streams: [{ stream: 'live', expected: ANY, events: [{ type: 'L', data: { i } }] }],
      });
    }
  }
  return { dbName, store };
}

/** Positions of the commits in `commits` and in the archive. */
async function placement(dbName: string): Promise<{ hot: number[]; archived: number[] }> {
  const positions = async (name: string) =>
    (
      await client
        .db(dbName)
        .collection<{ position: number }>(name)
        .find({}, { projection: { position: 1 } })
        .sort({ position: 1 })
        .toArray()
    ).map((d) => d.position);
  return {
    hot: await positions(CollectionName.Commits),
    archived: await positions(CollectionName.ArchiveCommits),
  };
}

describe('moving streams to the archive when the mover is cut off', () => {
  it('leaves every commit in exactly one place when the mover dies mid-batch; moving again finishes', async () => {
    const { dbName, store } = await seeded();
    const before = await store.readAll({ limit: 10_000 });
    const oldPositions = before
      .filter((c) => c.events.some((e) => e.stream === 'old'))
      .map((c) => c.position);
    const livePositions = before
      .filter((c) => c.events.some((e) => e.stream === 'live'))
      .map((c) => c.position);

    const mover = await MongoEventStore.connect(sim.uri, {
      dbName,
      clientOptions: { appName: 'mover', serverSelectionTimeoutMS: 1_000 },
    });
    // The mover dies as it is about to delete the second batch from `commits`: its copy of
    // that batch into the archive is written (in its transaction, if it has one).
    let deletes = 0;
    sim.fault({
      action: 'killClient',
      match: (c) =>
        c.appName === 'mover' &&
        c.name === 'delete' &&
        c.body.delete === CollectionName.Commits &&
        ++deletes === 2,
    });
    await expect(mover.archiveStreams(['old'])).rejects.toBeInstanceOf(EventStoreUnavailable);
    await mover.close().catch(() => undefined);

    const cut = await placement(dbName);
    expect(cut.hot.filter((p) => cut.archived.includes(p))).toEqual([]);
    expect([...cut.hot, ...cut.archived].sort((a, b) => a - b)).toEqual(
      before.map((c) => c.position),
    );
    expect(cut.archived).toEqual(oldPositions.slice(0, ARCHIVE_MOVE_BATCH));
    // Reads in the middle of the move answer as before.
    expect(await store.readAll({ limit: 10_000 })).toEqual(before);

    // Moving again (once the server has ended the dead mover's transaction) moves the rest.
    expect(await store.archiveStreams(['old'])).toEqual({
      commits: oldPositions.length - ARCHIVE_MOVE_BATCH,
    });
    expect(await placement(dbName)).toEqual({ hot: livePositions, archived: oldPositions });
    expect(await store.readAll({ limit: 10_000 })).toEqual(before);
    expect((await store.readStream('old')).map((e) => e.data.i)).toEqual(
      oldPositions.map((_, i) => i + 1),
    );
    await store.close();
  });

  it('moves each commit once when the reply of a commit is lost and the driver sends it again', async () => {
    const { dbName, store } = await seeded();
    const before = await store.readAll({ limit: 10_000 });
    const mover = await MongoEventStore.connect(sim.uri, {
      dbName,
      clientOptions: { appName: 'mover-2' },
    });
    sim.fault({
      action: 'hangUpAfter',
      match: (c) => c.appName === 'mover-2' && c.name === 'commitTransaction',
    });
    const oldCount = before.filter((c) => c.events.some((e) => e.stream === 'old')).length;
    expect(await mover.archiveStreams(['old'])).toEqual({ commits: oldCount });
    const { hot, archived } = await placement(dbName);
    expect(archived).toHaveLength(oldCount);
    expect(hot.filter((p) => archived.includes(p))).toEqual([]);
    expect(await mover.restoreStreams(['old'])).toEqual({ commits: oldCount });
    expect(await placement(dbName)).toEqual({
      hot: before.map((c) => c.position),
      archived: [],
    });
    expect(await store.readAll({ limit: 10_000 })).toEqual(before);
    await mover.close();
    await store.close();
  });
});
