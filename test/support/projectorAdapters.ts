import type { EventStore } from '../../src/eventstore/types.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import type { ProjectorStorage } from '../../src/projector/types.js';

/** An event store and projector storage sharing one backing store. */
export interface ReadSide {
  store: EventStore;
  /** Projector storage; call again for a second instance on the same data. */
  storage: ProjectorStorage;
  close(): Promise<void>;
}

export interface ProjectorAdapter {
  name: 'memory' | 'mongo';
  open(options?: { changeLogRetention?: number }): Promise<ReadSide>;
}

const memory: ProjectorAdapter = {
  name: 'memory',
  async open(options) {
    const store = new MemoryEventStore();
    const storage = createMemoryProjectorStorage(options);
    return { store, storage, close: async () => store.close() };
  },
};

/** Adapters the projector contract suite runs against (mongo when MONGODB_URI is set). */
export function projectorAdapters(): ProjectorAdapter[] {
  if (!process.env.MONGODB_URI) {
    console.info('[contract] mongo projector storage skipped: MONGODB_URI is not set');
  }
  return [memory];
}
