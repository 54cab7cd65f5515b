import { randomBytes } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';
import { afterAll, vi } from 'vitest';
import { MongoSim } from '../sim/MongoSim.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { CollectionName } from '../../src/eventstore/mongo/documents.js';
import type { EventStore } from '../../src/eventstore/types.js';
import type { StoreAdapter } from './storeAdapters.js';

/** A database name no other test (or test run) uses. */
export function uniqueDatabaseName(): string {
  return `corkboard_test_${randomBytes(6).toString('hex')}`;
}

/** Where a test file's mongo adapters connect, resolved on first use. */
export type MongoUri = () => Promise<string>;

/**
 * The replica set the mongo adapters of a test file run against: MONGODB_URI when it is
 * set (a real one), else a MongoDB simulator (`test/sim`) started for the file on first
 * use and stopped after its tests. Call it at collection time, before any
 * `fileScopedMongoClient` of the same file: hooks after tests run in reverse order, so
 * the clients close before the simulator does.
 */
export function fileScopedMongoUri(): MongoUri {
  const uri = process.env.MONGODB_URI;
  if (uri) return async () => uri;
  let starting: Promise<MongoSim> | undefined;
  afterAll(async () => {
    if (starting) await (await starting).close();
  });
  return async () => (await (starting ??= MongoSim.start())).uri;
}

/**
 * The per-test timeout of the contract suites: the vitest default on a real replica set;
 * four times it on the simulator, which evaluates every command in the test's own
 * process and so slows down with the machine's load far more than a server would.
 */
export const CONTRACT_TIMEOUT_MS = process.env.MONGODB_URI ? 30_000 : 120_000;

/**
 * Sets the calling test file's per-test timeout to `CONTRACT_TIMEOUT_MS`. Call it at
 * collection time (the adapter lists do), before the tests are declared.
 */
export function useContractTimeout(): void {
  vi.setConfig({ testTimeout: CONTRACT_TIMEOUT_MS });
}

/**
 * Event store options for the contract suites: none on a real replica set. On the
 * simulator a transaction lasts some 50 times longer than on a server (every command is
 * evaluated in the test's own process, on a loaded machine), so appends racing on one
 * stream conflict for longer than the default 20 attempts cover; the append deadline
 * (appendTimeoutMs) still bounds them.
 */
export const CONTRACT_STORE_OPTIONS: { maxAttempts?: number } = process.env.MONGODB_URI
  ? {}
  : { maxAttempts: 200 };

/** Which replica set `fileScopedMongoUri` uses, for the line a suite prints. */
export function mongoTargetDescription(): string {
  return process.env.MONGODB_URI
    ? 'the replica set MONGODB_URI names'
    : 'the MongoDB simulator (test/sim: semantics modelled in-process, not a MongoDB server)';
}

/**
 * A client for this test file: connected on first use, closed after the file's tests (the
 * `afterAll` is registered when this is called, so call it at collection time).
 */
export function fileScopedMongoClient(uri: string | MongoUri): () => Promise<MongoClient> {
  let connecting: Promise<MongoClient> | undefined;
  afterAll(async () => {
    if (connecting) await (await connecting).close();
  });
  const resolve = typeof uri === 'string' ? async () => uri : uri;
  return () => (connecting ??= resolve().then((u) => new MongoClient(u).connect()));
}

/** Positions of the commits (not gaps) of one commit collection, in order. */
export async function commitPositions(db: Db, name: string): Promise<number[]> {
  const docs = await db
    .collection<{ position: number; gap?: true }>(name)
    .find({ gap: { $exists: false } }, { projection: { position: 1 } })
    .sort({ position: 1 })
    .toArray();
  return docs.map((d) => d.position);
}

/**
 * The mongo adapter for a contract suite. One client per test file, connected on first use
 * and closed after the file's tests (the `afterAll` is registered when this is called, at
 * collection time). Each store gets a fresh database, dropped when the store is closed.
 */
export function mongoStoreAdapter(uri: MongoUri): StoreAdapter {
  const client = fileScopedMongoClient(uri);
  const databases = new WeakMap<EventStore, Db>();
  return {
    async placement(store) {
      const db = databases.get(store);
      if (!db) throw new Error('not a store of this adapter');
      return {
        hot: await commitPositions(db, CollectionName.Commits),
        archived: await commitPositions(db, CollectionName.ArchiveCommits),
      };
    },
    name: 'mongo',
    async createEventStore(options) {
      const connected = await client();
      const dbName = uniqueDatabaseName();
      const store = await MongoEventStore.create({
        client: connected,
        dbName,
        ...CONTRACT_STORE_OPTIONS,
        ...options,
      });
      const wrapped = droppingDatabaseOnClose(store, connected.db(dbName));
      databases.set(wrapped, connected.db(dbName));
      return wrapped;
    },
    async createInstances(count) {
      const dbName = uniqueDatabaseName();
      const instances: EventStore[] = [];
      for (let i = 0; i < count; i += 1) {
        // Each instance connects on its own, as separate processes would.
        instances.push(
          await MongoEventStore.connect(await uri(), { dbName, ...CONTRACT_STORE_OPTIONS }),
        );
      }
      let open = count;
      const db = (await client()).db(dbName);
      return instances.map((store) => ({
        ...droppingDatabaseOnClose(store, db),
        close: async () => {
          await store.close();
          open -= 1;
          if (open === 0) await db.dropDatabase();
        },
      }));
    },
  };
}

/** The store, with `close()` also dropping its database (the client stays open). */
function droppingDatabaseOnClose(store: EventStore, db: Db): EventStore {
  return {
    append: (request, options) => store.append(request, options),
    readStream: (stream, options) => store.readStream(stream, options),
    readStreamBackward: (stream, options) => store.readStreamBackward(stream, options),
    streamVersion: (stream, options) => store.streamVersion(stream, options),
    readAll: (options) => store.readAll(options),
    headPosition: () => store.headPosition(),
    idempotentResult: (key, fingerprint, options) =>
      store.idempotentResult(key, fingerprint, options),
    subscribe: (options) => store.subscribe(options),
    archiveStreams: (streams, options) => store.archiveStreams(streams, options),
    restoreStreams: (streams, options) => store.restoreStreams(streams, options),
    close: async () => {
      await store.close();
      await db.dropDatabase();
    },
  };
}
