/**
 * The read model generations on the simulator: how instances starting together agree on
 * one active generation, the pointer cache, what a missing pointer or an unknown
 * generation is answered with, and the delayed drop of an old generation. Commands are
 * placed deterministically with the simulator's `hold` and `fault`, never by timing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient, MongoError, type CommandStartedEvent, type Db } from 'mongodb';
import { MongoReadModels } from '../../src/projector/mongo/MongoReadModels.js';
import {
  ACTIVE_POINTER_ID,
  ProjectorCollection,
  type ActivePointerDoc,
  type GenerationDoc,
} from '../../src/projector/mongo/documents.js';
import {
  generationCollectionPrefix,
  newGenerationId,
  readModelCollectionName,
} from '../../src/projector/mongo/generations.js';
import {
  FencedOut,
  ProjectorStorageUnavailable,
  type Fence,
  type ReadDoc,
} from '../../src/projector/types.js';
import { until } from '../support/until.js';
import { MongoSim, type SimCommand } from './MongoSim.js';

let sim: MongoSim;
/** Two processes' clients: the simulator tells their commands apart by `appName`. */
let first: MongoClient;
let second: MongoClient;
let dbCount = 0;
const freshDbName = () => `readmodels_${++dbCount}`;

beforeAll(async () => {
  sim = await MongoSim.start();
  const connect = (appName: string) =>
    new MongoClient(sim.uri, {
      appName,
      serverSelectionTimeoutMS: 10_000,
      monitorCommands: true,
    }).connect();
  [first, second] = await Promise.all([connect('first'), connect('second')]);
});

afterAll(async () => {
  await Promise.all([first.close(), second.close()]);
  await sim.close();
});

const fence = (epoch: number): Fence => ({ lease: 'projector', owner: `p${epoch}`, epoch });

/** The indexes every generation gets: one collection with an index, one with none. */
const INDEXES = { cards: [{ key: { boardId: 1 }, name: 'byBoard' }], plain: [] };

function models(
  client: MongoClient,
  dbName: string,
  options: Partial<{ pointerCacheMs: number; dropDelayMs: number }> = {},
): MongoReadModels {
  return new MongoReadModels(client.db(dbName), {
    pointerCacheMs: options.pointerCacheMs ?? 60_000,
    dropDelayMs: options.dropDelayMs ?? 60_000,
    indexes: INDEXES,
  });
}

const generationDocs = (db: Db) =>
  db
    .collection<GenerationDoc>(ProjectorCollection.ReadModelGenerations)
    .find({})
    .sort({ _id: 1 })
    .toArray();

const pointerOf = (db: Db) =>
  db
    .collection<ActivePointerDoc>(ProjectorCollection.ReadModelMeta)
    .findOne({ _id: ACTIVE_POINTER_ID });

const collectionNames = async (db: Db) =>
  (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);

/** A promise and its resolver: the release of a command held on the simulator. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Commands `client` sends while `run` runs. */
async function commandsDuring(
  client: MongoClient,
  run: () => Promise<unknown>,
): Promise<CommandStartedEvent[]> {
  const seen: CommandStartedEvent[] = [];
  const watch = (event: CommandStartedEvent) => seen.push(event);
  client.on('commandStarted', watch);
  try {
    await run();
  } finally {
    client.off('commandStarted', watch);
  }
  return seen;
}

/** Matches `command` on `collection` of `dbName` sent by the first client. */
const firstSends = (dbName: string, collection: string, command: string) => (c: SimCommand) =>
  c.appName === 'first' && c.db === dbName && c.name === command && c.body[command] === collection;

