import { randomBytes } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';
import { afterAll } from 'vitest';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import type { EventStore } from '../../src/eventstore/types.js';
import type { StoreAdapter } from './storeAdapters.js';

/** A database name no other test (or test run) uses. */
export function uniqueDatabaseName(): string {
  return `corkboard_test_${randomBytes(6).toString('hex')}`;
}

/**
 * A client for this test file: connected on first use, closed after the file's tests (the
 * `afterAll` is registered when this is called, so call it at collection time).
 */
export function fileScopedMongoClient(uri: string): () => Promise<MongoClient> {
  let connecting: Promise<MongoClient> | undefined;
  afterAll(async () => {
    if (connecting) await (await connecting).close();
  });
  return () => (connecting ??= new MongoClient(uri).connect());
}

/**
 * The mongo adapter for a contract suite. One client per test file, connected on first use
 * and closed after the file's tests (the `afterAll` is registered when this is called, at
 * collection time). Each store gets a fresh database, dropped when the store is closed.
 */
export function mongoStoreAdapter(uri: string): StoreAdapter {
  const client = fileScopedMongoClient(uri);
  return {
    name: 'mongo',
    async createEventStore(options) {
      const connected = await client();
      const dbName = uniqueDatabaseName();
      const store = await MongoEventStore.create({ client: connected, dbName, ...options });
      return droppingDatabaseOnClose(store, connected.db(dbName));
    },
    async createInstances(count) {
      const dbName = uniqueDatabaseName();
      const instances: EventStore[] = [];
      for (let i = 0; i < count; i += 1) {
        // Each instance connects on its own, as separate processes would.
        instances.push(await MongoEventStore.connect(uri, { dbName }));
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
    streamVersion: (stream, options) => store.streamVersion(stream, options),
    readAll: (options) => store.readAll(options),
    headPosition: () => store.headPosition(),
    idempotentResult: (key, fingerprint, options) =>
      store.idempotentResult(key, fingerprint, options),
    subscribe: (options) => store.subscribe(options),
    close: async () => {
      await store.close();
      await db.dropDatabase();
    },
  };
}
