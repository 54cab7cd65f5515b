import type { EventStore } from '../../src/eventstore/types.js';
import type { UpcasterRegistry } from '../../src/eventstore/upcasters.js';
import { MemoryEventLog, MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import {
  fileScopedMongoUri,
  mongoStoreAdapter,
  mongoTargetDescription,
  useContractTimeout,
} from './mongo.js';

/** One storage adapter under the contract suite. */
export interface StoreAdapter {
  name: 'memory' | 'mongo';
  /** A fresh, empty event store (its own database for mongo). */
  createEventStore(options?: {
    upcasters?: UpcasterRegistry;
    now?: () => Date;
    idempotencyTtlMs?: number;
  }): Promise<EventStore>;
  /**
   * `count` event stores over ONE fresh, empty store, as the instances of a service share
   * a database (mongo: each with a client of its own). Closing them all empties it.
   */
  createInstances(count: number): Promise<EventStore[]>;
  /**
   * Where the commits of a store made by `createEventStore` sit: positions of the commits
   * (not gaps) in the hot store and in the archive, each in order.
   */
  placement(store: EventStore): Promise<CommitPlacement>;
}

/** Positions of the commits in each place of a store. */
export interface CommitPlacement {
  hot: number[];
  archived: number[];
}

const memory: StoreAdapter = {
  name: 'memory',
  createEventStore: async (options) => new MemoryEventStore(options),
  createInstances: async (count) => {
    const log = new MemoryEventLog();
    return Array.from({ length: count }, () => new MemoryEventStore({ log }));
  },
  placement: async (store) => {
    if (!(store instanceof MemoryEventStore)) throw new Error('not a memory event store');
    const hot = store.hotPositions();
    const all = (await store.readAll({ limit: Number.MAX_SAFE_INTEGER })).map((c) => c.position);
    return { hot, archived: all.filter((p) => !hot.includes(p)) };
  },
};

/**
 * The adapters the contract suites run against: memory, and mongo on the replica set
 * MONGODB_URI names or, without it, on the MongoDB simulator. Prints which one.
 * Call it at the top of a test file: the mongo adapter registers `afterAll` hooks that
 * close its client (and the simulator).
 */
export function storeAdapters(): StoreAdapter[] {
  console.info(`[contract] mongo adapter on ${mongoTargetDescription()}`);
  useContractTimeout();
  return [memory, mongoStoreAdapter(fileScopedMongoUri())];
}