describe('read model generations on the simulator: two instances starting at once', () => {
  it('agree on the generation whose pointer went in first; the other unregisters its spare generation', async () => {
    const dbName = freshDbName();
    const db = first.db(dbName);
    const loser = models(first, dbName);
    const winner = models(second, dbName);
    // The loser has found no pointer and is about to register its own generation when the
    // winner starts, registers one and points at it.
    const release = gate();
    const held = sim.hold(
      firstSends(dbName, ProjectorCollection.ReadModelGenerations, 'insert'),
      release.promise,
    );
    const loserInit = loser.init();
    await held;
    await winner.init();
    release.open();
    await loserInit;

    const active = (await winner.active()).generation;
    expect((await loser.active({ fresh: true })).generation).toBe(active);
    // Only the winner's generation is registered: the loser's spare one is gone.
    const registered = await generationDocs(db);
    expect(registered.map((g) => g._id)).toEqual([active]);
    expect(registered[0]?.createdAt).toBeInstanceOf(Date);
    // The configured index exists in the active generation; an empty list creates nothing.
    const indexes = await db
      .collection(readModelCollectionName(active, 'cards'))
      .listIndexes()
      .toArray();
    expect(indexes.map((i) => i.name).sort()).toEqual(['_id_', 'byBoard']);
    expect(await collectionNames(db)).not.toContain(readModelCollectionName(active, 'plain'));
  });

  it('keeps the generation it registered when it is the only one starting, and writes it at majority', async () => {
    const dbName = freshDbName();
    const db = first.db(dbName);
    const alone = models(first, dbName);
    const commands = await commandsDuring(first, () => alone.init());
    const active = (await alone.active()).generation;
    expect((await generationDocs(db)).map((g) => g._id)).toEqual([active]);
    expect(await pointerOf(db)).toEqual({ _id: ACTIVE_POINTER_ID, generation: active });
    // Both the registration and the pointer are written at majority: a failover must not
    // roll back a pointer other instances have read.
    const inserts = commands.filter((c) => c.commandName === 'insert');
    expect(inserts.map((c) => [c.command.insert, c.command.writeConcern])).toEqual([
      [ProjectorCollection.ReadModelGenerations, { w: 'majority' }],
      [ProjectorCollection.ReadModelMeta, { w: 'majority' }],
    ]);

    // A later start reads the pointer by its _id, finds nothing due to drop, and writes nothing.
    const restart = await commandsDuring(first, () => models(first, dbName).init());
    expect(
      restart
        .filter((c) => c.commandName !== 'createIndexes')
        .map((c) => [c.commandName, c.command[c.commandName], c.command.filter]),
    ).toEqual([
      ['find', ProjectorCollection.ReadModelMeta, { _id: ACTIVE_POINTER_ID }],
      [
        'find',
        ProjectorCollection.ReadModelGenerations,
        { dropAfter: { $lte: expect.any(Date) as unknown } },
      ],
    ]);
  });

  it('says the pointer vanished when it is gone right after its insert met the other one', async () => {
    const dbName = freshDbName();
    const db = first.db(dbName);
    await models(second, dbName).init();
    await db
      .collection<ActivePointerDoc>(ProjectorCollection.ReadModelMeta)
      .deleteOne({ _id: ACTIVE_POINTER_ID });
    // The starting instance finds no pointer; another one's is put back before its own
    // insert (which then meets it), and is gone again when it reads the pointer once more.
    const restored = gate();
    const insertHeld = sim.hold(
      firstSends(dbName, ProjectorCollection.ReadModelMeta, 'insert'),
      restored.promise,
    );
    let finds = 0;
    const gone = gate();
    const findHeld = sim.hold(
      (c) => firstSends(dbName, ProjectorCollection.ReadModelMeta, 'find')(c) && ++finds === 2,
      gone.promise,
    );
    const init = models(first, dbName).init();
    const failed = expect(init).rejects.toThrow(/read model pointer vanished/);
    await insertHeld;
    await second
      .db(dbName)
      .collection<ActivePointerDoc>(ProjectorCollection.ReadModelMeta)
      .insertOne({ _id: ACTIVE_POINTER_ID, generation: newGenerationId() });
    restored.open();
    await findHeld;
    await db
      .collection<ActivePointerDoc>(ProjectorCollection.ReadModelMeta)
      .deleteOne({ _id: ACTIVE_POINTER_ID });
    gone.open();
    await failed;
  });

  it('fails its start with the driver error when the pointer insert fails for another reason', async () => {
    const dbName = freshDbName();
    // The insert and the driver's one retry of it are both cut off.
    sim.fault({
      action: 'hangUpBefore',
      match: firstSends(dbName, ProjectorCollection.ReadModelMeta, 'insert'),
      count: 2,
    });
    const error: unknown = await models(first, dbName)
      .init()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(MongoError);
    expect(await pointerOf(first.db(dbName))).toBeNull();
  });
});

