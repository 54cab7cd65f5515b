import type { EventStore } from '../../src/eventstore/types.js';
import type { UpcasterRegistry } from '../../src/eventstore/upcasters.js';
import { MemoryEventLog, MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { mongoStoreAdapter } from './mongo.js';

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
}

const memory: StoreAdapter = {
  name: 'memory',
  createEventStore: async (options) => new MemoryEventStore(options),
  createInstances: async (count) => {
    const log = new MemoryEventLog();
    return Array.from({ length: count }, () => new MemoryEventStore({ log }));
  },
};

/**
 * The adapters the contract suites run against: memory always, mongo when
 * MONGODB_URI names a replica set. Prints one line when mongo is skipped.
 * Call it at the top of a test file: the mongo adapter registers an `afterAll`
 * that closes its client.
 */
export function storeAdapters(): StoreAdapter[] {
  const uri = process.env.MONGODB_URI;
  if (!uri) {
    console.info('[contract] mongo adapter skipped: MONGODB_URI is not set (no replica set here)');
    return [memory];
  }
  return [memory, mongoStoreAdapter(uri)];
}
