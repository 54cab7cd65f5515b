import type { Collection, MongoClient } from 'mongodb';
import { isDuplicateKey } from '../mongo/translateError.js';
import { checkSnapshotSize, type Snapshot, type SnapshotStore } from './SnapshotStore.js';

/** One stream's snapshot. The state is one string: cheap to store and to read back whole. */
interface SnapshotDoc {
  /** The stream. */
  _id: string;
  version: number;
  eventId: string;
  codec: string;
  state: string;
  savedAt: Date;
}

/** @default collection of {@link MongoSnapshotStore} */
export const SNAPSHOTS_COLLECTION = 'snapshots';

/**
 * Snapshots in a MongoDB collection (one document per stream, `_id` = stream), beside
 * the event store's collections. The `_id` index is all it needs.
 *
 * Reads check `signal` before and after the round trip rather than passing it to the
 * driver (its `signal` option is experimental and closes the connection on abort).
 */
export class MongoSnapshotStore implements SnapshotStore {
  readonly #snapshots: Collection<SnapshotDoc>;

  constructor(options: { client: MongoClient; dbName: string; collection?: string }) {
    this.#snapshots = options.client
      .db(options.dbName)
      .collection<SnapshotDoc>(options.collection ?? SNAPSHOTS_COLLECTION);
  }

  async load(stream: string, options: { signal?: AbortSignal } = {}) {
    options.signal?.throwIfAborted();
    const doc = await this.#snapshots.findOne({ _id: stream });
    options.signal?.throwIfAborted();
    if (!doc) return undefined;
    const { version, eventId, codec, state } = doc;
    return { stream, version, eventId, codec, state };
  }

  async save(snapshot: Snapshot, options: { signal?: AbortSignal } = {}): Promise<void> {
    options.signal?.throwIfAborted();
    checkSnapshotSize(snapshot);
    const { stream, version, eventId, codec, state } = snapshot;
    // Replaces a snapshot of another codec or an older version, or creates the first.
    const filter = { _id: stream, $or: [{ codec: { $ne: codec } }, { version: { $lt: version } }] };
    const update = { $set: { version, eventId, codec, state, savedAt: new Date() } };
    try {
      await this.#snapshots.updateOne(filter, update, { upsert: true });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // The stream has a snapshot (kept before, or inserted by a racing save): the filter
      // missed it because it is as new as ours, or because it was not there yet when the
      // upsert looked. The server does not retry an upsert whose filter is more than the
      // `_id`, so try once more, as an update only: it applies only if ours is newer.
      await this.#snapshots.updateOne(filter, update);
    }
  }
}
