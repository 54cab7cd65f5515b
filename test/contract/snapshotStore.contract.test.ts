import { afterAll, describe, expect, it } from 'vitest';
import { MemorySnapshotStore } from '../../src/eventstore/snapshots/MemorySnapshotStore.js';
import { MongoSnapshotStore } from '../../src/eventstore/snapshots/MongoSnapshotStore.js';
import {
  MAX_SNAPSHOT_STATE_BYTES,
  SnapshotTooLarge,
  type Snapshot,
  type SnapshotStore,
} from '../../src/eventstore/snapshots/SnapshotStore.js';
import {
  fileScopedMongoClient,
  fileScopedMongoUri,
  mongoTargetDescription,
  uniqueDatabaseName,
  useContractTimeout,
} from '../support/mongo.js';

/**
 * A fresh, empty snapshot store of each adapter: memory, and mongo on MONGODB_URI's replica
 * set or the MongoDB simulator.
 */
function snapshotAdapters(): { name: string; open: () => Promise<SnapshotStore> }[] {
  const memory = { name: 'memory', open: async () => new MemorySnapshotStore() };
  console.info(`[contract] mongo adapter on ${mongoTargetDescription()}`);
  useContractTimeout();
  const client = fileScopedMongoClient(fileScopedMongoUri());
  const databases: string[] = [];
  afterAll(async () => {
    const connected = await client();
    await Promise.all(databases.map((name) => connected.db(name).dropDatabase()));
  });
  const mongo = {
    name: 'mongo',
    open: async () => {
      const dbName = uniqueDatabaseName();
      databases.push(dbName);
      return new MongoSnapshotStore({ client: await client(), dbName });
    },
  };
  return [memory, mongo];
}

const snapshot = (overrides: Partial<Snapshot> = {}): Snapshot => ({
  stream: 'column-c1',
  version: 10,
  eventId: 'e10',
  codec: 'column/1',
  state: '{"cards":["k1","a0"]}',
  ...overrides,
});

describe.each(snapshotAdapters())('snapshot store contract ($name)', ({ open }) => {
  it('has no snapshot of a stream never saved', async () => {
    const store = await open();
    expect(await store.load('column-none')).toBeUndefined();
  });

  it('gives back what was saved, field for field, per stream', async () => {
    const store = await open();
    const one = snapshot();
    const two = snapshot({ stream: 'column-c2', version: 3, eventId: 'x3', state: 'é €😀' });
    await store.save(one);
    await store.save(two);
    expect(await store.load(one.stream)).toEqual(one);
    expect(await store.load(two.stream)).toEqual(two);
  });

  it('keeps the newer of two snapshots of one codec, whatever order they are saved in', async () => {
    const store = await open();
    await store.save(snapshot({ version: 20, eventId: 'e20', state: 'twenty' }));
    await store.save(snapshot({ version: 10, eventId: 'e10', state: 'ten' }));
    await store.save(snapshot({ version: 20, eventId: 'other', state: 'again' }));
    expect(await store.load('column-c1')).toMatchObject({ version: 20, eventId: 'e20' });
    await store.save(snapshot({ version: 21, eventId: 'e21', state: 'newer' }));
    expect(await store.load('column-c1')).toMatchObject({ version: 21, state: 'newer' });
  });

  it('replaces a snapshot of another codec, even a newer one', async () => {
    const store = await open();
    await store.save(snapshot({ version: 50, codec: 'column/1' }));
    await store.save(snapshot({ version: 40, codec: 'column/2', state: 'new shape' }));
    expect(await store.load('column-c1')).toMatchObject({ version: 40, codec: 'column/2' });
  });

  it('keeps the highest version when many saves of one stream race', async () => {
    const store = await open();
    const versions = Array.from({ length: 30 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    await Promise.all(
      versions.map((version) => store.save(snapshot({ version, eventId: `e${version}` }))),
    );
    expect(await store.load('column-c1')).toMatchObject({ version: 30, eventId: 'e30' });
  });

  it('refuses a state over the size limit and keeps what it had', async () => {
    const store = await open();
    await store.save(snapshot());
    const huge = 'x'.repeat(MAX_SNAPSHOT_STATE_BYTES + 1);
    await expect(store.save(snapshot({ version: 11, state: huge }))).rejects.toBeInstanceOf(
      SnapshotTooLarge,
    );
    expect(await store.load('column-c1')).toEqual(snapshot());
  });

  it('is not changed by changing what it returned', async () => {
    const store = await open();
    await store.save(snapshot());
    const loaded = (await store.load('column-c1'))!;
    loaded.version = 99;
    expect((await store.load('column-c1'))!.version).toBe(10);
  });
});
