import type { ProjectorStorage, ReadIndexes } from '../types.js';
import { MemoryChangeLog } from './MemoryChangeLog.js';
import { MemoryCheckpoints } from './MemoryCheckpoints.js';
import { MemoryLeases } from './MemoryLeases.js';
import { MemoryReadModels } from './MemoryReadModels.js';

export interface MemoryProjectorStorageOptions {
  /** Change log entries kept. @default 100_000 */
  changeLogRetention?: number;
  /** Clock for lease expiry, in ms. @default Date.now */
  now?: () => number;
  /**
   * Secondary indexes per collection, as declared for MongoDB: the memory store keeps a
   * hash index on each one's first key, so a query filtering on it reads only the matching
   * documents. @default none (queries read every document of the collection)
   */
  readModelIndexes?: ReadIndexes;
}

/** The projector's storage in one process; nothing persisted. */
export function createMemoryProjectorStorage(
  options: MemoryProjectorStorageOptions = {},
): ProjectorStorage {
  return {
    readModels: new MemoryReadModels(options.readModelIndexes ?? {}),
    checkpoints: new MemoryCheckpoints(),
    leases: new MemoryLeases(options.now ?? Date.now),
    changeLog: new MemoryChangeLog(options.changeLogRetention ?? 100_000),
    close: async () => {},
  };
}