describe('read model generations on the simulator: the pointer', () => {
  it('answers from its copy of the pointer within pointerCacheMs, and reads it again after', async () => {
    const dbName = freshDbName();
    const cacheMs = 50;
    const cached = models(first, dbName);
    const reader = models(first, dbName, { pointerCacheMs: cacheMs });
    const switcher = models(second, dbName);
    await cached.init();
    await reader.init();
    await switcher.init();
    const old = (await cached.active()).generation;
    const next = await switcher.createGeneration();
    expect(await switcher.activate(next, old)).toBe(true);
    // Within its (60 s) cache, an instance answers from its copy, with no round trip.
    const commands = await commandsDuring(first, async () => {
      expect((await cached.active()).generation).toBe(old);
    });
    expect(commands).toEqual([]);
    // Past it, it reads the pointer again and sees the switch another instance made.
    await sleep(cacheMs * 2);
    expect((await reader.active()).generation).toBe(next);
    expect((await switcher.active()).generation).toBe(next);
    expect((await cached.active({ fresh: true })).generation).toBe(next);
  });

  it('refuses to switch to a generation that was never created, and leaves the pointer', async () => {
    const dbName = freshDbName();
    const store = models(first, dbName);
    await store.init();
    await store.createGeneration();
    const active = (await store.active()).generation;
    expect(await store.activate(newGenerationId(), active)).toBe(false);
    expect((await store.active({ fresh: true })).generation).toBe(active);
  });

  it('tells a claim under an older epoch from a missing pointer, and a read of a missing pointer', async () => {
    const dbName = freshDbName();
    const db = first.db(dbName);
    const store = models(first, dbName);
    await store.init();
    const active = (await store.active({ fence: fence(5) })).generation;
    await expect(store.active({ fence: fence(4) })).rejects.toThrow(
      new FencedOut('the read model pointer was claimed under a newer lease epoch'),
    );
    expect(await pointerOf(db)).toEqual({
      _id: ACTIVE_POINTER_ID,
      generation: active,
      fence: { lease: 'projector', epoch: 5 },
    });
    // The pointer gone (the database dropped under a running instance): said so, whatever
    // the fence, not blamed on a newer epoch.
    await db
      .collection<ActivePointerDoc>(ProjectorCollection.ReadModelMeta)
      .deleteOne({ _id: ACTIVE_POINTER_ID });
    for (const read of [
      store.active({ fence: fence(9) }),
      store.active({ fresh: true }),
      store.dropGeneration(newGenerationId()),
    ]) {
      const error: unknown = await read.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).not.toBeInstanceOf(FencedOut);
      expect(error).toEqual(
        new Error('the read model pointer is missing (was the database dropped?)'),
      );
    }
  });

  it('names the operation in the error when the server cannot be reached', async () => {
    const dbName = freshDbName();
    const store = models(first, dbName);
    await store.init();
    const next = await store.createGeneration();
    // Each command and the driver's one retry of it are cut off.
    const cut = (collection: string, command: string) =>
      sim.fault({
        action: 'hangUpBefore',
        match: firstSends(dbName, collection, command),
        count: 2,
      });
    cut(ProjectorCollection.ReadModelMeta, 'findAndModify');
    await expect(store.active({ fence: fence(1) })).rejects.toThrow(
      expect.objectContaining({
        name: ProjectorStorageUnavailable.name,
        message: expect.stringMatching(/^read model pointer claim failed: /) as unknown,
      }),
    );
    cut(ProjectorCollection.ReadModelMeta, 'find');
    await expect(store.active({ fresh: true })).rejects.toThrow(
      expect.objectContaining({
        name: ProjectorStorageUnavailable.name,
        message: expect.stringMatching(/^read model pointer read failed: /) as unknown,
      }),
    );
    cut(ProjectorCollection.ReadModelGenerations, 'update');
    await expect(store.dropGeneration(next)).rejects.toThrow(
      expect.objectContaining({
        name: ProjectorStorageUnavailable.name,
        message: expect.stringMatching(/^generation drop failed: /) as unknown,
      }),
    );
  });

  it('stops a pointer read when its signal fires while the read waits on the server', async () => {
    const dbName = freshDbName();
    const store = models(first, dbName);
    await store.init();
    const release = gate();
    const held = sim.hold(
      firstSends(dbName, ProjectorCollection.ReadModelMeta, 'find'),
      release.promise,
    );
    const controller = new AbortController();
    const read = store.active({ fresh: true, signal: controller.signal });
    const settled = read.then(
      () => 'answered',
      (e: unknown) => (e instanceof Error ? e.name : 'other'),
    );
    await held;
    controller.abort();
    const outcome = await settled;
    release.open();
    expect(outcome).toBe('AbortError');
  });
});

