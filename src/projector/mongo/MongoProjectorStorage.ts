/**
 * The projector's storage on MongoDB: read model generations, checkpoints, leases and
 * the change log, in one database. Same semantics as the memory adapter.
 *
 * Written against the documented behaviour of the server and of driver 7 (no server was
 * available where it was written). What it relies on, each explained where it is used:
 * - a write to one document is atomic, so a filter stating a precondition plus an update
 *   is a compare-and-set (the active-generation pointer, leases);
 * - an upsert whose filter refuses an existing document fails with E11000 on `_id`, and the
 *   server only retries that itself when the filter is equality predicates alone (manual,
 *   db.collection.update(), "Upsert with Duplicate Values");
 * - `findOneAndUpdate` resolves to the document or null unless `includeResultMetadata`
 *   (driver 6+), with `returnDocument: 'after'` for the written document;
 * - insert events of a change stream carry `fullDocument`, changes come majority-committed
 *   in oplog order, the driver opens the cursor on first iteration and resumes once on
 *   resumable errors (manual, "Change Events"; driver change stream spec);
 * - `signal` is honoured by `find`, `findOne`, `countDocuments` (driver `Abortable`,
 *   experimental); `Collection.drop()` answers false for a missing collection;
 * - field names of inserted or replaced documents may contain `.` and `-` (manual, "Field
 *   Names with Periods"; only top-level `$` names are refused in replacements).
 */
import type { MongoClient } from 'mongodb';
import type { ProjectorStorage } from '../types.js';
import { MongoChangeLog } from './MongoChangeLog.js';
import { MongoCheckpoints } from './MongoCheckpoints.js';
import { MongoLeases } from './MongoLeases.js';
import { MongoReadModels, type ReadModelIndexes } from './MongoReadModels.js';

export interface MongoProjectorStorageOptions {
  /** A client for a replica set (change streams need one; without, tails poll). */
  client: MongoClient;
  /** The database, shared with the event store or not. */
  dbName: string;
  /** Change log entries kept (the newest cursors). @default 100_000 */
  changeLogRetention?: number;
  /** Clock for lease expiry and checkpoint times, in ms. @default Date.now */
  now?: () => number;
  /** Whether `close()` closes `client` (only when this storage was given it to own). @default false */
  ownsClient?: boolean;
  /**
   * How long `active()` may answer from this instance's copy of the active-generation
   * pointer, so a query costs no extra round trip. A switch made by another instance is
   * seen here within this bound. @default 250
   */
  pointerCacheMs?: number;
  /**
   * How long after `dropGeneration` the old generation is dropped (in the background), so
   * that queries still running on it (readers that fetched the old pointer, here or,
   * within `pointerCacheMs`, elsewhere) finish first.
   * @default 60_000
   */
  generationDropDelayMs?: number;
  /** The change log is trimmed when recording a cursor that is a multiple of this. @default 100 */
  changeLogTrimEvery?: number;
  /** How often a change log tail whose change stream failed polls instead. @default 100 */
  tailPollIntervalMs?: number;
  /**
   * Secondary indexes of read collections, by collection name, created in the active
   * generation at start and in every new generation. Lookups by `_id` need none.
   * @default {}
   */
  readModelIndexes?: ReadModelIndexes;
}

/**
 * Opens the projector storage in `dbName`: creates the `changelog` collection and the
 * first read model generation if this is a new database, and the configured read model
 * indexes. Every other lookup is by `_id`, whose unique index MongoDB always has, so no
 * other index is needed.
 *
 * `close()` ends open change log tails (their change streams) and closes the client only
 * when `ownsClient` is set: a client it was handed belongs to its caller.
 *
 * @throws RangeError for a retention, stride or delay that is not a positive integer
 *   (zero allowed for the delays).
 */
export async function createMongoProjectorStorage(
  options: MongoProjectorStorageOptions,
): Promise<ProjectorStorage> {
  const retention = options.changeLogRetention ?? 100_000;
  const trimEvery = options.changeLogTrimEvery ?? 100;
  const pointerCacheMs = options.pointerCacheMs ?? 250;
  const dropDelayMs = options.generationDropDelayMs ?? 60_000;
  const pollIntervalMs = options.tailPollIntervalMs ?? 100;
  requireInteger('changeLogRetention', retention, 1);
  requireInteger('changeLogTrimEvery', trimEvery, 1);
  requireInteger('pointerCacheMs', pointerCacheMs, 0);
  requireInteger('generationDropDelayMs', dropDelayMs, 0);
  requireInteger('tailPollIntervalMs', pollIntervalMs, 1);
  const now = options.now ?? Date.now;

  const db = options.client.db(options.dbName);
  await MongoChangeLog.ensureCollection(db);
  const readModels = new MongoReadModels(db, {
    pointerCacheMs,
    dropDelayMs,
    indexes: options.readModelIndexes ?? {},
  });
  await readModels.init();
  const changeLog = new MongoChangeLog(db, { retention, trimEvery, pollIntervalMs });

  return {
    readModels,
    checkpoints: new MongoCheckpoints(db, now),
    leases: new MongoLeases(db),
    changeLog,
    close: async () => {
      await changeLog.closeTails();
      if (options.ownsClient) await options.client.close();
    },
  };
}

function requireInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}
