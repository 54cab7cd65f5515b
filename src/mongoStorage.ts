import { MongoClient } from 'mongodb';
import { readModelIndexes } from './boards/readModel.js';
import type { Config } from './config.js';
import { MongoEventStore } from './eventstore/mongo/MongoEventStore.js';
import { MongoSnapshotStore } from './eventstore/snapshots/MongoSnapshotStore.js';
import type { UpcasterRegistry } from './eventstore/upcasters.js';
import { createMongoProjectorStorage } from './projector/mongo/MongoProjectorStorage.js';
import type { Storage } from './storage.js';

export { startEmbeddedMongo } from './embeddedMongo.js';

/** The board read models' secondary indexes, declared with the read model. */
export { readModelIndexes };

/** Hides credentials in a connection string for logs and banners. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}

/**
 * Opens the mongo storage on one client shared by the event store and the projector
 * storage; `close()` closes that client.
 */
export async function openMongoStorage(options: {
  uri: string;
  dbName: string;
  config: Pick<Config, 'changeLogRetention'> & Partial<Pick<Config, 'idempotencyTtlMs'>>;
  upcasters?: UpcasterRegistry | undefined;
}): Promise<Storage> {
  const client = new MongoClient(options.uri);
  await client.connect();
  try {
    const store = await MongoEventStore.create({
      client,
      dbName: options.dbName,
      ...(options.upcasters ? { upcasters: options.upcasters } : {}),
      ...(options.config.idempotencyTtlMs
        ? { idempotencyTtlMs: options.config.idempotencyTtlMs }
        : {}),
    });
    const projector = await createMongoProjectorStorage({
      client,
      dbName: options.dbName,
      changeLogRetention: options.config.changeLogRetention,
      readModelIndexes: readModelIndexes,
    });
    return {
      kind: 'mongo',
      description: `MongoDB ${redactUri(options.uri)} (database ${options.dbName})`,
      store,
      snapshots: new MongoSnapshotStore({ client, dbName: options.dbName }),
      projector,
      close: async () => {
        await projector.close();
        await store.close();
        await client.close();
      },
    };
  } catch (error) {
    await client.close();
    throw error;
  }
}