interface Note extends ReadDoc {
  text: string;
}

describe('read model generations on the simulator: dropping an old generation', () => {
  it('drops only that generation, after the delay, and not when another instance starts before it', async () => {
    const dbName = freshDbName();
    const db = first.db(dbName);
    const dropper = models(first, dbName);
    await dropper.init();
    const active = (await dropper.active()).generation;
    const doomed = await dropper.createGeneration();
    const kept = await dropper.createGeneration();
    for (const generation of [active, doomed, kept]) {
      await dropper.view(generation).collection<Note>('notes').put({ _id: 'n1', text: generation });
    }
    const commands = await commandsDuring(first, () => dropper.dropGeneration(doomed));
    const mark = commands.find((c) => c.commandName === 'update');
    expect(mark?.command.updates[0]?.q).toEqual({ _id: doomed });
    expect(mark?.command.writeConcern).toEqual({ w: 'majority' });
    const marked = await generationDocs(db);
    const dropAfter = marked.find((g) => g._id === doomed)?.dropAfter;
    expect(dropAfter?.getTime()).toBeGreaterThan(Date.now());
    expect(marked.filter((g) => g.dropAfter !== undefined).map((g) => g._id)).toEqual([doomed]);

    // An instance starting before the drop time (the dropper's is a minute) drops nothing:
    // readers may still be on the generation.
    await models(second, dbName).init();
    expect(await collectionNames(db)).toContain(readModelCollectionName(doomed, 'notes'));

    // An instance with a short delay drops it again: its timer drops the generation's
    // collections and its registration, and nothing else.
    await models(second, dbName, { dropDelayMs: 50 }).dropGeneration(doomed);
    await until(
      async () =>
        !(await collectionNames(db)).some((n) => n.startsWith(generationCollectionPrefix(doomed))),
      20_000,
      'the old generation dropped',
    );
    await until(
      async () => !(await generationDocs(db)).some((g) => g._id === doomed),
      20_000,
      'its registration removed',
    );
    expect((await generationDocs(db)).map((g) => g._id).sort()).toEqual([active, kept].sort());
    for (const generation of [active, kept]) {
      expect(await dropper.view(generation).collection<Note>('notes').get('n1')).toEqual({
        _id: 'n1',
        text: generation,
      });
    }
  });

  it('lists collection names only when it drops what is due', async () => {
    const dbName = freshDbName();
    const store = models(first, dbName);
    await store.init();
    const old = await store.createGeneration();
    await store.view(old).collection<Note>('notes').put({ _id: 'n1', text: 'old' });
    await first
      .db(dbName)
      .collection<GenerationDoc>(ProjectorCollection.ReadModelGenerations)
      .updateOne({ _id: old }, { $set: { dropAfter: new Date(0) } });
    const commands = await commandsDuring(first, () => models(first, dbName).init());
    const listings = commands.filter((c) => c.commandName === 'listCollections');
    // nameOnly: the server lists names without taking a lock on each collection.
    expect(listings.map((c) => c.command.nameOnly)).toEqual([true]);
    expect(await collectionNames(first.db(dbName))).not.toContain(
      readModelCollectionName(old, 'notes'),
    );
  });
});
