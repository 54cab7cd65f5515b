/** The event store's collections, indexes and position counter on a database. */
import { MongoError, type Db } from 'mongodb';
import {
  CollectionName,
  IndexName,
  POSITION_COUNTER_ID,
  type CommitDoc,
  type CounterDoc,
} from './documents.js';

/**
 * Creates the collections, unique indexes and the position counter if missing.
 * Idempotent, so every instance may run it at startup.
 */
export async function ensureSchema(db: Db): Promise<void> {
  // Collections are created up front so no transaction has to create one: implicit
  // creation inside a transaction needs MongoDB 4.4+ and is refused in cross-shard
  // write transactions (manual, "Transactions and Operations").
  const existing = new Set(
    (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name),
  );
  for (const name of Object.values(CollectionName)) {
    if (existing.has(name)) continue;
    await db.createCollection(name).catch((error: unknown) => {
      // Another instance created it between our list and create: NamespaceExists (48).
      if (!(error instanceof MongoError && error.code === 48)) throw error;
    });
  }
  // Stream reads find the commits holding a stream's events through this multikey index
  // (an `$elemMatch` on both fields of one array element gets bounds on both). Not unique:
  // a compound multikey index keys the cross product of the array's values, which would
  // make unrelated commits collide; the version-checked heads in `streams` are what
  // guarantee one event per stream version.
  await db
    .collection<CommitDoc>(CollectionName.Commits)
    .createIndex(
      { 'events.stream': 1, 'events.version': 1 },
      { name: IndexName.CommitsEventsStreamVersion },
    );
  await db
    .collection<CommitDoc>(CollectionName.Commits)
    .createIndex({ position: 1 }, { unique: true, name: IndexName.CommitsPosition });
  // Expired keys are removed by the server's TTL monitor (manual, "TTL Indexes": a
  // background task about every 60 s deletes documents whose date is past; with
  // expireAfterSeconds 0 the field itself is the expiry). Reads check expiresAt too.
  await db
    .collection(CollectionName.Idempotency)
    .createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0, name: IndexName.IdempotencyExpiry });
  await db
    .collection(CollectionName.Reservations)
    .createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0, name: IndexName.ReservationsExpiry });
  // Seeded outside any transaction so appends never race to upsert it.
  await db
    .collection<CounterDoc>(CollectionName.Counters)
    .updateOne(
      { _id: POSITION_COUNTER_ID },
      { $setOnInsert: { value: 0 } },
      { upsert: true, writeConcern: { w: 'majority' } },
    );
}
