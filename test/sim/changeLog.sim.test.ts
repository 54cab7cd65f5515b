/**
 * The mongo change log on the simulator: batches recorded by two instances, trimming to the
 * retention, and scoped and limited reads, checked against what `changelog` holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoClient } from 'mongodb';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import { SCOPE_INDEX } from '../../src/projector/mongo/MongoChangeLog.js';
import { ProjectorCollection } from '../../src/projector/mongo/documents.js';
import type { ChangeLogEntry, ChangeLogRead, ProjectorStorage } from '../../src/projector/types.js';
import { MongoSim } from './MongoSim.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;

beforeAll(async () => {
  sim = await MongoSim.start();
  client = await new MongoClient(sim.uri).connect();
});

afterAll(async () => {
  await client.close();
  await sim.close();
});

const entry = (cursor: number, scope = 'board-1'): ChangeLogEntry => ({
  cursor,
  commitId: `c${cursor}`,
  scopes: [scope],
  operation: null,
  actor: null,
  at: new Date('2026-01-01T00:00:00Z'),
  invalidated: [],
});

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

const cursors = (read: ChangeLogRead) =>
  read.kind === 'entries' ? read.entries.map((e) => e.cursor) : read;

describe('the mongo change log on the simulator', () => {
  const opened: ProjectorStorage[] = [];
  const open = async (
    dbName: string,
    options: { changeLogRetention?: number; changeLogTrimEvery?: number } = {},
  ) => {
    const storage = await createMongoProjectorStorage({ client, dbName, ...options });
    opened.push(storage);
    return storage;
  };
  /** The cursors `changelog` holds, whatever the read window says. */
  const stored = async (dbName: string) =>
    (
      await client
        .db(dbName)
        .collection<{ _id: number }>(ProjectorCollection.ChangeLog)
        .find({}, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .toArray()
    ).map((d) => d._id);
  afterAll(async () => {
    for (const storage of opened) await storage.close();
  });

  it('records the rest of a batch another instance recorded part of, each cursor once', async () => {
    const dbName = `changelog_${++dbCount}`;
    const first = await open(dbName);
    const second = await open(dbName);
    await first.changeLog.recordMany(range(1, 3).map((c) => entry(c)));
    // A deposed projector records the same batch and more: only 4 and 5 are new.
    await second.changeLog.recordMany(range(1, 5).map((c) => entry(c, 'board-2')));
    expect(await stored(dbName)).toEqual(range(1, 5));
    const read = await first.changeLog.read(0);
    expect(read.kind === 'entries' && read.entries.map((e) => [e.cursor, e.scopes[0]])).toEqual([
      [1, 'board-1'],
      [2, 'board-1'],
      [3, 'board-1'],
      [4, 'board-2'],
      [5, 'board-2'],
    ]);
    // A batch that would leave a gap after the head is refused whole, from any instance.
    const third = await open(dbName);
    await expect(third.changeLog.recordMany([entry(7), entry(8)])).rejects.toThrow(/gap/);
    await expect(second.changeLog.recordMany([entry(7), entry(8)])).rejects.toThrow(/gap/);
    expect(await stored(dbName)).toEqual(range(1, 5));
    // The first instance goes on from what is stored, overlapping its own batch too.
    await first.changeLog.recordMany(range(4, 7).map((c) => entry(c)));
    expect(await stored(dbName)).toEqual(range(1, 7));
    expect(await first.changeLog.head()).toBe(7);
  });

  it('trims to the newest `retention` cursors at the last trim point of each batch, and at each single one', async () => {
    const dbName = `changelog_${++dbCount}`;
    const { changeLog } = await open(dbName, { changeLogRetention: 5, changeLogTrimEvery: 4 });
    // Trim points 4 and 8 in one batch: trimmed once, at 8, to the 5 cursors up to it.
    await changeLog.recordMany(range(1, 10).map((c) => entry(c)));
    expect(await stored(dbName)).toEqual(range(4, 10));
    await changeLog.record(entry(11));
    expect(await stored(dbName)).toEqual(range(4, 11));
    await changeLog.record(entry(12));
    expect(await stored(dbName)).toEqual(range(8, 12));
    expect(await changeLog.read(6)).toEqual({ kind: 'expired', oldest: 8, head: 12 });
    expect(cursors(await changeLog.read(7))).toEqual(range(8, 12));
  });

  it("reads one scope's entries only, and as many as the limit asks", async () => {
    const dbName = `changelog_${++dbCount}`;
    const { changeLog } = await open(dbName);
    await changeLog.recordMany(range(1, 6).map((c) => entry(c, c % 2 === 0 ? 'even' : 'odd')));
    expect(cursors(await changeLog.read(0, { scope: 'even' }))).toEqual([2, 4, 6]);
    expect(cursors(await changeLog.read(2, { scope: 'odd' }))).toEqual([3, 5]);
    expect(cursors(await changeLog.read(1, { limit: 2 }))).toEqual([2, 3]);
    expect(cursors(await changeLog.read(0, { limit: 0 }))).toEqual([]);
    await expect(changeLog.read(0, { limit: -1 })).rejects.toThrow(RangeError);
    await expect(changeLog.read(0, { limit: 1.5 })).rejects.toThrow(RangeError);
  });
  it('creates changelog with its scope index, and opens again over an existing one', async () => {
    const dbName = `changelog_${++dbCount}`;
    await open(dbName);
    await open(dbName);
    const indexes = await client.db(dbName).collection(ProjectorCollection.ChangeLog).indexes();
    expect(indexes).toContainEqual(
      expect.objectContaining({ name: SCOPE_INDEX.name, key: SCOPE_INDEX.key }),
    );
  });

  it('takes a cursor recorded already, by this instance or another, as a no-op', async () => {
    const dbName = `changelog_${++dbCount}`;
    const first = await open(dbName);
    const second = await open(dbName);
    for (const c of [1, 2, 3]) await first.changeLog.record(entry(c));
    // A deposed projector replaying what is recorded: nothing changes, nothing fails.
    for (const c of [2, 3]) await second.changeLog.record(entry(c, 'replayed'));
    await first.changeLog.record(entry(3, 'replayed'));
    const read = await first.changeLog.read(0);
    expect(read.kind === 'entries' && read.entries.map((e) => e.scopes[0])).toEqual([
      'board-1',
      'board-1',
      'board-1',
    ]);
    await second.changeLog.record(entry(4));
    expect(await first.changeLog.head()).toBe(4);
  });

  it("ends an open tail's iteration when the storage closes", async () => {
    const dbName = `changelog_${++dbCount}`;
    const storage = await createMongoProjectorStorage({ client, dbName });
    await storage.changeLog.record(entry(1));
    const iterator = storage.changeLog.tail(0)[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ cursor: 1 });
    // Nothing more is recorded: this waits until the tail is closed.
    const pending = iterator.next();
    await storage.close();
    const bound = new Promise((resolve) => setTimeout(() => resolve('still waiting'), 10_000));
    expect(await Promise.race([pending, bound])).toEqual({ done: true, value: undefined });
  });
});
