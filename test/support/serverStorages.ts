import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { openMemoryStorage, openStorage, type Storage } from '../../src/storage.js';
import { MongoSim } from '../sim/MongoSim.js';

/** A storage for a test server, and how to close it (and what it runs on). */
export interface ServerStorage {
  name: string;
  open: () => Promise<{ storage: Storage; close: () => Promise<void> }>;
}

/**
 * The two storages an e2e test of the whole server runs on: memory, and the mongo
 * adapter on a MongoDB simulator of its own (database `database`). For `describe.each`.
 */
export function serverStorages(database: string): ServerStorage[] {
  return [
    {
      name: 'memory',
      open: async () => {
        const storage = openMemoryStorage({});
        return { storage, close: () => storage.close() };
      },
    },
    {
      name: 'mongo adapter on the MongoDB simulator (test/sim)',
      open: async () => {
        const sim = await MongoSim.start();
        const config = loadConfig({
          STORE: 'mongo',
          MONGODB_URI: sim.uri,
          MONGODB_DB: database,
          LOG_LEVEL: 'silent',
        });
        const storage = await openStorage(config, pino({ level: 'silent' }));
        return {
          storage,
          close: async () => {
            await storage.close();
            await sim.close();
          },
        };
      },
    },
  ];
}
