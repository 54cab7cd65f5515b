import { readModelIndexes } from './boards/readModel.js';
import type { Config } from './config.js';
import type { EventStore } from './eventstore/types.js';
import { MemoryEventStore } from './eventstore/memory/MemoryEventStore.js';
import { MemorySnapshotStore } from './eventstore/snapshots/MemorySnapshotStore.js';
import type { SnapshotStore } from './eventstore/snapshots/SnapshotStore.js';
import type { UpcasterRegistry } from './eventstore/upcasters.js';
import type { Logger } from './logger.js';
import { createMemoryProjectorStorage } from './projector/memory/MemoryProjectorStorage.js';
import type { ProjectorStorage } from './projector/types.js';

/** The storage a process runs on: the book of record and the projector's storage. */
export interface Storage {
  kind: 'memory' | 'mongo';
  /** Where the data lives, for the start-up banner (no credentials). */
  description: string;
  store: EventStore;
  /** Snapshots of big streams' folded state, beside `store` (they are only a cache of it). */
  snapshots: SnapshotStore;
  projector: ProjectorStorage;
  /** Closes what `openStorage` opened (clients, embedded servers). */
  close(): Promise<void>;
}

/** Opens the in-memory storage: everything is lost when the process ends. */
export function openMemoryStorage(options: {
  upcasters?: UpcasterRegistry;
  changeLogRetention?: number;
  idempotencyTtlMs?: number;
}): Storage {
  const store = new MemoryEventStore({
    ...(options.upcasters ? { upcasters: options.upcasters } : {}),
    ...(options.idempotencyTtlMs ? { idempotencyTtlMs: options.idempotencyTtlMs } : {}),
  });
  const projector = createMemoryProjectorStorage({
    readModelIndexes: readModelIndexes,
    ...(options.changeLogRetention ? { changeLogRetention: options.changeLogRetention } : {}),
  });
  return {
    kind: 'memory',
    description: 'in-memory store (not persistent)',
    store,
    snapshots: new MemorySnapshotStore(),
    projector,
    close: async () => {
      await projector.close();
      await store.close();
    },
  };
}

/**
 * Opens the storage the configuration asks for. `auto`: MONGODB_URI when set;
 * else an embedded single-node MongoDB replica set; else, when no mongod can be
 * had (it is downloaded on first use), the memory store with one warning.
 */
export async function openStorage(
  config: Config,
  logger: Logger,
  upcasters?: UpcasterRegistry,
): Promise<Storage> {
  const memoryOptions = {
    changeLogRetention: config.changeLogRetention,
    idempotencyTtlMs: config.idempotencyTtlMs,
    ...(upcasters ? { upcasters } : {}),
  };
  if (config.store === 'memory') return openMemoryStorage(memoryOptions);
  const { openMongoStorage, startEmbeddedMongo } = await import('./mongoStorage.js');
  if (config.mongodbUri) {
    return openMongoStorage({
      uri: config.mongodbUri,
      dbName: config.mongodbDb,
      config,
      upcasters,
    });
  }
  try {
    const embedded = await startEmbeddedMongo(config.embeddedMongoTimeoutMs);
    const storage = await openMongoStorage({
      uri: embedded.uri,
      dbName: config.mongodbDb,
      config,
      upcasters,
    });
    return {
      ...storage,
      description: `embedded MongoDB replica set (${embedded.uri}, data in a temporary directory)`,
      close: async () => {
        await storage.close();
        await embedded.stop();
      },
    };
  } catch (error) {
    logger.warn(
      { reason: error instanceof Error ? error.message : String(error) },
      'no MongoDB available (MONGODB_URI unset and no embedded mongod could be started): using the in-memory store; data will NOT persist',
    );
    return openMemoryStorage(memoryOptions);
  }
}
