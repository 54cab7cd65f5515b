import type { EventStore } from '../../src/eventstore/types.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import {
  CollectionName,
  POSITION_COUNTER_ID,
  gapDoc,
  type CommitDoc,
  type CounterDoc,
} from '../../src/eventstore/mongo/documents.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import type { ProjectorStorage } from '../../src/projector/types.js';
import {
  commitPositions,
  CONTRACT_STORE_OPTIONS,
  fileScopedMongoClient,
  fileScopedMongoUri,
  mongoTargetDescription,
  useContractTimeout,
  uniqueDatabaseName,
  type MongoUri,
} from './mongo.js';
import type { CommitPlacement } from './storeAdapters.js';

/** An event store and projector storage sharing one backing store. */
export interface ReadSide {
  store: EventStore;
  /** Projector storage; call again for a second instance on the same data. */
  storage: ProjectorStorage;
  /**
   * Leaves the next position as a gap, as an append that reserved it and did not commit
   * does (mongo: the counter moved and a tombstone holds the position). Returns it.
   */
  makeGap(): Promise<number>;
  /**
   * Another projector storage on the same data, as a second process opens it (memory: the
   * same instance, the only one there can be). Closed by `close()`.
   */
  anotherStorage(): Promise<ProjectorStorage>;
  /** Positions of the commits (not gaps) in the hot store and in the archive, each in order. */
  placement(): Promise<CommitPlacement>;
  close(): Promise<void>;
}

export interface ProjectorAdapter {
  name: 'memory' | 'mongo';
  /**
   * The share of the suite's volumes (commits appended) this adapter runs: 1, except on
   * the MongoDB simulator, which evaluates every command in the test's own process and
   * runs the volume tests at a twentieth (printed when it does).
   */
  scale: number;
  open(options?: { changeLogRetention?: number }): Promise<ReadSide>;
}

const memory: ProjectorAdapter = {
  name: 'memory',
  scale: 1,
  async open(options) {
    const store = new MemoryEventStore();
    const storage = createMemoryProjectorStorage(options);
    return {
      store,
      storage,
      makeGap: () => store.skipPosition(),
      anotherStorage: async () => storage,
      placement: async () => {
        const hot = store.hotPositions();
        const all = (await store.readAll({ limit: Number.MAX_SAFE_INTEGER })).map(
          (c) => c.position,
        );
        return { hot, archived: all.filter((p) => !hot.includes(p)) };
      },
      close: async () => store.close(),
    };
  },
};

/**
 * The mongo adapter: one client per test file, connected on first use and closed after the
 * file's tests (the `afterAll` is registered when this is called, at collection time).
 * Each `open()` gets a fresh database shared by the event store and the projector storage,
 * dropped by its `close()`.
 */
function mongoProjectorAdapter(uri: MongoUri, scale: number): ProjectorAdapter {
  const client = fileScopedMongoClient(uri);
  return {
    name: 'mongo',
    scale,
    async open(options) {
      const connected = await client();
      const dbName = uniqueDatabaseName();
      const store = await MongoEventStore.create({
        client: connected,
        dbName,
        ...CONTRACT_STORE_OPTIONS,
      });
      const openStorage = () =>
        createMongoProjectorStorage({
          client: connected,
          dbName,
          ...(options?.changeLogRetention
            ? { changeLogRetention: options.changeLogRetention }
            : {}),
        });
      const storage = await openStorage();
      const others: ProjectorStorage[] = [];
      const db = connected.db(dbName);
      return {
        store,
        storage,
        async makeGap() {
          const counter = await db
            .collection<CounterDoc>(CollectionName.Counters)
            .findOneAndUpdate(
              { _id: POSITION_COUNTER_ID },
              { $inc: { value: 1 } },
              { returnDocument: 'after' },
            );
          const position = counter!.value;
          await db
            .collection<CommitDoc>(CollectionName.Commits)
            .insertOne(gapDoc(position, new Date()), { writeConcern: { w: 'majority' } });
          return position;
        },
        placement: async () => ({
          hot: await commitPositions(db, CollectionName.Commits),
          archived: await commitPositions(db, CollectionName.ArchiveCommits),
        }),
        anotherStorage: async () => {
          const other = await openStorage();
          others.push(other);
          return other;
        },
        close: async () => {
          for (const other of others) await other.close();
          await storage.close();
          await store.close();
          await connected.db(dbName).dropDatabase();
        },
      };
    },
  };
}

/**
 * Adapters the projector contract suite runs against: memory, and mongo on the replica
 * set MONGODB_URI names or, without it, on the MongoDB simulator. Call it at the top of a
 * test file: the mongo adapter registers `afterAll` hooks that close its client (and the
 * simulator).
 */
export function projectorAdapters(): ProjectorAdapter[] {
  console.info(`[contract] mongo projector storage on ${mongoTargetDescription()}`);
  useContractTimeout();
  const scale = process.env.MONGODB_URI ? 1 : 0.05;
  if (scale < 1) {
    console.info('[contract] volume tests run a twentieth of their commits on the simulator');
  }
  return [memory, mongoProjectorAdapter(fileScopedMongoUri(), scale)];
}
