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
import type { MongoSim } from './MongoSim.js';
import { startSimAndClient, stopSimAndClient } from './simClient.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;

beforeAll(async () => ({ sim, client } = await startSimAndClient()));
afterAll(() => stopSimAndClient({ sim, client }));

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

/**
 * What the change log and its tails send: the head read only when this instance does not
 * know it, one insert of only the entries not stored yet, and a tail that follows its change
 * stream (no collection read per entry) once its catch-up is done.
 */
describe('the mongo change log on the simulator, by the commands it sends', () => {
  let monitored: MongoClient;
  const sent: { name: string; coll: unknown; body: Record<string, unknown>; id: number }[] = [];
  const succeeded = new Set<number>();
  const answered = (commands: typeof sent) => commands.filter((c) => succeeded.has(c.id));
  const opened: ProjectorStorage[] = [];
  beforeAll(async () => {
    monitored = await new MongoClient(sim.uri, { monitorCommands: true }).connect();
    monitored.on('commandStarted', (event) => {
      const body = event.command as Record<string, unknown>;
      sent.push({
        name: event.commandName,
        coll: body[event.commandName],
        body,
        id: event.requestId,
      });
    });
    monitored.on('commandSucceeded', (event) => succeeded.add(event.requestId));
  });
  afterAll(async () => {
    for (const storage of opened) await storage.close();
    await monitored.close();
  });
  const open = async (
    dbName: string,
    options: { changeLogRetention?: number; changeLogTrimEvery?: number } = {},
  ) => {
    // Polling every minute: an entry a tail delivers within a test came from its change stream.
    const storage = await createMongoProjectorStorage({
      client: monitored,
      dbName,
      tailPollIntervalMs: 60_000,
      ...options,
    });
    opened.push(storage);
    return storage;
  };
  const onChangeLog = (name: string) =>
    sent.filter((c) => c.name === name && c.coll === ProjectorCollection.ChangeLog);
  /** The head reads: the newest `_id` first, one document. */
  const headReads = () =>
    onChangeLog('find').filter((c) => {
      // The driver sends a sort as a Map.
      const sort = c.body.sort as Map<string, number> | undefined;
      return sort instanceof Map && sort.get('_id') === -1;
    });
  /** The reads of entries after a cursor, as `read` and a tail's catch-up send them. */
  const entryReads = () =>
    onChangeLog('find').filter((c) => (c.body.filter as { _id?: unknown })._id !== undefined);
  const inserted = () =>
    onChangeLog('insert').map((c) => (c.body.documents as { _id: number }[]).map((d) => d._id));
  /** The next item of a tail, or a failure after 10 s (nothing came). */
  const within = async <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after 10 s`)), 10_000);
    });
    try {
      return await Promise.race([promise, bound]);
    } finally {
      clearTimeout(timer);
    }
  };
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`${what}: not after 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  it('reads the stored head once, then records its own next cursors without reading it again', async () => {
    const dbName = `changelog_${++dbCount}`;
    const first = await open(dbName);
    const second = await open(dbName);
    const before = headReads().length;
    for (const c of [1, 2, 3]) await first.changeLog.record(entry(c));
    await first.changeLog.recordMany(range(4, 6).map((c) => entry(c)));
    await first.changeLog.record(entry(7));
    await first.changeLog.recordMany(range(8, 9).map((c) => entry(c)));
    expect(headReads().length - before).toBe(1);
    // Another instance records 10 meanwhile: the first, not knowing, inserts 10 again (no head
    // read), and takes the duplicate key as recorded.
    await second.changeLog.record(entry(10, 'other'));
    const secondReads = headReads().length;
    await first.changeLog.record(entry(10));
    await first.changeLog.record(entry(11));
    expect(headReads().length).toBe(secondReads);
    expect(await stored(dbName)).toEqual(range(1, 11));
    const read = await first.changeLog.read(9);
    expect(read.kind === 'entries' && read.entries.map((e) => e.scopes[0])).toEqual([
      'other',
      'board-1',
    ]);
  });

  it('inserts only the entries of a batch not stored yet, in one insert, and nothing for a batch stored already', async () => {
    const dbName = `changelog_${++dbCount}`;
    const first = await open(dbName);
    const second = await open(dbName);
    await first.changeLog.recordMany(range(1, 3).map((c) => entry(c)));
    const before = inserted().length;
    await second.changeLog.recordMany(range(1, 5).map((c) => entry(c)));
    expect(inserted().slice(before)).toEqual([[4, 5]]);
    // All stored: no insert at all, from either instance; an empty batch sends nothing either.
    await second.changeLog.recordMany(range(2, 4).map((c) => entry(c)));
    await first.changeLog.recordMany(range(1, 5).map((c) => entry(c)));
    const sentBefore = onChangeLog('insert').length + onChangeLog('find').length;
    await first.changeLog.recordMany([]);
    expect(onChangeLog('insert').length + onChangeLog('find').length).toBe(sentBefore);
    expect(inserted().slice(before)).toEqual([[4, 5]]);
    expect(await stored(dbName)).toEqual(range(1, 5));
    await expect(first.changeLog.read(0, { limit: -1 })).rejects.toThrow(/invalid limit -1/);
  });

  it('follows its change stream once caught up: each new entry once, in order, with no read of the collection, past the trimming deletes', async () => {
    const dbName = `changelog_${++dbCount}`;
    const { changeLog } = await open(dbName, { changeLogRetention: 5, changeLogTrimEvery: 4 });
    const aggregates = onChangeLog('aggregate').length;
    const reads = entryReads().length;
    // Entry 1 is recorded after the stream opened and before the catch-up read: the tail
    // sees it both ways and delivers it once.
    let release!: () => void;
    const held = sim.hold(
      (c) =>
        c.name === 'find' &&
        c.db === dbName &&
        c.body.find === ProjectorCollection.ChangeLog &&
        (c.body.filter as { _id?: unknown })._id !== undefined,
      new Promise<void>((resolve) => (release = resolve)),
    );
    const tail = changeLog.tail(0);
    const iterator = tail[Symbol.asyncIterator]();
    const next = async (what: string) => (await within(iterator.next(), what)).value!.cursor;
    const firstItem = iterator.next();
    await within(held, 'the catch-up read');
    expect(onChangeLog('aggregate').length).toBe(aggregates + 1);
    await changeLog.record(entry(1));
    release();
    const delivered = [(await within(firstItem, 'entry 1')).value!.cursor];
    // The catch-up goes on until a read finds nothing; then the tail is on its stream.
    const second = iterator.next();
    await until(() => answered(entryReads()).length === reads + 2, 'the catch-up read');
    const caughtUp = entryReads().length;
    await changeLog.record(entry(2));
    delivered.push((await within(second, 'entry 2')).value!.cursor);
    // Trim points 4, 8 and 12: the deletes reach the stream too.
    await changeLog.recordMany(range(3, 9).map((c) => entry(c)));
    for (const c of range(3, 9)) delivered.push(await next(`entry ${c}`));
    for (const c of range(10, 12)) {
      await changeLog.record(entry(c));
      delivered.push(await next(`entry ${c}`));
    }
    expect(delivered).toEqual(range(1, 12));
    expect(await stored(dbName)).toEqual(range(8, 12));
    // Entry 1 came twice (read and stream), every other one once (stream): no read after
    // the catch-up's, and nothing delivered twice.
    expect(entryReads().length).toBe(caughtUp);
    await changeLog.record(entry(13));
    expect((await within(iterator.next(), 'entry 13')).value!.cursor).toBe(13);
    expect(entryReads().length).toBe(caughtUp);
    await tail.close();
  });

  it('catches a tail up in reads of 500 from the oldest entry kept, and stops delivering a read batch once closed', async () => {
    const dbName = `changelog_${++dbCount}`;
    const { changeLog } = await open(dbName, {
      changeLogRetention: 1_100,
      changeLogTrimEvery: 1_200,
    });
    await changeLog.recordMany(range(1, 1_200).map((c) => entry(c)));
    const reads = entryReads().length;
    const tail = changeLog.tail(0);
    const delivered: number[] = [];
    const kills = () =>
      sent.filter((c) => c.name === 'killCursors' && c.coll === ProjectorCollection.ChangeLog)
        .length;
    const killed = kills();
    for await (const item of tail) {
      delivered.push(item.cursor);
      if (item.cursor === 1_200) break;
    }
    // Cursors 1 to 100 are out of the window: the tail starts at the oldest one in it.
    expect(delivered).toEqual(range(101, 1_200));
    const limits = entryReads()
      .slice(reads)
      .map((c) => c.body.limit);
    expect(limits.length).toBeGreaterThanOrEqual(3);
    expect(new Set(limits)).toEqual(new Set([500]));
    // Leaving the loop closed the tail: its change stream's cursor is killed.
    await until(() => kills() > killed, 'the change stream closed');
    // Closed in the middle of a read batch: nothing more of it is delivered.
    const again = changeLog.tail(0);
    const iterator = again[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ cursor: 101 });
    await again.close();
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('opens no change stream for a tail closed before it is iterated', async () => {
    const dbName = `changelog_${++dbCount}`;
    const { changeLog } = await open(dbName);
    await changeLog.record(entry(1));
    const aggregates = onChangeLog('aggregate').length;
    const tail = changeLog.tail(0);
    await tail.close();
    expect(await tail[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
    expect(onChangeLog('aggregate').length).toBe(aggregates);
  });
});
